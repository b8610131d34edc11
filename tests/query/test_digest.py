"""Email digests end to end: subscribers through the API, mails received by a real SMTP server
(aiosmtpd) with both parts, the paper links and a working unsubscribe link; nothing is sent
twice, a dry run sends and records nothing, a failing server records nothing, and hostile paper
text stays harmless in the HTML and out of the headers."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from service.api.app import create_app
from service.app import Paperscope
from service.embed.backends import Embedder
from service.errors import MailError
from service.query.digest import DigestPaper, Pending, compose
from service.schemas import Reason, Recommendation
from service.store import Store, Subscriber
from tests.helpers import SCRIPT, assert_error, free_port, make_settings, subprocess_env
from tests.smtp import REFUSED, Inbox, smtp_server

KEY = "digest key"
HEADERS = {"X-API-Key": KEY}
PUBLIC = "https://papers.example.org/scope/"
SENDER = "paperscope <digest@example.org>"
PER_DIGEST = 3
HOSTILE_TITLE = '<script>alert("x")</script> Distillation\r\nBcc: victim@evil.example'
HOSTILE_AUTHOR = "<img src=x onerror=alert(1)> Mallory"


def _app(data_dir: Path, embedder: Embedder, smtp_port: int) -> TestClient:
    settings = make_settings(
        data_dir,
        api_key=KEY,
        public_url=PUBLIC,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_tls="none",
        smtp_from=SENDER,
        digest_papers=PER_DIGEST,
    )
    return TestClient(create_app(settings, embedder))


def _paperscope(client: TestClient) -> Paperscope:
    found: Paperscope = client.app.state.paperscope  # type: ignore[attr-defined]
    return found


@pytest.fixture
def server() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as running:
        yield running


def _collection(client: TestClient, name: str = "distil") -> list[str]:
    """A collection seeded with the top knowledge-distillation paper; its seeds."""
    hits = client.get("/api/v1/search", params={"q": "knowledge distillation", "k": 1}).json()
    seeds = [hit["id"] for hit in hits["results"]]
    body = {"positive": seeds}
    assert client.put(f"/api/v1/collections/{name}", json=body, headers=HEADERS).status_code == 201
    return seeds


def _subscribe(client: TestClient, email: str, name: str = "distil") -> int:
    path = f"/api/v1/collections/{name}/subscribers"
    return client.post(path, json={"email": email}, headers=HEADERS).status_code


def _parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None and rich is not None
    return str(plain.get_content()), str(rich.get_content())


def _sent(data_dir: Path, email: str, name: str = "distil") -> set[str]:
    with Store(make_settings(data_dir).db_path) as store:
        return store.sent_papers(name, email)


def test_subscribers_are_managed_with_the_key(
    built_copy: Path, embedder: Embedder, server: tuple[Inbox, int]
) -> None:
    with _app(built_copy, embedder, server[1]) as client:
        _collection(client)
        path = "/api/v1/collections/distil/subscribers"
        assert_error(client.post(path, json={"email": "ada@example.org"}), 401, "unauthorized")
        assert_error(client.get(path), 401, "unauthorized")
        assert _subscribe(client, "ada@EXAMPLE.org") == 201
        assert _subscribe(client, "ada@example.org") == 200  # the same address, normalised
        listed = client.get(path, headers=HEADERS).json()
        assert [s["email"] for s in listed] == ["ada@example.org"]
        assert set(listed[0]) == {"collection", "email", "created_at"}  # no token
        for bad in ("not-an-address", "a@b", "ada@example.org\r\nBcc: x@evil.org", "x" * 300):
            response = client.post(path, json={"email": bad}, headers=HEADERS)
            assert_error(response, 422, "invalid_input")
        response = client.post(path, json={"email": "a@example.org", "x": 1}, headers=HEADERS)
        assert_error(response, 422, "invalid_input")
        nowhere = "/api/v1/collections/nope/subscribers"
        response = client.post(nowhere, json={"email": "a@example.org"}, headers=HEADERS)
        assert_error(response, 404, "not_found")
        assert_error(client.delete(f"{path}/ada@example.org"), 401, "unauthorized")
        assert client.delete(f"{path}/ada@example.org", headers=HEADERS).status_code == 204
        assert_error(client.delete(f"{path}/ada@example.org", headers=HEADERS), 404, "not_found")
        assert client.get(path, headers=HEADERS).json() == []
        _subscribe(client, "bob@example.org")
        assert client.delete("/api/v1/collections/distil", headers=HEADERS).status_code == 204
        _collection(client)  # a new collection of the same name starts without subscribers
        assert client.get(path, headers=HEADERS).json() == []


def test_digests_arrive_once_with_both_parts_and_links(
    built_copy: Path, embedder: Embedder, server: tuple[Inbox, int]
) -> None:
    inbox, port = server
    with _app(built_copy, embedder, port) as client:
        seeds = _collection(client)
        _subscribe(client, "ada@example.org")
        _subscribe(client, "bob@example.org")
        feed = client.get("/api/v1/collections/distil/feed", params={"limit": PER_DIGEST}).json()
        best = [paper["id"] for paper in feed["results"]]
        report = _paperscope(client).send_digests()
        assert [(m.email, m.status, m.papers) for m in report.mails] == [
            ("ada@example.org", "sent", best),
            ("bob@example.org", "sent", best),
        ]
        assert [r.recipients for r in inbox.received] == [["ada@example.org"], ["bob@example.org"]]
        message = inbox.received[0].message
        assert message["Subject"] == f"paperscope: {PER_DIGEST} new papers for distil"
        assert message["From"] == SENDER and message["To"] == "ada@example.org"
        plain, rich = _parts(message)
        for paper in feed["results"]:
            link = f"{PUBLIC}#paper={paper['id']}"
            assert link in plain and link in rich
            assert paper["title"] in plain and paper["topic_label"] in plain
            assert all(term in plain for term in paper["reason"]["terms"])
        seed_title = client.get(f"/api/v1/papers/{seeds[0]}").json()["title"]
        assert seed_title in plain
        leave = re.search(r"Unsubscribe from distil: (\S+)", plain)
        assert leave is not None and leave.group(1).startswith(f"{PUBLIC}api/v1/unsubscribe?token=")
        assert message["List-Unsubscribe"] == f"<{leave.group(1)}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert leave.group(1).replace("&", "&amp;") in rich
        assert _sent(built_copy, "ada@example.org") == set(best)

        again = _paperscope(client).send_digests()  # the next papers, none of the first ones
        assert len(inbox.received) == 4
        assert not set(again.mails[0].papers) & set(best)
        assert len(again.mails[0].papers) == PER_DIGEST

        url = urlsplit(leave.group(1))
        path, token = url.path.removeprefix("/scope"), unquote(url.query.removeprefix("token="))
        page = client.get(path, params={"token": token})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "ada@example.org will get no more digests" in page.text
        used = client.post(path, params={"token": token})  # one-click: used already
        assert "unsubscribes no one" in used.text
        listed = client.get("/api/v1/collections/distil/subscribers", headers=HEADERS).json()
        assert [s["email"] for s in listed] == ["bob@example.org"]
        third = _paperscope(client).send_digests()
        assert [m.email for m in third.mails] == ["bob@example.org"]


def test_a_dry_run_sends_and_records_nothing(
    built_copy: Path, embedder: Embedder, server: tuple[Inbox, int]
) -> None:
    inbox, port = server
    with _app(built_copy, embedder, port) as client:
        _collection(client)
        _subscribe(client, "ada@example.org")
        dry = _paperscope(client).send_digests(dry_run=True)
        assert [m.status for m in dry.mails] == ["dry-run"]
        assert all(paper in dry.mails[0].text for paper in dry.mails[0].papers)
        assert inbox.received == [] and _sent(built_copy, "ada@example.org") == set()
        sent = _paperscope(client).send_digests()
        assert sent.mails[0].papers == dry.mails[0].papers  # the dry run kept nothing back


def test_a_failing_server_records_nothing(
    built_copy: Path, embedder: Embedder, server: tuple[Inbox, int]
) -> None:
    inbox, port = server
    with _app(built_copy, embedder, free_port()) as client:  # nothing listens there
        _collection(client)
        _subscribe(client, "ada@example.org")
        with pytest.raises(MailError, match="cannot reach the mail server"):
            _paperscope(client).send_digests()
        assert _sent(built_copy, "ada@example.org") == set()
    with _app(built_copy, embedder, port) as client:  # the same papers go out once it is back
        _subscribe(client, REFUSED)
        report = _paperscope(client).send_digests()
        assert [(m.email, m.status) for m in report.mails] == [
            ("ada@example.org", "sent"),
            (REFUSED, "refused"),
        ]
        assert "550" in report.mails[1].detail
        assert _sent(built_copy, REFUSED) == set()  # tried again next time
        assert len(inbox.received) == 1


def test_hostile_paper_text_is_escaped_and_kept_out_of_headers(
    built_copy: Path, embedder: Embedder, server: tuple[Inbox, int]
) -> None:
    inbox, port = server
    with _app(built_copy, embedder, port) as client:
        seeds = _collection(client)
        seed = client.get(f"/api/v1/papers/{seeds[0]}").json()
        hostile = {
            "id": 'evil"><b>1',
            "title": HOSTILE_TITLE,
            "abstract": seed["abstract"],  # the same text as the seed: first in its feed
            "authors": [HOSTILE_AUTHOR],
        }
        added = client.post("/api/v1/papers", json={"papers": [hostile]}, headers=HEADERS)
        assert added.status_code in (200, 201), added.text
        _subscribe(client, "ada@example.org")
        report = _paperscope(client).send_digests()
        assert report.mails[0].papers[0] == hostile["id"]
    received = inbox.received[0]
    assert received.recipients == ["ada@example.org"]
    assert "Bcc" not in received.message and "victim" not in str(received.message["Subject"])
    plain, rich = _parts(received.message)
    assert _tags(rich) <= MAIL_TAGS and "<img" not in rich and 'evil"><b>' not in rich
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Distillation Bcc:" in rich
    assert "&lt;img src=x onerror=alert(1)&gt; Mallory" in rich
    assert "#paper=evil%22%3E%3Cb%3E1" in rich
    assert '<script>alert("x")</script> Distillation Bcc: victim@evil.example' in plain


ODD_TEXT = st.text(st.characters(codec="utf-8"), max_size=80)


@given(title=ODD_TEXT, author=ODD_TEXT, terms=st.lists(ODD_TEXT, max_size=3))
def test_any_paper_text_gives_a_sendable_mail(title: str, author: str, terms: list[str]) -> None:
    paper = Recommendation(
        id="p1",
        title=title,
        score=0.9,
        topic_id=1,
        topic_label=title,
        reason=Reason(
            closest_seed="s1",
            seed_similarity=0.8,
            shared_topic=None,
            shared_topic_label=None,
            terms=terms,
        ),
    )
    subscriber = Subscriber("c", "ada@example.org", "tok", "2026-01-01T00:00:00+00:00")
    digest = Pending(subscriber, [DigestPaper(paper, [author], title)])
    message = compose(digest, PUBLIC, SENDER)
    wire = message.as_bytes()  # the default policy refuses a header it cannot write safely
    assert b"\nBcc" not in wire and len(message.get_all("To") or []) == 1
    _, rich = _parts(message)
    assert _tags(rich) <= MAIL_TAGS  # the text made no element of its own


MAIL_TAGS = {"html", "head", "meta", "title", "body", "p", "ol", "li", "a", "b", "br", "small"}
"""The elements the digest's HTML is made of."""


def _tags(page: str) -> set[str]:
    found: set[str] = set()

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.add(tag)

    Parser().feed(page)
    return found


def test_the_command_sends_dry_runs_and_fails_cleanly(
    built_copy: Path, embedder: Embedder, server: tuple[Inbox, int]
) -> None:
    inbox, port = server
    with _app(built_copy, embedder, port) as client:
        _collection(client)
        _subscribe(client, "ada@example.org")

    def digest(*args: str, smtp_port: int = port) -> subprocess.CompletedProcess[str]:
        env = subprocess_env(
            data_dir=built_copy,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_tls="none",
            smtp_from=SENDER,
        )
        command = [SCRIPT, "digest", "send", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)

    dry = digest("--dry-run", "--collection", "distil")
    assert dry.returncode == 0, dry.stderr
    assert "dry-run: ada@example.org <- paperscope: 10 new papers for distil" in dry.stdout
    assert "1 would be sent" in dry.stdout and inbox.received == []
    down = digest(smtp_port=free_port())
    assert down.returncode == 2 and down.stderr.startswith("error: cannot reach the mail server")
    assert "Traceback" not in down.stderr
    sent = digest()
    assert sent.returncode == 0, sent.stderr
    assert "1 sent, 0 refused" in sent.stdout and len(inbox.received) == 1
    unknown = digest("--collection", "nope")
    assert unknown.returncode == 2 and "no collection named" in unknown.stderr
