"""Curation edits found again in a build: by lineage's ids while the topic keeps its papers,
else by the papers, else orphaned; merges and moves resolved the same way."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.store import StoredEdit
from service.topics.curation import Curation, resolve

OLD = "20260101T000000Z-aaaaaa"
NEW = "20260102T000000Z-bbbbbb"
PAPERS = {0: {"a", "b", "c", "d"}, 1: {"e", "f", "g"}, 2: {"h", "i"}, -1: {"z"}}


def _edit(
    edit_id: int, kind: str, topic: int, sources: list[int | str] | None = None, name: str = ""
) -> StoredEdit:
    named = [topic, *(s for s in sources or [] if isinstance(s, int) and kind == "merge")]
    anchors = {t: sorted(PAPERS[t]) for t in named}
    return StoredEdit(edit_id, kind, topic, OLD, name, sources or [], anchors, "2026-01-01")


def test_in_its_own_build_an_edit_names_topics_by_id() -> None:
    curation = resolve([_edit(1, "rename", 0, name="mine")], OLD, PAPERS)
    assert curation.names == {0: "mine"} and curation.resolutions[0].note == "applied"


def test_a_later_build_keeps_the_id_while_the_topic_keeps_its_papers() -> None:
    later = {0: {"a", "b", "x", "y", "w"}, 1: {"c", "d", "e", "f", "g"}, 2: {"h", "i"}}
    curation = resolve([_edit(1, "rename", 0, name="mine")], NEW, later)
    assert curation.names == {0: "mine"}


def test_renumbered_topics_are_found_by_their_papers() -> None:
    renumbered = {7: PAPERS[0] | {"n"}, 0: {"q", "r", "s"}, 8: PAPERS[1]}
    curation = resolve([_edit(1, "rename", 0, name="mine")], NEW, renumbered)
    assert curation.names == {7: "mine"}
    assert curation.resolutions[0].topic == 7 and "ids changed" in curation.resolutions[0].note


def test_an_edit_whose_topic_is_gone_is_orphaned_not_dropped() -> None:
    gone = {1: PAPERS[1], 2: PAPERS[2], 5: {"new", "ones"}}
    curation = resolve([_edit(1, "rename", 0, name="mine"), _edit(2, "move", 0, ["e"])], NEW, gone)
    assert curation.names == {} and curation.moved == {}
    assert [(r.edit, r.topic) for r in curation.resolutions] == [(1, None), (2, None)]
    assert all("orphaned" in r.note for r in curation.resolutions)


def test_merges_and_moves_say_what_they_could_not_find() -> None:
    later = {0: PAPERS[0], 1: PAPERS[1], 9: {"other"}}
    curation = resolve(
        [_edit(1, "merge", 0, [1, 2]), _edit(2, "move", 1, ["h", "deleted"])], NEW, later
    )
    assert curation.merged == {1: 0}
    assert "1 of 2 merged topics not found" in curation.resolutions[0].note
    assert curation.moved == {}  # neither paper is served any longer
    assert "2 papers no longer exist" in curation.resolutions[1].note
    assert curation.topic_for("e", 1) == 0  # a paper of the merged topic is in the kept one


def test_a_move_into_a_topic_merged_since_lands_in_the_merged_topic() -> None:
    curation = resolve([_edit(1, "move", 2, ["a"]), _edit(2, "merge", 1, [2])], OLD, PAPERS)
    assert curation.topic_for("a", 0) == 1 and curation.topic_for("h", 2) == 1
    assert curation.topic_for("z", -1) == -1


@given(st.dictionaries(st.integers(0, 8), st.integers(0, 8), max_size=9))
def test_every_topic_ends_in_one_that_stays(merged: dict[int, int]) -> None:
    curation = Curation(merged=merged)
    for topic in range(9):
        end = curation.final(topic)
        assert curation.final(end) == end or end in merged  # a ring stops where it closes
