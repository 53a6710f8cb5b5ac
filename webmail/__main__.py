"""`python -m webmail` and the `correio` console script: manage.py for an installed copy."""

import os
import sys


def main() -> None:
    from mailcore.private import restrict_umask

    restrict_umask()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
