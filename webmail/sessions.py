"""Web sessions in the database, as Django's ``db`` engine keeps them, with two savings on the
sign-in path (issue 13: a webmail login costs its password hash and little else):

- ``cycle_key`` of a session that has no key yet (a visitor signing in, the usual case: the login
  page sets only the CSRF cookie) makes no row: there is no old key to retire, and the row is
  written once, with the signed-in user, when the response is sent. Django's engine writes an
  empty row and then updates it.
- Saves commit without waiting for the disk (``mailcore.db.relaxed``): a power failure may sign a
  user out, never in. Deleting a session (logging out, a key cycled) stays durable."""

from django.contrib.sessions.backends import db
from django.db import router

from mailcore.db.relaxed import relaxed_atomic


class SessionStore(db.SessionStore):
    def cycle_key(self):
        if self.session_key is None:
            # Nothing to retire; the data is kept and saved under a new key by save().
            self._session_cache = self._session
            self.modified = True
            return
        super().cycle_key()

    def save(self, must_create=False):
        with relaxed_atomic(using=router.db_for_write(self.model)):
            super().save(must_create=must_create)
