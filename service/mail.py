"""Sending mail through the configured SMTP server (smtplib): the one module that speaks SMTP.

A :class:`Mailer` opens one connection (plain, STARTTLS or TLS from the start; a login when a
user is set) and sends messages over it. Everything that can go wrong on the way leaves this
module as :class:`MailError` (unreachable, TLS or login refused, connection lost), except a
server that refuses one recipient: :class:`RecipientRefused`, which the caller may skip.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from types import TracebackType

from service.config import Settings
from service.errors import MailError


class RecipientRefused(MailError):
    """The server refused this message's recipient (the others may still be sent)."""


class Mailer:
    """One SMTP connection for a batch of messages. Use as a context manager."""

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise MailError("no mail server configured: set PAPERSCOPE_SMTP_HOST")
        if not settings.smtp_from:
            raise MailError("no sender configured: set PAPERSCOPE_SMTP_FROM")
        self.settings = settings
        self.sender: str = settings.smtp_from
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        settings = self.settings
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        try:
            self._smtp = self._connect()
            if settings.smtp_user:
                password = (
                    settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                )
                self._smtp.login(settings.smtp_user, password)
        except smtplib.SMTPAuthenticationError as err:
            self.close()
            raise MailError(f"the mail server {where} refused the login: {_said(err)}") from None
        except (smtplib.SMTPException, OSError) as err:  # refused, unreachable, TLS, timeout
            self.close()
            raise MailError(f"cannot reach the mail server {where}: {_said(err)}") from None
        return self

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        host, port, timeout = settings.smtp_host or "", settings.smtp_port, settings.smtp_timeout
        if settings.smtp_tls == "ssl":
            return smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        smtp = smtplib.SMTP(host, port, timeout=timeout)
        if settings.smtp_tls == "starttls":
            try:
                smtp.starttls(context=ssl.create_default_context())
            except BaseException:
                smtp.close()
                raise
        return smtp

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            self._smtp.close()
        self._smtp = None

    def send(self, message: EmailMessage) -> None:
        """Hand one message to the server; returns once the server has accepted it."""
        if self._smtp is None:
            raise MailError("not connected to the mail server")
        try:
            self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as err:
            raise RecipientRefused(f"the mail server refused {message['To']}: {err}") from None
        except (smtplib.SMTPException, OSError) as err:
            raise MailError(f"the mail server failed while sending: {_said(err)}") from None


def _said(err: Exception) -> str:
    """What the server (or the system) said, readable: SMTP replies are bytes."""
    if isinstance(err, smtplib.SMTPResponseException):
        reply = err.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return f"{err.smtp_code} {text}"
    return str(err) or type(err).__name__
