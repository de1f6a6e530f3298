"""The data directory is private to the account that runs the hub: everything the hub, its
workers and a site's node write there (the database with its ``-wal``/``-shm`` files, blobs, keys,
logs, the federation PKI, node data) is created 0600 (files) or 0700 (directories), and what an
earlier version left readable is closed at start.

The entry points (``consortium up``/``serve``, ``worker``, ``node``) call ``make_private`` before
opening anything; processes they spawn inherit the umask. Library code and tests keep the umask
they were given.

>>> import tempfile
>>> from pathlib import Path
>>> home = Path(tempfile.mkdtemp()); home.chmod(0o755)
>>> old = os.umask(0o022)
>>> (home / "blobs").mkdir(); _ = (home / "blobs" / "b1").write_bytes(b"x")
>>> make_private(home)
3
>>> [oct(p.stat().st_mode & 0o777) for p in (home, home / "blobs", home / "blobs" / "b1")]
['0o700', '0o700', '0o600']
>>> oct(os.umask(old))
'0o77'
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077  # new files 0600, new directories 0700
log = logging.getLogger("consortium.store")


def private_umask() -> None:
    """From now on this process creates files 0600 and directories 0700 (children inherit it)."""
    os.umask(PRIVATE_UMASK)


def _close(path: str, st: os.stat_result) -> bool:
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o077:
        return False
    try:
        os.chmod(path, mode & ~0o077)
    except PermissionError:  # another account's file: say so, carry on
        log.warning("cannot make %s private (owned by uid %d)", path, st.st_uid)
        return False
    return True


def private_database(url: str) -> int:
    """For a SQLite database outside the data directory: the file and its ``-wal``/``-shm``/``-journal``
    made private too (SQLite gives the side files the database file's mode). Other URLs: nothing."""
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return 0
    db = Path(url.split(":///", 1)[1])
    changed = 0
    for path in (db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))):
        try:
            changed += _close(str(path), os.lstat(path))
        except FileNotFoundError:
            continue
    return changed


def make_private(home: Path) -> int:
    """``private_umask``, then take the group and other bits off ``home`` and everything under it
    (symbolic links are left alone, never followed). Returns how many entries changed.

    A ``home`` that is the account's own home directory is closed itself but not walked: the hub's
    data directory is meant to be a directory of its own (``~/.consortium`` by default)."""
    private_umask()
    home = Path(home).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    changed = int(_close(str(home), os.lstat(home)))
    if home.resolve() in (Path.home().resolve(), Path("/")):
        log.warning("the data directory %s is the home directory itself: its contents were left as they are", home)
        return changed
    for top, dirs, files in os.walk(home, followlinks=False):
        for name in dirs + files:
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:  # removed meanwhile (a finished upload's .part)
                continue
            if not stat.S_ISLNK(st.st_mode):
                changed += _close(path, st)
    if changed:
        log.info("made %d entr%s of the data directory private (0600 files, 0700 directories)",
                 changed, "y" if changed == 1 else "ies")
    return changed
