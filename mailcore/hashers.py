"""Password hashing: Argon2id at OWASP's recommended parameters (Password Storage Cheat Sheet:
m = 19 MiB, t = 2, p = 1; RFC 9106 §4 for the algorithm). Django's own Argon2PasswordHasher
defaults to 100 MiB and 8 lanes, about 0.1 s a check on these 2 cores; this one costs a few tens
of milliseconds, so a webmail login stays well under 100 ms, while offline guessing stays
memory-hard. Hashes made with other parameters, and PBKDF2 hashes from before, are re-made with
these at the user's next successful login (Django's ``must_update`` through
``User.check_password``)."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    # Same algorithm name as Django's, so existing "argon2$..." hashes are recognised and
    # upgraded to these parameters.
    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
