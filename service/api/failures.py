"""Request ids and unexpected errors: every request gets an id, every failure one log line.

A request's id comes from its ``X-Request-ID`` header when that is a short plain token (a proxy's
id keeps one name for one request across logs), else a new one; it is sent back in the same
header and, on errors, in the envelope (``error.request_id``).

An unexpected exception becomes a 500 envelope here, not in Starlette's outermost error
middleware, which re-raises after answering so that the server logs a second traceback. The log
gets one line per failed request with its id, and the traceback only the first time an error of
that kind (type and raising line) is seen. A flood of the same error is rate-limited per kind:
a burst of lines, then one line a second with the count of the lines left out, so a broken
dependency under load cannot fill the disk.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import traceback
from dataclasses import dataclass

from starlette.types import Send

from service.api.errors import error_response

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_HEADER_NAME = REQUEST_ID_HEADER.encode()
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's or proxy's id when it is a plain token, else a new random one."""
    for name, value in headers:
        if name.lower() == _HEADER_NAME:
            given = value.decode("latin-1")
            if _GIVEN_ID.fullmatch(given):
                return given
    return os.urandom(8).hex()


@dataclass
class _Kind:
    """What was logged of one kind of error."""

    window_start: float
    lines_in_window: int = 0
    left_out: int = 0


class ErrorLog:
    """Logs failures once each, briefly: the full traceback for the first of each kind, then one
    line each, at most ``burst`` lines of a kind a ``window`` of seconds (the rest counted and
    reported with the next line logged)."""

    def __init__(self, burst: int = 10, window: float = 10.0, kinds: int = 1000) -> None:
        self.burst, self.window, self.max_kinds = burst, window, kinds
        self._kinds: dict[tuple[str, str], _Kind] = {}
        self._lock = threading.Lock()

    @staticmethod
    def kind_of(error: BaseException) -> tuple[str, str]:
        """The error's type and the line that raised it (its message may vary with input)."""
        frames = traceback.extract_tb(error.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        return type(error).__qualname__, where

    def failed(self, request_id: str, what: str, error: BaseException) -> None:
        """Log that ``what`` (e.g. ``GET /api/v1/search``) failed with ``error``, or count it."""
        kind = self.kind_of(error)
        now = time.monotonic()
        with self._lock:
            seen = self._kinds.get(kind)
            first = seen is None
            if seen is None:
                if len(self._kinds) >= self.max_kinds:  # bounded memory: forget the oldest kind
                    self._kinds.pop(next(iter(self._kinds)))
                seen = self._kinds[kind] = _Kind(window_start=now)
            if now - seen.window_start >= self.window:
                seen.window_start, seen.lines_in_window = now, 0
            if seen.lines_in_window >= self.burst:
                seen.left_out += 1
                return
            seen.lines_in_window += 1
            left_out, seen.left_out = seen.left_out, 0
        message = f"request {request_id}: {what} failed: {type(error).__name__}: {error}"
        if left_out:
            message += f" ({left_out} more of the same not logged)"
        log.error(message, exc_info=error if first else None, extra={"request_id": request_id})


ERRORS = ErrorLog()


async def internal_error(send: Send, request_id: str) -> None:
    """Answer the 500 envelope naming the request (see :class:`service.api.edge.Edge`)."""
    response = error_response(
        500, "internal_error", f"internal error; the server log has request {request_id}"
    )
    await send({"type": "http.response.start", "status": 500, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
