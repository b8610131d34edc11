"""What every answer gets, in one plain ASGI middleware with one send wrapper: a request id
(context variable and ``X-Request-ID`` header, see :mod:`service.api.failures`), the security
headers (:mod:`service.api.headers`), request metrics when they are on
(:mod:`service.api.metrics`), and an unexpected exception answered as one 500 envelope and one
log line.

These were three middlewares, each wrapping ``send`` and copying the response's headers; on
like-this, a lookup in memory, that showed in the throughput. Headers are added pre-encoded.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import CURRENT_REQUEST_ID
from service.api.failures import ERRORS, REQUEST_ID_HEADER, internal_error, request_id_from
from service.api.headers import API_CSP, SECURITY_HEADERS
from service.api.metrics import observe

_ALWAYS = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
_CSP_NAME = b"content-security-policy"
_CSP = (_CSP_NAME, API_CSP.encode())
_ID_NAME = REQUEST_ID_HEADER.encode()


def _added_headers(
    headers: list[tuple[bytes, bytes]], request_id: str
) -> list[tuple[bytes, bytes]]:
    """The answer's headers plus the security headers, the API's CSP unless the answer sets
    its own (the map page and the docs do), and the request id."""
    added = [*headers, *_ALWAYS, (_ID_NAME, request_id.encode())]
    if not any(name.lower() == _CSP_NAME for name, _ in headers):
        added.append(_CSP)
    return added


class Edge:
    """The outermost of the app's own middlewares (see the module docstring)."""

    def __init__(self, app: ASGIApp, metrics: bool = True) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers", []))
        token = CURRENT_REQUEST_ID.set(request_id)
        start = time.perf_counter()
        status = 0

        async def send_answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = _added_headers(list(message.get("headers", ())), request_id)
                message = {**message, "headers": headers}
                if self.metrics:
                    observe(scope, status, time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, send_answer)
        except Exception as error:  # noqa: BLE001 -- answered and logged here, once
            ERRORS.failed(request_id, f"{scope.get('method', '')} {scope.get('path', '')}", error)
            if not status:  # else the client sees the connection end mid-answer
                await internal_error(send_answer, request_id)
        except BaseException:  # cancelled: counted as a failure, then passed on
            if self.metrics and not status:
                observe(scope, 500, time.perf_counter() - start)
            raise
        finally:
            CURRENT_REQUEST_ID.reset(token)
