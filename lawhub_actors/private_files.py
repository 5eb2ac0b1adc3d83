"""The data dir is the owner's alone: 0700, and every file in it 0600.

It holds the database, the journal, media files and perhaps the master key
and the admin token; sealed or not, no other local user has any business
reading them. :func:`make_private` runs once at start, before anything is
created: the process's umask becomes ``077`` (so every file and directory
made from then on — SQLite's ``-wal`` and ``-shm`` included, and the ack
process's, which inherits it — is the owner's only), a missing data dir is
created ``0700``, and an existing one or a file in it that others may read
is reported (a warning with its mode; never changed behind the operator's
back: they may share it with a backup user on purpose).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class Open:
    """A path under the data dir that others than its owner may use."""

    path: Path
    mode: int

    def describe(self) -> str:
        return f"{self.path} is {stat.filemode(self.mode)} ({self.mode & 0o777:o})"


def make_private(data_dir: Path, *, limit: int = 20) -> list[Open]:
    """Set the umask, create ``data_dir`` 0700 if missing, and return what
    is open to others: the dir and what lies directly in it (the database,
    the journal, the keys, the media dir; not every media file, which could
    be millions), at most ``limit`` paths, the dir first."""
    os.umask(PRIVATE_UMASK)
    if not data_dir.exists():
        data_dir.mkdir(mode=DIR_MODE, parents=True)
        data_dir.chmod(DIR_MODE)  # mkdir's mode passes through the umask of a parent's making
    found: list[Open] = []
    mode = data_dir.stat().st_mode  # the directory itself, through a symlink
    if mode & 0o077:
        found.append(Open(data_dir, mode))
    for path in sorted(data_dir.iterdir()):
        if len(found) >= limit:
            break
        try:
            mode = path.lstat().st_mode
        except OSError:  # gone meanwhile
            continue
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(Open(path, mode))
    return found
