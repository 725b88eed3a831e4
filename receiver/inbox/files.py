"""Who may read the inbox's files: their owner only, whatever the umask.

The inbox holds callers' numbers. The database is created 0600 (SQLite gives the `-wal` and
`-shm` files it creates beside it the database's mode), and an existing file that other users
could open, from an earlier version or another tool, is made the owner's only, which is
logged once (after that there is nothing more to say).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["PRIVATE", "keep_private", "make_private"]

log = logging.getLogger("receiver.inbox")

PRIVATE = 0o600
"""The mode of the inbox files and the dispatch lock."""


def keep_private(fd: int, path: Path) -> None:
    """Take the group's and others' access to the open file `fd` away, saying so once."""
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if not mode & 0o077:
        return
    try:
        os.fchmod(fd, mode & 0o700)
    except OSError as exc:  # not the owner: say so, and go on as before
        log.warning("%s is open to other users (mode %03o): %s", path, mode, exc.strerror)
    else:
        log.warning(
            "%s was open to other users (mode %03o); made it %03o", path, mode, mode & 0o700
        )


def make_private(path: Path) -> None:
    """Create the inbox file `path` with mode 0600 whatever the umask, or take other users'
    access to it and to its `-wal` and `-shm` files away (logged)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE)
    except FileExistsError:
        pass
    else:
        try:
            os.fchmod(fd, PRIVATE)  # the umask may have taken the owner's bits too
        finally:
            os.close(fd)
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            fd = os.open(name, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            keep_private(fd, name)
        finally:
            os.close(fd)
