from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.errors import InvalidInput
from service.ingest import read_records
from service.schemas import CollectionIn, IngestReport, Paper, Rejected
from service.store import Store, backup_database, integrity_problems, replace_database
from tests.helpers import FIXTURES


def _ingest(store: Store, path: Path) -> IngestReport:
    fmt, records = read_records(path)
    return store.ingest(records, IngestReport(file=str(path), format=fmt))


def test_reingest_same_file_changes_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "p.sqlite") as store:
        first = _ingest(store, FIXTURES / "papers-page.txt")
        again = _ingest(store, FIXTURES / "papers-page.txt")
        assert (first.new, first.updated, first.unchanged) == (4, 0, 0)
        assert (again.new, again.updated, again.unchanged) == (0, 0, 4)
        assert not again.changed
        assert store.count() == 4


def test_changed_abstract_is_an_update_with_a_new_hash(tmp_path: Path) -> None:
    paper = Paper(id="p1", title="T", abstract="first version")
    with Store(tmp_path / "p.sqlite") as store:
        store.ingest([paper], IngestReport(file="a", format="x"))
        hash_before = store.corpus_hash()
        report = store.ingest(
            [paper.model_copy(update={"abstract": "second version"})],
            IngestReport(file="b", format="x"),
        )
        assert report.updated == 1
        assert store.get("p1") == paper.model_copy(update={"abstract": "second version"})
        assert store.corpus_hash() != hash_before


def test_rejected_records_are_listed_not_stored(tmp_path: Path) -> None:
    with Store(tmp_path / "p.sqlite") as store:
        report = _ingest(store, FIXTURES / "papers.jsonl")
        assert report.new == 4  # one has no title: it gets one from its abstract
        assert len(report.rejected) == 2
        assert store.count() == 4


def test_crash_mid_file_rolls_back_the_whole_file(tmp_path: Path) -> None:
    def exploding() -> Iterator[Paper | Rejected]:
        yield Paper(id="a", title="A", abstract="alpha")
        yield Paper(id="b", title="B", abstract="beta")
        raise RuntimeError("disk on fire")

    with Store(tmp_path / "p.sqlite") as store:
        store.ingest(
            [Paper(id="keep", title="K", abstract="kept")], IngestReport(file="", format="")
        )
        with pytest.raises(RuntimeError):
            store.ingest(exploding(), IngestReport(file="x", format="x"))
        assert store.count() == 1
        assert store.get("a") is None
    with Store(tmp_path / "p.sqlite") as reopened:  # and the file on disk agrees
        assert [p.id for p, _ in reopened.papers()] == ["keep"]


def test_embedding_cache_round_trip(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    with Store(tmp_path / "p.sqlite") as store:
        store.save_embeddings("m@1", ["h1", "h2", "h3"], vectors)
        found = store.cached_embeddings("m@1", ["h3", "h1", "missing"])
        assert set(found) == {"h1", "h3"}
        np.testing.assert_array_equal(found["h3"], vectors[2])
        assert store.cached_embeddings("other-model@1", ["h1"]) == {}


def test_an_older_database_gets_the_split_tables_and_keeps_its_papers(tmp_path: Path) -> None:
    path = tmp_path / "papers.sqlite"
    with Store(path) as store:
        report = IngestReport(file="f", format="jsonl")
        store.ingest([Paper(id="a", title="t", abstract="x")], report)
    old = sqlite3.connect(path)  # as a version before topic splits left it
    old.executescript("DROP TABLE subtopic_papers; DROP TABLE subtopics; DROP TABLE topic_splits;")
    old.close()
    with Store(path) as store:
        assert store.get("a") is not None and store.splits() == []
        split = store.save_split(3, "build-1", "now", {0: ("a name", ["a name"])}, {"a": 0}, [])
        (stored,) = store.splits()
        assert (stored.id, stored.topic, stored.paper_subtopic) == (split, 3, {"a": 0})
        assert stored.subtopics == {0: ("a name", ["a name"])}
        store.save_split(3, "build-2", "later", {1: ("b", ["b"])}, {"a": 1}, [split])
        assert [s.build_id for s in store.splits()] == ["build-2"]


def test_a_database_from_before_collections_gains_them_and_keeps_its_papers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "papers.db"
    with Store(path) as store:
        store.ingest(
            iter([Paper(id="a", title="A", abstract="x")]), IngestReport(file="f", format="t")
        )
    old = sqlite3.connect(path)  # as an older release left it: no collections table
    old.execute("DROP TABLE collections")
    old.close()
    with Store(path) as store:
        assert store.ids() == {"a"}
        body = CollectionIn(positive=["a"], note="n")
        saved, created = store.put_collection("mine", body, "2026-01-01T00:00:00+00:00")
        assert created and saved.positive == ["a"]
        again, created = store.put_collection("mine", body, "2026-02-01T00:00:00+00:00")
        assert not created and again.created_at == "2026-01-01T00:00:00+00:00"
        assert store.delete("a")  # a collection keeps ids of deleted papers
    with Store(path) as store:
        kept = store.collection("mine")
        assert kept is not None and kept.positive == ["a"] and kept.updated_at.startswith("2026-02")
        assert [c.name for c in store.collections()] == ["mine"]
        assert store.delete_collection("mine") and store.collection("mine") is None


def test_backup_database_copies_a_consistent_self_contained_file(tmp_path: Path) -> None:
    db = tmp_path / "p.sqlite"
    with Store(db) as store:
        _ingest(store, FIXTURES / "papers-page.txt")
        copied = backup_database(db, tmp_path / "copy.sqlite")  # while a connection is open
    assert copied == 4
    assert integrity_problems(tmp_path / "copy.sqlite") == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == [
        "copy.sqlite"  # no -wal or -shm beside it: the copy is one file
    ]
    with pytest.raises(InvalidInput, match="nothing to back up"):
        backup_database(tmp_path / "none.sqlite", tmp_path / "copy2.sqlite")


def test_integrity_problems_names_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "text.sqlite").write_text("not a database at all" * 100)
    assert integrity_problems(tmp_path / "text.sqlite") == ["file is not a database"]
    sqlite3.connect(tmp_path / "other.sqlite").execute("CREATE TABLE t (x)").connection.close()
    assert integrity_problems(tmp_path / "other.sqlite") == ["no papers table"]


def test_replace_database_refuses_one_in_use_and_replaces_a_damaged_one(tmp_path: Path) -> None:
    db, new = tmp_path / "p.sqlite", tmp_path / "new.sqlite"
    with Store(new) as store:
        _ingest(store, FIXTURES / "papers-page.txt")
    backup_database(new, tmp_path / "copy.sqlite")
    with Store(db), pytest.raises(InvalidInput, match="in use"):
        replace_database(tmp_path / "copy.sqlite", db)
    db.write_bytes(b"garbage" * 1000)  # a damaged database with a stale log beside it
    (tmp_path / "p.sqlite-wal").write_bytes(b"stale log")
    replace_database(tmp_path / "copy.sqlite", db)
    assert not (tmp_path / "p.sqlite-wal").exists() and not (tmp_path / "copy.sqlite").exists()
    with Store(db) as store:
        assert store.count() == 4
