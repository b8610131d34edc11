"""The API key check for writes, shared by the write routes and the body-size limit (which
checks it before reading a body larger than other routes may send)."""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from service.errors import Unauthorized, WritesDisabled


def check_api_key(configured: SecretStr | None, given: str | None) -> None:
    """Writes need the configured key (compared in constant time); no key configured = no writes."""
    if configured is None:
        raise WritesDisabled("writes are disabled: set PAPERSCOPE_API_KEY on the server")
    expected = configured.get_secret_value().encode()
    if given is None or not hmac.compare_digest(given.encode(), expected):
        raise Unauthorized("a valid X-API-Key header is required for this request")
