"""Private by default: what Correio writes to disk is readable by its own user alone.

The store holds every message, password hashes, sessions and DKIM keys, so the processes run
with umask 077 (``restrict_umask``, called by every entry point: manage.py, the WSGI/ASGI
modules, the Celery app and gunicorn's settings), ``var/`` is created 0700, and secrets are
created 0600 by ``os.open`` itself: a file written first and chmod-ed after is readable by others
in between. Nothing here imports Django.
"""

import os
import secrets
from pathlib import Path

PRIVATE_UMASK = 0o077


def restrict_umask() -> int:
    """Make files and directories this process creates private; return the previous umask."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) 0700; tighten it if it exists and is ours."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        path.chmod(0o700)
    return path


def _synced_temp(path: Path, data: bytes) -> Path:
    """A new temporary file beside ``path``, 0600 from its first byte (O_EXCL: no one else can
    have it open), holding ``data`` synced to disk."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, the file being 0600 from its first byte: a synced
    temporary file beside it renamed over ``path``."""
    tmp = _synced_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_private(path: Path, data: bytes) -> bool:
    """Create ``path`` 0600 with ``data`` unless it exists; True when this call created it.

    Two processes starting together (gunicorn workers, the listeners) race to make the same
    secret: O_EXCL lets exactly one win, and the others read the winner's file."""
    tmp = _synced_temp(path, data)
    try:
        # link() fails if the name exists, so the complete file appears at once or not at all.
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def touch_private(path: Path) -> None:
    """Create an empty 0600 file at ``path`` if none exists (SQLite then keeps its mode for the
    -wal and -shm files it creates beside the database)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        pass
