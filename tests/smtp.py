"""A real SMTP server for the email digest tests (aiosmtpd on a free local port), keeping what
it receives: each message as parsed by the standard library, with its envelope."""

from __future__ import annotations

import email
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.helpers import free_port

USER, PASSWORD = "digest", "s3cret"
REFUSED = "refused@example.org"
"""A recipient the server refuses (550), to check that one refusal stops no other mail."""


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    """The server's handler: keeps every accepted message."""

    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook names
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def _check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # False: the server answers 535 itself


@contextmanager
def smtp_server(login: bool = False) -> Iterator[tuple[Inbox, int]]:
    """A running SMTP server on 127.0.0.1 (plain, no TLS) and its port; with ``login`` it
    offers AUTH (without TLS) and accepts only :data:`USER` / :data:`PASSWORD`."""
    inbox = Inbox()
    port = free_port()
    extra: dict[str, Any] = {}
    if login:
        extra = {"authenticator": _check_login, "auth_require_tls": False}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
