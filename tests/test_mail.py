"""The SMTP client against a real SMTP server started by the test (aiosmtpd)."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from service.config import load_settings
from service.errors import InvalidInput, MailError
from service.mail import Mailer, RecipientRefused
from tests.helpers import free_port, make_settings
from tests.smtp import PASSWORD, REFUSED, USER, smtp_server

SENDER = "paperscope <digest@example.org>"


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "hello"
    message["From"] = SENDER
    message["To"] = to
    message.set_content("a plain body\n")
    return message


def test_a_message_reaches_the_server_with_a_login(tmp_path: Path) -> None:
    with smtp_server(login=True) as (inbox, port):
        settings = make_settings(
            tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_tls="none",
            smtp_user=USER,
            smtp_password=PASSWORD,
            smtp_from=SENDER,
        )
        with Mailer(settings) as mailer:
            mailer.send(_message("ada@example.org"))
            with pytest.raises(RecipientRefused, match=REFUSED):
                mailer.send(_message(REFUSED))
            mailer.send(_message("bob@example.org"))  # one refusal ends nothing
    assert [r.recipients for r in inbox.received] == [["ada@example.org"], ["bob@example.org"]]
    assert inbox.received[0].sender == "digest@example.org"
    assert inbox.received[0].message.get_content().splitlines() == ["a plain body"]


def test_a_wrong_password_is_a_clear_error(tmp_path: Path) -> None:
    with smtp_server(login=True) as (inbox, port):
        settings = make_settings(
            tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_tls="none",
            smtp_user=USER,
            smtp_password=PASSWORD + "x",
            smtp_from=SENDER,
        )
        with pytest.raises(MailError, match="refused the login"), Mailer(settings):
            pass
    assert inbox.received == []


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    settings = make_settings(
        tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none", smtp_from=SENDER
    )
    with pytest.raises(MailError, match=f"cannot reach the mail server 127.0.0.1:{port}"):
        Mailer(settings).__enter__()
    starttls = make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_from=SENDER)
    with pytest.raises(MailError, match="cannot reach"):
        Mailer(starttls).__enter__()


def test_a_server_without_tls_is_refused_when_tls_is_asked_for(tmp_path: Path) -> None:
    with smtp_server() as (inbox, port):
        settings = make_settings(
            tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_tls="starttls", smtp_from=SENDER
        )
        with pytest.raises(MailError, match="cannot reach"):
            Mailer(settings).__enter__()
    assert inbox.received == []


def test_sending_needs_a_server_and_a_sender(tmp_path: Path) -> None:
    with pytest.raises(MailError, match="PAPERSCOPE_SMTP_HOST"):
        Mailer(make_settings(tmp_path, smtp_from=SENDER))
    with pytest.raises(MailError, match="PAPERSCOPE_SMTP_FROM"):
        Mailer(make_settings(tmp_path, smtp_host="127.0.0.1"))


@pytest.mark.parametrize("sender", ["no address", "a@b.org\r\nBcc: x@evil.org", ""])
def test_the_sender_must_be_one_address(sender: str) -> None:
    with pytest.raises(InvalidInput, match="smtp_from"):
        load_settings(smtp_from=sender)


def test_the_sender_may_carry_a_name() -> None:
    assert load_settings(smtp_from="paperscope <d@example.org>").smtp_from == (
        "paperscope <d@example.org>"
    )
