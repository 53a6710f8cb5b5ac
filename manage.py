#!/usr/bin/env python
"""Django's command-line utility for Correio."""
import os
import sys


def main():
    from mailcore.private import restrict_umask

    restrict_umask()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
