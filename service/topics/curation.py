"""Curation edits found again in any build: which topic each rename, merge and move means now.

An edit names topics by their ids in the build it was made in. Lineage carries topic ids from
build to build (:mod:`service.topics.lineage`: a topic that keeps its papers keeps its id), so in
a later build the topic with the same id is the one meant, provided it still shares at least
:data:`SAME_ID_JACCARD` of the papers it held then (the edit's *anchors*): a build whose ids
started afresh (another model) numbers other topics the same. Failing that, the topic holding
most of the anchors (Jaccard at least :data:`MIN_JACCARD`, as splits are found) is meant; failing
that the edit is *orphaned*: reported, not applied, never dropped.

Everything here works on fitted topics (as the build made them), never on curated ones, so an
edit is resolved the same way whichever other edits exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.schemas import NOISE_TOPIC
from service.store import StoredEdit

SAME_ID_JACCARD = 0.1
"""A topic keeping an edited topic's id is that topic when it shares this much of its papers."""
MIN_JACCARD = 0.5
"""Otherwise the topic with the most of its papers is, when it shares at least this much."""


@dataclass(frozen=True)
class Resolution:
    """Where one edit applies in a build: ``topic`` None when it is orphaned."""

    edit: int
    topic: int | None
    note: str


@dataclass(frozen=True)
class Curation:
    """The edits resolved against one build: what the served view shows on top of it."""

    names: dict[int, str] = field(default_factory=dict)
    """Topic -> the name a user gave it (the newest rename wins)."""
    merged: dict[int, int] = field(default_factory=dict)
    """Fitted topic -> the topic it was merged into."""
    moved: dict[str, int] = field(default_factory=dict)
    """Paper id -> the topic it was moved to."""
    resolutions: list[Resolution] = field(default_factory=list)

    def final(self, topic: int) -> int:
        """The topic that holds a fitted topic's papers after every merge."""
        seen = {topic}
        while topic in self.merged:
            topic = self.merged[topic]
            if topic in seen:  # merges that resolve into a ring: stop where it closes
                break
            seen.add(topic)
        return topic

    def topic_for(self, paper_id: str, fitted: int) -> int:
        """The topic a paper is served in: where it was moved, else its fitted topic; merged."""
        moved = self.moved.get(paper_id)
        return self.final(fitted if moved is None else moved)


NO_CURATION = Curation()


def jaccard(a: set[str], b: set[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def find_topic(
    topic: int, anchors: list[str], edit_build: str, build_id: str, papers: dict[int, set[str]]
) -> int | None:
    """The topic of this build that an edit's ``topic`` (numbered in ``edit_build``) means."""
    if edit_build == build_id or not anchors:
        return topic if topic in papers else None
    held = set(anchors)
    if topic in papers and jaccard(held, papers[topic]) >= SAME_ID_JACCARD:
        return topic
    scored = [(jaccard(held, members), t) for t, members in papers.items() if t != NOISE_TOPIC]
    best, chosen = max(scored, default=(0.0, None))
    return chosen if best >= MIN_JACCARD else None


def resolve(edits: list[StoredEdit], build_id: str, papers: dict[int, set[str]]) -> Curation:
    """The edits (oldest first) resolved against a build whose fitted topics hold ``papers``
    (topic -> paper ids, the unclustered included)."""
    names: dict[int, str] = {}
    merged: dict[int, int] = {}
    moved: dict[str, int] = {}
    served = set().union(*papers.values()) if papers else set()
    out = []
    for edit in edits:
        topic = find_topic(
            edit.topic, edit.anchors.get(edit.topic, []), edit.build_id, build_id, papers
        )
        if topic is None:
            note = f"orphaned: topic {edit.topic} of build {edit.build_id} is gone"
            out.append(Resolution(edit.id, None, note))
            continue
        note = "applied" if topic == edit.topic else f"applied to topic {topic} (ids changed)"
        if edit.kind == "rename":
            names[topic] = edit.name
        elif edit.kind == "merge":
            found = [
                find_topic(int(s), edit.anchors.get(int(s), []), edit.build_id, build_id, papers)
                for s in edit.sources
            ]
            kept = [s for s in found if s is not None and s != topic]
            merged.update({s: topic for s in kept})
            if len(kept) < len(found):
                note += f"; {len(found) - len(kept)} of {len(found)} merged topics not found"
        else:
            present = [str(p) for p in edit.sources if str(p) in served]
            moved.update({p: topic for p in present})
            if len(present) < len(edit.sources):
                note += f"; {len(edit.sources) - len(present)} papers no longer exist"
        out.append(Resolution(edit.id, topic, note))
    return Curation(names, merged, moved, out)
