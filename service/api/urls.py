"""The server's own address, for links in documents that leave it (Atom feeds)."""

from __future__ import annotations

from fastapi import Request

DEFAULT_PORTS = {"http": 80, "https": 443}


def public_base_url(request: Request) -> str:
    """``PAPERSCOPE_PUBLIC_URL`` when set; else the address and port this request came in on
    (the socket's, not the client's ``Host`` header, which anyone can set), with a trailing /."""
    configured: str | None = request.app.state.settings.public_url
    if configured:
        return configured
    settings = request.app.state.settings
    host, port = request.scope.get("server") or (settings.host, settings.port)
    scheme = request.url.scheme
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = host if DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    root = request.scope.get("root_path", "").rstrip("/")
    return f"{scheme}://{netloc}{root}/"
