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
"""

from __future__ import annotations


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
