"""The store needs SQLite >= 3.35 (UPDATE ... RETURNING) and says so at start."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from mailcore.db.sqlite3.base import check_sqlite_version


def test_an_sqlite_older_than_3_35_is_refused_with_a_clear_message():
    with pytest.raises(ImproperlyConfigured, match=r"SQLite 3\.35 or later.*3\.34\.1"):
        check_sqlite_version((3, 34, 1))


def test_sqlite_3_35_and_debian_12s_3_40_are_accepted():
    check_sqlite_version((3, 35, 0))
    check_sqlite_version((3, 40, 1))
