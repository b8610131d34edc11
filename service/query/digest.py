"""Email digests of a collection's feed: its subscribers, what each is due, and the mail.

A digest carries the best papers of the collection's feed (:func:`collections.feed`: seed
similarity, with the reasons) that this subscriber has not been sent before. "New" is kept per
subscriber in the papers database, not read from dates (the bundled corpus has none): what a
sync brings in and ranks high reaches everyone in their next digest, and nothing comes twice.
The caller records a digest as sent (:func:`record`) only once the mail server accepted it.

Every mail has a plain-text and an HTML part; paper text is escaped in the HTML and never put
in a header. Each carries its subscriber's unsubscribe link (a random secret token, kept with
the subscription) in the body and in ``List-Unsubscribe`` (RFC 2369, one-click: RFC 8058).
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import quote

from service.errors import InvalidInput, NotFound
from service.query import collections
from service.query.engine import Engine
from service.sanitize import xml_text
from service.schemas import (
    DigestMail,
    DigestStatus,
    Recommendation,
    SubscriberOut,
    check_email,
)
from service.store import Store, Subscriber

UNSUBSCRIBE_PATH = "api/v1/unsubscribe"
"""Where an unsubscribe link points, below the server's public address."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _out(subscriber: Subscriber) -> SubscriberOut:
    return SubscriberOut(
        collection=subscriber.collection,
        email=subscriber.email,
        created_at=subscriber.created_at,
    )


def _address(email: str) -> str:
    """``email`` as stored (checked and normalised); InvalidInput when it is not one."""
    try:
        return check_email(email)
    except ValueError as err:
        raise InvalidInput(str(err)) from None


# -- subscribers -------------------------------------------------------------------------------


def subscribe(db_path: Path, name: str, email: str) -> tuple[SubscriberOut, bool]:
    """Subscribe ``email`` to collection ``name``'s digest; True when new."""
    collections.get(db_path, None, name)  # NotFound when there is no such collection
    fresh = Subscriber(name, _address(email), secrets.token_urlsafe(32), _now())
    with Store(db_path) as store:
        stored, created = store.subscribe(fresh)
    return _out(stored), created


def subscribers(db_path: Path, name: str) -> list[SubscriberOut]:
    collections.get(db_path, None, name)
    with Store(db_path) as store:
        return [_out(s) for s in store.subscribers(name)]


def unsubscribe(db_path: Path, name: str, email: str) -> None:
    with Store(db_path) as store:
        if not store.unsubscribe(name, _address(email)):
            raise NotFound(f"{email!r} is not subscribed to {name!r}")


def unsubscribe_token(db_path: Path, token: str) -> SubscriberOut | None:
    """Remove the subscription an unsubscribe link names; None when none has that token
    (unsubscribed already, or a wrong link)."""
    with Store(db_path) as store:
        found = store.unsubscribe_token(token)
    return _out(found) if found is not None else None


def forget(db_path: Path, name: str) -> None:
    """A deleted collection's subscribers go with it (a new one of that name starts afresh)."""
    with Store(db_path) as store:
        store.forget_subscribers(name)


def unsubscribed_page(found: SubscriberOut | None) -> str:
    """The plain page an unsubscribe link shows."""
    if found is None:
        said = "This link unsubscribes no one: it was used already, or it is not a valid link."
    else:
        said = (
            f"{html.escape(found.email)} will get no more digests of the collection "
            f"{html.escape(found.collection)}."
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>paperscope: unsubscribed</title></head>"
        f"<body><h1>Unsubscribed</h1><p>{said}</p></body></html>"
    )


# -- what is due -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestPaper:
    paper: Recommendation
    authors: list[str]
    seed_title: str
    """The title of the seed it is most like (its id when that is no longer served)."""


@dataclass(frozen=True)
class Pending:
    """One digest to send: a subscriber and the papers it carries, best first."""

    subscriber: Subscriber
    papers: list[DigestPaper]


def pending(
    db_path: Path, engine: Engine, limit: int, collection: str | None = None
) -> tuple[list[Pending], int]:
    """The digests due now (one per subscriber with new papers), and how many subscribers have
    nothing new. ``collection``: only that one (NotFound when there is none)."""
    if collection is not None:
        collections.get(db_path, None, collection)
    with Store(db_path) as store:
        existing = {c.name for c in store.collections()}
        due = [s for s in store.subscribers(collection) if s.collection in existing]
        sent = {(s.collection, s.email): store.sent_papers(s.collection, s.email) for s in due}
    out: list[Pending] = []
    for subscriber in due:
        key = (subscriber.collection, subscriber.email)
        feed = collections.feed(db_path, engine, subscriber.collection, None, limit, sent[key])
        papers = [_digest_paper(engine, r) for r in feed.results]
        if papers:
            out.append(Pending(subscriber, papers))
    return out, len(due) - len(out)


def _digest_paper(engine: Engine, paper: Recommendation) -> DigestPaper:
    seed = paper.reason.closest_seed
    title = engine.paper(seed).title if engine.has_paper(seed) else seed
    return DigestPaper(paper, engine.paper(paper.id).authors, title)


def record(db_path: Path, digest: Pending) -> None:
    """Remember the digest's papers as sent to its subscriber: call once the server took it."""
    ids = [p.paper.id for p in digest.papers]
    with Store(db_path) as store:
        store.record_sent(digest.subscriber.collection, digest.subscriber.email, ids, _now())


def outcome(digest: Pending, status: DigestStatus, detail: str = "", text: str = "") -> DigestMail:
    return DigestMail(
        collection=digest.subscriber.collection,
        email=digest.subscriber.email,
        subject=subject(digest),
        papers=[p.paper.id for p in digest.papers],
        status=status,
        detail=detail,
        text=text,
    )


# -- the mail ----------------------------------------------------------------------------------


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/{UNSUBSCRIBE_PATH}?token={quote(token, safe='')}"


def paper_url(base_url: str, paper_id: str) -> str:
    """The paper on the map page (the page opens the paper its address names)."""
    return f"{base_url.rstrip('/')}/#paper={quote(paper_id, safe='')}"


def subject(digest: Pending) -> str:
    """The subject line: counts and the collection's name (letters, digits, '._-') only."""
    count = len(digest.papers)
    return (
        f"paperscope: {count} new paper{'s' if count != 1 else ''} "
        f"for {digest.subscriber.collection}"
    )


def compose(digest: Pending, base_url: str, sender: str) -> EmailMessage:
    """The digest as a mail with a plain-text and an HTML part."""
    subscriber = digest.subscriber
    leave = unsubscribe_url(base_url, subscriber.token)
    message = EmailMessage()
    message["Subject"] = subject(digest)
    message["From"] = sender
    message["To"] = Address(addr_spec=subscriber.email)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid("digest", domain=_domain(sender))
    message["List-Unsubscribe"] = f"<{leave}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(plain_text(digest, base_url))
    message.add_alternative(html_text(digest, base_url), subtype="html")
    return message


def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "paperscope.invalid"


def _line(text: str) -> str:
    """Stored text as one clean line: no control characters, whitespace runs as one space."""
    return " ".join(xml_text(text).split())


def _why(item: DigestPaper) -> str:
    reason = item.paper.reason
    why = f"like “{item.seed_title}” (similarity {reason.seed_similarity:.2f})"
    if reason.terms:
        why += f"; shared terms: {', '.join(reason.terms)}"
    return _line(why)


def _authors(authors: list[str]) -> str:
    shown = ", ".join(authors[:6]) + (" et al." if len(authors) > 6 else "")
    return _line(shown) or "unknown authors"


def plain_text(digest: Pending, base_url: str) -> str:
    """The plain-text part (also what a dry run shows)."""
    leave = unsubscribe_url(base_url, digest.subscriber.token)
    collection = digest.subscriber.collection
    lines = [f"New papers for your paperscope collection {collection}:", ""]
    for rank, item in enumerate(digest.papers, 1):
        paper = item.paper
        lines += [
            f"{rank}. {_line(paper.title) or '(untitled)'}",
            f"   {_authors(item.authors)}",
            f"   {paper.date or 'undated'} · topic: {_line(paper.topic_label)}",
            f"   why: {_why(item)}",
            f"   {paper_url(base_url, paper.id)}",
            "",
        ]
    lines += ["-- ", f"Unsubscribe from {collection}: {leave}", ""]
    return "\n".join(lines)


def html_text(digest: Pending, base_url: str) -> str:
    """The HTML part: every piece of paper text escaped, links quoted."""
    leave = unsubscribe_url(base_url, digest.subscriber.token)
    esc = html.escape
    collection = esc(digest.subscriber.collection)
    items = []
    for item in digest.papers:
        paper = item.paper
        items.append(
            f'<li><p><a href="{esc(paper_url(base_url, paper.id))}">'
            f"<b>{esc(_line(paper.title) or '(untitled)')}</b></a><br>"
            f"{esc(_authors(item.authors))}<br>"
            f"{esc(paper.date or 'undated')} · topic: {esc(_line(paper.topic_label))}<br>"
            f"<small>why: {esc(_why(item))}</small></p></li>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>paperscope: {collection}</title></head><body>"
        f"<p>New papers for your paperscope collection <b>{collection}</b>:</p>"
        f"<ol>{''.join(items)}</ol>"
        f'<p><small><a href="{esc(leave)}">Unsubscribe from {collection}</a></small></p>'
        "</body></html>\n"
    )
