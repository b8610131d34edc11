"""Saved collections and their feeds: "my reading list, and new papers like it since Monday".

A collection (kept in the papers database by :mod:`service.store`, apart from any build) names
positive and negative seed papers, papers already seen, and a note. Its feed is its recommend
(:mod:`service.query.recommend`, reasons included) over the papers dated or added live since a
day; seeds and seen papers never come back. A seed deleted since is kept in the collection and
reported as ``missing``, never an error. The feed is also an Atom document (feedgen), which any
feed reader can subscribe to.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from pathlib import Path
from urllib.parse import quote

import numpy as np
from feedgen.feed import FeedGenerator

from service.errors import InvalidInput, NotFound
from service.query import classifier
from service.query.engine import Engine
from service.query.recommend import recommend
from service.sanitize import xml_text
from service.schemas import (
    MAX_K,
    MAX_SEEDS,
    Collection,
    CollectionIn,
    CollectionOut,
    Feed,
    PaperSeed,
    RecommendRequest,
    check_day,
)
from service.store import Store


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _out(engine: Engine | None, collection: Collection) -> CollectionOut:
    return CollectionOut(**collection.model_dump(), missing=_missing(engine, collection))


def _missing(engine: Engine | None, collection: Collection) -> list[str]:
    if engine is None:
        return []
    seeds = dict.fromkeys([*collection.positive, *collection.negative])
    return [paper_id for paper_id in seeds if not engine.has_paper(paper_id)]


def put(db_path: Path, engine: Engine, name: str, body: CollectionIn) -> tuple[CollectionOut, bool]:
    """Create or replace collection ``name``; True when it is new. Its seeds must be served now
    (a typo is refused, 422); they may be deleted later."""
    both = set(body.positive) & set(body.negative)
    if both:
        raise InvalidInput(f"papers both positive and negative: {sorted(both)[:5]}")
    unknown = [
        i for i in dict.fromkeys([*body.positive, *body.negative]) if not engine.has_paper(i)
    ]
    if unknown:
        raise InvalidInput(f"no paper with id {unknown[0]!r}" + _more(unknown))
    with Store(db_path) as store:
        saved, created = store.put_collection(name, body, _now())
    return _out(engine, saved), created


def _more(items: list[str]) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def add(
    db_path: Path, engine: Engine, name: str, positive: list[str], negative: list[str], note: str
) -> tuple[CollectionOut, bool]:
    """Add papers to collection ``name`` (created if new); a paper moves between positive and
    negative when given again; the note is replaced when one is given."""
    with Store(db_path) as store:
        old = store.collection(name)
    keep_pos = [i for i in (old.positive if old else []) if i not in negative]
    keep_neg = [i for i in (old.negative if old else []) if i not in positive]
    body = CollectionIn(
        positive=list(dict.fromkeys([*keep_pos, *positive])),
        negative=list(dict.fromkeys([*keep_neg, *negative])),
        seen=old.seen if old else [],
        note=note or (old.note if old else ""),
    )
    return put(db_path, engine, name, body)


def get(db_path: Path, engine: Engine | None, name: str) -> CollectionOut:
    with Store(db_path) as store:
        found = store.collection(name)
    if found is None:
        raise NotFound(f"no collection named {name!r}")
    return _out(engine, found)


def listing(db_path: Path, engine: Engine | None) -> list[CollectionOut]:
    with Store(db_path) as store:
        return [_out(engine, c) for c in store.collections()]


def delete(db_path: Path, name: str) -> None:
    with Store(db_path) as store:
        if not store.delete_collection(name):
            raise NotFound(f"no collection named {name!r}")


def feed(
    db_path: Path,
    engine: Engine,
    name: str,
    since: str | None = None,
    limit: int = 20,
    exclude: Iterable[str] = (),
) -> Feed:
    """Papers dated or added live on/after ``since`` (every paper when None), ranked by the
    collection's recommend; seeds, seen papers and ``exclude`` (a digest's sent papers) never
    come back."""
    if not 1 <= limit <= MAX_K:
        raise InvalidInput(f"limit must be between 1 and {MAX_K}, got {limit}")
    try:
        check_day(since)
    except ValueError:
        raise InvalidInput(f"since must be a day as YYYY-MM-DD, got {since!r}") from None
    collection = get(db_path, engine, name)
    missing = set(collection.missing)
    positive = [i for i in collection.positive if i not in missing]
    negative = [i for i in collection.negative if i not in missing]
    if not positive:  # every positive seed deleted: nothing to rank by
        return Feed(
            collection=name,
            since=since,
            missing=collection.missing,
            ranking_note="every positive paper was deleted since: nothing to rank by",
            results=[],
        )
    view = engine.view
    among = None
    if since is not None:
        dated = view.filter_rows(since=since)
        assert dated is not None
        among = np.union1d(dated, np.asarray(view.added_since(since), dtype=np.int64))
    seen = view.rows_of([*collection.seen, *exclude])
    learned = classifier.learned_feed(view, positive, negative, among, seen, limit)
    if learned is not None:
        results, note = learned
        return Feed(
            collection=name,
            since=since,
            missing=collection.missing,
            ranking="classifier",
            ranking_note=note,
            results=results,
        )
    request = RecommendRequest(  # the latest seeds, as many as a recommend takes
        positive=[PaperSeed(id=i) for i in positive[-MAX_SEEDS:]],
        negative=[PaperSeed(id=i) for i in negative[-MAX_SEEDS:]],
        limit=limit,
    )
    results = recommend(view, request, among=among, exclude=seen)
    return Feed(
        collection=name,
        since=since,
        missing=collection.missing,
        ranking_note=classifier.seeds_note(len(positive), len(negative)),
        results=results,
    )


def atom(result: Feed, base_url: str, note: str = "") -> bytes:
    """The feed as an Atom 1.0 document: one entry per paper, linking to it on the map page,
    its reason as the summary. Text is stripped of what XML 1.0 cannot hold (control
    characters, NUL: :func:`~service.sanitize.xml_text`), so any stored text gives a document."""
    base = base_url.rstrip("/") + "/"
    self_url = f"{base}api/v1/collections/{quote(result.collection)}/feed.atom"
    now = datetime.now(UTC)
    generator = FeedGenerator()
    generator.id(self_url)
    generator.title(f"paperscope: new papers for {result.collection}")
    generator.subtitle(xml_text(note) or f"Papers like the collection {result.collection}")
    generator.author({"name": "paperscope"})
    generator.link(href=self_url, rel="self")
    generator.link(href=base, rel="alternate")
    generator.updated(now)
    generator.generator("paperscope")
    for paper in result.results:
        entry = generator.add_entry(order="append")
        link = f"{base}#paper={quote(paper.id, safe='')}"
        entry.id(f"{base}api/v1/papers/{quote(paper.id, safe='/')}")
        entry.title(xml_text(paper.title).strip() or "(untitled)")
        entry.link(href=link)
        entry.updated(_when(paper.date) or now)
        reason = paper.reason
        why = f"like {reason.closest_seed} (similarity {reason.seed_similarity:.2f})"
        if reason.shared_topic_label:
            why += f"; topic: {reason.shared_topic_label}"
        if reason.terms:
            why += f"; shared terms: {', '.join(reason.terms)}"
        entry.summary(xml_text(why))
        for category in filter(None, map(xml_text, paper.categories)):
            entry.category(term=category)
    return bytes(generator.atom_str(pretty=True))


def _when(day: str | None) -> datetime | None:
    if day is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(day), time(), tzinfo=UTC)
    except ValueError:
        return None
