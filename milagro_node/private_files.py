"""Files only the node's user may read, written so that a crash never leaves half of one.

Used for the config, the admin token, the HSM PIN file and the SoftHSM config:
write to a fresh temporary file (O_EXCL | O_NOFOLLOW, mode 0600), fsync it,
rename it over the target and fsync the directory. Content may be a bytearray
or memoryview so a caller can wipe its copy of a secret afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, content: bytes | bytearray | memoryview) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # never write into a file someone else made
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view, written = memoryview(content), 0
        while written < len(view):
            written += os.write(fd, view[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
