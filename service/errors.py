"""One exception tree for the whole service.

Every error a user can cause or meet is a :class:`PaperscopeError` with a stable machine ``code``
and a human message. The CLI prints ``error: <message>`` and exits non-zero; the HTTP layer maps
``http_status`` onto the single JSON error envelope. Nothing here knows about HTTP libraries.

- :class:`InvalidInput`     bad parameters or request content (422)
- :class:`NotFound`         unknown paper / topic id (404)
- :class:`IngestError`      a file missing, empty, not UTF-8 or not in the stated format (400)
- :class:`Unauthorized`     a write without the right API key (401)
- :class:`WritesDisabled`   a write while no API key is configured: writes are off (403)
- :class:`NotReady`         no published build yet (503)
- :class:`ArtifactMismatch` a build made with another model or dimension (409)
- :class:`BuildDamaged`     a build with missing, truncated or inconsistent files (409)
- :class:`DatabaseDamaged`  the papers database fails SQLite's checks (503)
- :class:`StorageError`     a file could not be read or written: EACCES, EROFS, EIO (503)
- :class:`DiskFull`         no space left on the device (507)
- :class:`MailError`        the mail server is unreachable, refuses the login or the mail (502)
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path


class PaperscopeError(Exception):
    """Base class: ``code`` is machine-readable, ``str(err)`` is for people."""

    code = "error"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(PaperscopeError):
    code = "invalid_input"
    http_status = 422


class NotFound(PaperscopeError):
    code = "not_found"
    http_status = 404


class IngestError(PaperscopeError):
    code = "ingest_error"
    http_status = 400


class SyncError(PaperscopeError):
    """A harvest failed: the endpoint unreachable, a refused request, a page not OAI-PMH."""

    code = "sync_error"
    http_status = 502


class SyncRunning(PaperscopeError):
    """Another harvest holds the data folder's sync lock."""

    code = "sync_running"
    http_status = 409


class Unauthorized(PaperscopeError):
    code = "unauthorized"
    http_status = 401


class WritesDisabled(PaperscopeError):
    code = "writes_disabled"
    http_status = 403


class NotReady(PaperscopeError):
    code = "not_ready"
    http_status = 503


class ArtifactMismatch(PaperscopeError):
    code = "artifact_mismatch"
    http_status = 409


class BuildDamaged(ArtifactMismatch):
    """A build with missing, truncated or inconsistent files (the server falls back)."""

    code = "build_damaged"


class DatabaseDamaged(PaperscopeError):
    """SQLite reports the papers database malformed: nothing is answered from it."""

    code = "database_damaged"
    http_status = 503


class StorageError(PaperscopeError):
    """The operating system refused a read or write (permissions, a read-only folder, I/O)."""

    code = "storage_error"
    http_status = 503


class DiskFull(StorageError):
    code = "insufficient_storage"
    http_status = 507


class MailError(PaperscopeError):
    """Email digests could not be sent: no mail settings, or the SMTP server failed."""

    code = "mail_error"
    http_status = 502


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def free_space(path: Path) -> str:
    """'12.3 MB free in <the folder of path, or the nearest existing one above>', or ''."""
    for folder in path.parents:
        if folder.exists():
            try:
                return f"{megabytes(shutil.disk_usage(folder).free)} free in {folder}"
            except OSError:
                return ""
    return ""


def storage_error(err: OSError, doing: str, where: Path | None = None) -> StorageError:
    """An OSError met while ``doing`` something, as a clear error: what, where, why and, for a
    full disk, the free space (callers that know how much was needed say so in ``doing``)."""
    place = Path(err.filename) if err.filename else where
    reason = err.strerror or str(err)
    message = f"{doing}: {reason}" + (f" ({place})" if place else "")
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        room = free_space(place) if place else ""
        return DiskFull(message + (f"; {room}" if room else ""))
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(message + "; the data folder must be writable by this user")
    return StorageError(message)
