"""Thumbs up and down on a collection's papers, and the "help me decide" list.

A rating moves the paper into the collection's positive (up) or negative (down) papers and its
seen papers (so it leaves the feed), and is recorded in the database with its time. Once the
collection has enough of both kinds its feed ranks by a classifier
(:mod:`service.query.classifier`); the papers that classifier is least sure about are the ones
worth rating next. With too few ratings, the list is the feed's top papers: rating them is what
gets the classifier going.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from service.errors import InvalidInput, NotFound
from service.query import classifier, collections
from service.query.engine import Engine
from service.schemas import MAX_K, CollectionOut, Feed, FeedbackIn
from service.store import Store


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def rate(db_path: Path, engine: Engine, name: str, body: FeedbackIn) -> CollectionOut:
    """Record a rating of a served paper (422 for one not served, 404 for no collection)."""
    if not engine.has_paper(body.paper_id):
        raise InvalidInput(f"no paper with id {body.paper_id!r}")
    with Store(db_path) as store:
        saved = store.rate(name, body.paper_id, body.rating == "up", _now())
    if saved is None:
        raise NotFound(f"no collection named {name!r}")
    return collections.get(db_path, engine, name)


def uncertain(db_path: Path, engine: Engine, name: str, k: int) -> Feed:
    """The k unseen papers the collection's classifier is least sure about; the feed's top k
    (ranked by its seeds) while it has too few ratings for one."""
    if not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be between 1 and {MAX_K}, got {k}")
    collection = collections.get(db_path, engine, name)
    missing = set(collection.missing)
    positive = [i for i in collection.positive if i not in missing]
    negative = [i for i in collection.negative if i not in missing]
    view = engine.view
    found = classifier.least_sure_feed(view, positive, negative, view.rows_of(collection.seen), k)
    if found is None:
        feed = collections.feed(db_path, engine, name, None, k)
        if not feed.results:  # nothing left to rate, or no positive paper served
            return feed
        note = f"{feed.ranking_note}: rate these, the feed's top papers, to get it going"
        return feed.model_copy(update={"ranking_note": note})
    return Feed(
        collection=name,
        since=None,
        missing=collection.missing,
        ranking="classifier",
        ranking_note=f"the papers the classifier ({len(positive)} positive, {len(negative)} "
        "negative papers) is least sure about: a rating here teaches it most",
        results=found,
    )
