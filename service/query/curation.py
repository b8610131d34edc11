"""Curation that lasts: topics renamed, topics merged and papers moved by hand.

Edits are kept in the papers database (:class:`~service.store.StoredEdit`), never in a build,
like splits (:mod:`service.query.subtopics`): each names topics by their ids in the build it was
made in, with those topics' papers then. Whenever a build is served (a server loading it, a
command opening it) and whenever the edits change, every edit is resolved against the build's
fitted topics (:func:`service.topics.curation.resolve`: same id while lineage kept it, else
the papers decide) and the view serves the result at once, without a rebuild: a renamed topic
shows the user's name (``user_named``), a merged topic's papers are in the topic it was merged
into and it is gone from every listing, a moved paper is in its chosen topic. Builds stay as
fitted, so lineage keeps carrying the fitted ids and the edits find them again. Where each edit
applied in each build is recorded (its lineage); an edit whose topic is gone is *orphaned*:
listed with a note, not applied, until undone.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from service.errors import InvalidInput, NotFound, PaperscopeError
from service.query.engine import Engine
from service.query.view import BuildView, Curated
from service.schemas import NOISE_TOPIC, EditLineageOut, TopicEdit, TopicNameIn
from service.store import EditLineage, Store, StoredEdit
from service.topics.cluster import ordered_members
from service.topics.curation import Curation, resolve

log = logging.getLogger(__name__)


def fitted_papers(view: BuildView) -> dict[int, set[str]]:
    """Fitted topic -> its paper ids (build and live rows, hidden ones too)."""
    out: dict[int, set[str]] = {t: set() for t in view.fitted.topics}
    for row, topic in enumerate(view.fitted.assignments.tolist()):
        out.setdefault(int(topic), set()).add(view.ids[row])
    for paper, topic in zip(view.live.papers, view.live.placed.tolist(), strict=True):
        out.setdefault(int(topic), set()).add(paper.id)
    return out


def apply(engine: Engine, db_path: Path) -> Curation:
    """Resolve the stored edits against the served build and serve the topics as curated;
    records where each edit applied in this build (once per build). Papers added live later
    follow the edits as they are added (:meth:`BuildView.add_live`)."""
    view = engine.view
    with Store(db_path) as store:
        edits = store.edits()
    if [r.edit for r in view.curation.resolutions] == [e.id for e in edits]:
        return view.curation  # the same edits (a live addition changed the store): kept as is
    with view.changed:
        curation = resolve(edits, engine.manifest.build_id, fitted_papers(view))
        if curation != view.curation:
            view.set_curated(_curated(view, curation))
    if edits:
        _record(db_path, engine.manifest.build_id, curation)
    return curation


def _record(db_path: Path, build_id: str, curation: Curation) -> None:
    entries = [EditLineage(r.edit, build_id, r.topic, r.note) for r in curation.resolutions]
    try:
        with Store(db_path) as store:
            store.record_lineage(entries)
    except PaperscopeError as err:  # a read-only data folder: the edits still apply
        log.warning("cannot record where topic edits applied: %s", err)


def _curated(view: BuildView, curation: Curation) -> Curated:
    """The view's topic state with ``curation`` applied to its fitted topics."""
    fitted = view.fitted
    assignments = fitted.assignments.copy()
    outliers, confidence = fitted.outliers.copy(), fitted.confidence.copy()
    for source in curation.merged:
        assignments[fitted.assignments == source] = curation.final(source)
    touched = {curation.final(s) for s in curation.merged}
    for paper_id, chosen in curation.moved.items():
        row = view.build_row(paper_id)
        if row is None:
            continue
        touched |= {int(assignments[row]), curation.final(chosen)}
        assignments[row] = curation.final(chosen)
        outliers[row], confidence[row] = False, 1.0  # a user put it there
    topics = {}
    for topic in fitted.topics.values():
        if curation.final(topic.id) != topic.id:
            continue  # merged into another
        name = curation.names.get(topic.id, topic.name)
        members = topic.members
        if topic.id in touched:
            members = ordered_members(np.flatnonzero(assignments == topic.id), view.vectors)
        topics[topic.id] = replace(topic, members=members, name=name)
    groups = [replace(g, children=[c for c in g.children if c in topics]) for g in fitted.groups]
    live = [
        curation.topic_for(p.id, int(t))
        for p, t in zip(view.live.papers, view.live.placed.tolist(), strict=True)
    ]
    return Curated(
        assignments,
        outliers,
        confidence,
        topics,
        groups,
        np.array(live, dtype=np.int32),
        curation,
    )


# -- edits ----------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _served_topic(view: BuildView, topic_id: int) -> int:
    """A topic a user may edit: served now (404 otherwise), not the unclustered papers."""
    if topic_id == NOISE_TOPIC:
        raise InvalidInput("the unclustered papers (topic -1) are no topic to edit")
    view.topic(topic_id)  # NotFound for an unknown or merged-away id
    return topic_id


def _save(engine: Engine, db_path: Path, edit: StoredEdit) -> TopicEdit:
    with Store(db_path) as store:
        store.ensure_sound()
        edit_id = store.save_edit(edit)
    apply(engine, db_path)
    return next(e for e in listing(engine, db_path) if e.id == edit_id)


def _anchors(view: BuildView, topics: list[int]) -> dict[int, list[str]]:
    papers = fitted_papers(view)
    return {t: sorted(papers.get(t, set())) for t in topics}


def rename(engine: Engine, db_path: Path, topic_id: int, name: str) -> TopicEdit:
    """Give a topic a name (cleaned and checked as :class:`~service.schemas.TopicNameIn`)."""
    try:
        name = TopicNameIn(name=name).name
    except ValidationError as err:
        raise InvalidInput(f"bad topic name: {err.errors()[0]['msg']}") from None
    view = engine.view
    topic = _served_topic(view, topic_id)
    edit = StoredEdit(
        0, "rename", topic, engine.manifest.build_id, name, [], _anchors(view, [topic]), _now()
    )
    return _save(engine, db_path, edit)


def merge(engine: Engine, db_path: Path, into: int, topics: list[int]) -> TopicEdit:
    """Merge ``topics`` into ``into``: their papers join it, they disappear."""
    view = engine.view
    sources = list(dict.fromkeys(topics))
    if into in sources:
        raise InvalidInput(f"topic {into} cannot be merged into itself")
    for topic in [into, *sources]:
        _served_topic(view, topic)
    edit = StoredEdit(
        0,
        "merge",
        into,
        engine.manifest.build_id,
        "",
        list(sources),
        _anchors(view, [into, *sources]),
        _now(),
    )
    return _save(engine, db_path, edit)


def move(engine: Engine, db_path: Path, topic_id: int, paper_ids: list[str]) -> TopicEdit:
    """Move papers (served now: 404 otherwise) into a topic; they stay there across builds."""
    view = engine.view
    topic = _served_topic(view, topic_id)
    papers = list(dict.fromkeys(paper_ids))
    for paper_id in papers:
        view.row_of(paper_id)  # NotFound for a paper not served
    edit = StoredEdit(
        0,
        "move",
        topic,
        engine.manifest.build_id,
        "",
        list(papers),
        _anchors(view, [topic]),
        _now(),
    )
    return _save(engine, db_path, edit)


def undo(engine: Engine | None, db_path: Path, edit_id: int) -> None:
    """Delete an edit; the served topics are as if it was never made."""
    with Store(db_path) as store:
        if not store.delete_edit(edit_id):
            raise NotFound(f"no topic edit with id {edit_id}")
    if engine is not None:
        apply(engine, db_path)


def listing(engine: Engine, db_path: Path) -> list[TopicEdit]:
    """Every edit, oldest first, with where it applies now and in each build since."""
    if not db_path.exists():
        return []
    with Store(db_path) as store:
        edits, lineage = store.edits(), store.edit_lineage()
    now = {r.edit: r for r in engine.view.curation.resolutions}
    if any(e.id not in now for e in edits):  # made by another process since: apply them first
        now = {r.edit: r for r in apply(engine, db_path).resolutions}
        with Store(db_path) as store:
            edits, lineage = store.edits(), store.edit_lineage()
    out = []
    for edit in edits:
        resolution = now.get(edit.id)
        applied = resolution.topic if resolution is not None else None
        out.append(
            TopicEdit(
                id=edit.id,
                kind=edit.kind,
                topic=edit.topic,
                build_id=edit.build_id,
                name=edit.name if edit.kind == "rename" else None,
                topics=[int(s) for s in edit.sources] if edit.kind == "merge" else [],
                paper_ids=[str(s) for s in edit.sources] if edit.kind == "move" else [],
                created_at=edit.created_at,
                applied_to=applied,
                status="orphaned" if applied is None else "applied",
                note=resolution.note if resolution is not None else "made since this listing",
                lineage=[
                    EditLineageOut(build_id=e.build_id, topic=e.topic, note=e.note)
                    for e in lineage
                    if e.edit == edit.id
                ],
            )
        )
    return out
