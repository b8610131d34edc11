"""Plain file helpers shared by the modules that own files (store, artifacts, backup): a
checksum and making a write durable."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def digest(path: Path) -> str:
    """The file's BLAKE2b digest (32 bytes, hex), streamed: about 0.2 s per 120 MB here."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=32)).hexdigest()


def fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') writes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """:func:`fsync` every file and folder under ``root``, then ``root`` itself."""
    for path in [*root.rglob("*"), root]:
        fsync(path)
