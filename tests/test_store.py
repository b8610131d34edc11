from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.errors import DatabaseDamaged, InvalidInput
from service.ingest import read_records
from service.schemas import CollectionIn, IngestReport, Paper, Rejected
from service.store import (
    Store,
    Subscriber,
    backup_database,
    integrity_problems,
    replace_database,
)
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


def _unit_vectors(n: int, dim: int = 8) -> np.ndarray:
    vectors = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    unit: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


def test_embedding_cache_round_trip(tmp_path: Path) -> None:
    vectors = _unit_vectors(3)
    with Store(tmp_path / "p.sqlite") as store:
        store.save_embeddings("m@1", ["h1", "h2", "h3"], vectors)
        found = store.cached_embeddings("m@1", ["h3", "h1", "missing"])
        assert set(found) == {"h1", "h3"}
        np.testing.assert_array_equal(found["h3"], vectors[2])
        assert store.cached_embeddings("other-model@1", ["h1"]) == {}


def test_forgetting_embeddings_drops_them_under_every_model(tmp_path: Path) -> None:
    vectors = _unit_vectors(2)
    hashes = [f"x{i}" for i in range(600)] + ["h2"]  # h2 past the first chunk of 500
    with Store(tmp_path / "p.sqlite") as store:
        store.save_embeddings("m@1", ["h1", "h2"], vectors)
        store.save_embeddings("m@2", ["h1", "h2"], vectors)
        assert store.forget_embeddings(["h1", "h1", "h0"]) == 2  # h1 under both models
        assert set(store.cached_embeddings("m@1", ["h1", "h2"])) == {"h2"}
        assert set(store.cached_embeddings("m@2", ["h1", "h2"])) == {"h2"}
        assert store.forget_embeddings(hashes) == 2  # h2 under both, found past 500 hashes
        assert store.cached_embeddings("m@2", ["h2"]) == {}


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


def test_ratings_move_papers_between_lists_and_survive_an_older_database(
    tmp_path: Path,
) -> None:
    path = tmp_path / "papers.db"
    with Store(path) as store:
        store.put_collection("mine", CollectionIn(positive=["a"], seen=["s"]), "t0")
    old = sqlite3.connect(path)  # as a release before ratings left it
    old.execute("DROP TABLE collection_ratings")
    old.close()
    with Store(path) as store:
        assert store.rate("nobody", "b", True, "t1") is None
        store.rate("mine", "b", True, "t1")
        store.rate("mine", "c", False, "t2")
        moved = store.rate("mine", "b", False, "t3")  # rated again: moves to the negatives
        assert moved is not None
        assert (moved.positive, moved.negative, moved.seen) == (["a"], ["c", "b"], ["s", "b", "c"])
        assert moved.updated_at == "t3" and moved.created_at == "t0"
        assert store.ratings("mine") == {"c": "down", "b": "down"}
        with pytest.raises(InvalidInput, match="at least one positive"):
            store.rate("mine", "a", False, "t4")  # the last positive paper stays
        assert store.collection("mine") == moved
        assert store.delete_collection("mine") and store.ratings("mine") == {}


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
    assert integrity_problems(tmp_path / "other.sqlite") == [
        "no papers table: not a paperscope database"
    ]


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


def _many_papers(path: Path, n: int = 300) -> None:
    """A database of several hundred pages: papers, their cached vectors, one collection."""
    papers = [
        Paper(id=f"p{i}", title=f"Paper {i}", abstract=f"abstract {i} " * 60) for i in range(n)
    ]
    with Store(path) as store:
        store.ingest(papers, IngestReport(file="f", format="x"))
        hashes = [h for _, h in store.papers()]
        store.save_embeddings("m@1", hashes, _unit_vectors(n, 384))
        store.put_collection("mine", CollectionIn(positive=["p1"]), "2026-01-01T00:00:00+00:00")


def test_a_damaged_cached_vector_is_embedded_again_not_served(tmp_path: Path) -> None:
    vectors = _unit_vectors(2)
    with Store(tmp_path / "p.sqlite") as store:
        store.save_embeddings("m@1", ["h1", "h2"], vectors)
    damaged = bytearray(vectors[1].tobytes())
    damaged[4:8] = b"\xff\xff\xff\x7f"  # a NaN where a float was
    db = sqlite3.connect(tmp_path / "p.sqlite")
    db.execute("UPDATE embeddings SET vector = ? WHERE content_hash = 'h2'", (bytes(damaged),))
    db.commit()
    db.close()
    assert integrity_problems(tmp_path / "p.sqlite") == [
        "1 vectors in embeddings are damaged: ['h2']"
    ]
    with Store(tmp_path / "p.sqlite") as store:
        assert set(store.cached_embeddings("m@1", ["h1", "h2"])) == {"h1"}  # h2: a cache miss
        store.save_embeddings("m@1", ["h2"], vectors[1:])  # embedded again, replacing it
    assert integrity_problems(tmp_path / "p.sqlite") == []


def test_text_changed_behind_its_hash_is_found(tmp_path: Path) -> None:
    _many_papers(tmp_path / "p.sqlite", n=3)
    db = sqlite3.connect(tmp_path / "p.sqlite")
    db.execute("UPDATE papers SET abstract = 'flipped' WHERE id = 'p2'")  # as a flipped byte
    db.commit()
    db.close()
    assert integrity_problems(tmp_path / "p.sqlite") == [
        "1 papers' text does not match its hash: ['p2']"
    ]


def test_a_truncated_database_is_damaged_not_a_sqlite_error(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    _many_papers(path)
    assert integrity_problems(path) == []
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert integrity_problems(path) == ["database disk image is malformed"]
    with pytest.raises(DatabaseDamaged, match=r"is damaged.*verify"), Store(path) as store:
        store.ensure_sound()  # opening it, or the check, says so: never a sqlite3 error


def test_flipped_page_bytes_are_found_by_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    _many_papers(path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2 // 4096 * 4096  # the header of a page in the middle
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))
    assert integrity_problems(path)
    with pytest.raises(DatabaseDamaged), Store(path) as store:
        store.ensure_sound()


def test_an_older_database_gets_the_digest_tables_and_keeps_its_papers(tmp_path: Path) -> None:
    db = tmp_path / "papers.sqlite"
    with Store(db) as store:
        store._db.executescript("DROP TABLE subscribers; DROP TABLE digest_sent;")
    with Store(db) as store:  # opened by a newer version: the missing tables are created
        first, second = "secret-1", "secret-2"
        ada = Subscriber("c", "ada@example.org", first, "2026-01-01T00:00:00+00:00")
        assert store.subscribe(ada) == (ada, True)
        again = Subscriber("c", "ada@example.org", second, "2026-01-05T00:00:00+00:00")
        assert store.subscribe(again) == (ada, False)  # the first token and date are kept
        store.record_sent("c", "ada@example.org", ["p1", "p2"], "2026-01-02T00:00:00+00:00")
        store.record_sent("c", "ada@example.org", ["p2", "p3"], "2026-01-03T00:00:00+00:00")
        assert store.sent_papers("c", "ada@example.org") == {"p1", "p2", "p3"}
        assert store.sent_papers("c", "bob@example.org") == set()
        assert store.unsubscribe_token(second) is None
        assert store.unsubscribe_token(first) == ada
        assert store.subscribers() == []
