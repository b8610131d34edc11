"""The installed ``paperscope`` console script, run as a user would (a subprocess each)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import (
    FIXTURES,
    SCRIPT,
    assert_clean_failure,
    free_port,
    run,
    subprocess_env,
)
from tests.oai_server import Endpoint, Repository


def test_info_json_lists_topics(built_dir: Path) -> None:
    result = run("info", "--json", data_dir=built_dir)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["build"]["papers"] == 115
    assert len(info["topics"]) >= 5


def test_query_and_similar(built_dir: Path) -> None:
    found = run(
        "query", "knowledge distillation teacher student", "-k", "3", "--json", data_dir=built_dir
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert len(hits) == 3
    similar = run("similar", hits[0]["id"], "-k", "4", data_dir=built_dir)
    assert similar.returncode == 0, similar.stderr
    assert similar.stdout.count("\n") == 8  # two lines per hit
    assert hits[0]["id"] not in similar.stdout


def test_query_and_similar_filter_and_page(built_dir: Path) -> None:
    info = json.loads(run("info", "--json", data_dir=built_dir).stdout)
    topic = str(info["topics"][0]["id"])
    args = ("query", "learning", "--mode", "lexical", "--json", "--topic", topic)
    first = json.loads(run(*args, "-k", "4", data_dir=built_dir).stdout)
    assert len(first) == 4 and {h["topic_id"] for h in first} == {int(topic)}
    second = json.loads(run(*args, "-k", "2", "--offset", "2", data_dir=built_dir).stdout)
    assert [h["id"] for h in second] == [h["id"] for h in first[2:]]
    similar = run("similar", first[0]["id"], "--json", "--category", "none", data_dir=built_dir)
    assert similar.returncode == 0 and json.loads(similar.stdout) == []
    bad = run("similar", first[0]["id"], "--since", "2025-02-30", data_dir=built_dir)
    assert bad.returncode != 0 and "YYYY-MM-DD" in bad.stderr


def test_collection_add_list_and_feed(built_copy: Path) -> None:
    hits = json.loads(run("query", "distillation", "--json", "-k", "3", data_dir=built_copy).stdout)
    first, second, third = (h["id"] for h in hits)
    added = run("collection", "add", "kd", first, second, "--note", "mine", data_dir=built_copy)
    assert added.returncode == 0, added.stderr
    assert "created kd: 2 positive" in added.stdout
    more = run("collection", "add", "kd", "--negative", third, data_dir=built_copy)
    assert "updated kd: 2 positive, 1 negative" in more.stdout
    listed = json.loads(run("collection", "list", "--json", data_dir=built_copy).stdout)
    assert listed[0]["name"] == "kd" and listed[0]["negative"] == [third]
    feed = json.loads(run("collection", "feed", "kd", "--json", data_dir=built_copy).stdout)
    ids = [r["id"] for r in feed["results"]]
    assert len(ids) == 20 and not {first, second, third} & set(ids)
    assert feed["results"][0]["reason"]["closest_seed"] in (first, second)
    assert feed["ranking"] == "seeds"  # 2 positive, 1 negative: too few for a classifier
    lines = run("collection", "feed", "kd", "--limit", "2", data_dir=built_copy)
    assert "ranked by seeds: similarity" in lines.stderr and "2 more thumbs down" in lines.stderr
    atom = run("collection", "feed", "kd", "--atom", "--limit", "3", data_dir=built_copy)
    assert atom.stdout.count("<entry>") == 3
    unknown = run("collection", "feed", "nope", data_dir=built_copy)
    assert_clean_failure(unknown, "no collection named")
    bad = run("collection", "add", "kd", "no-such-paper", data_dir=built_copy)
    assert_clean_failure(bad, "no paper with id")


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl", "bib"])
def test_export_papers(built_dir: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"papers.{suffix}"
    done = run("export", "papers", out, data_dir=built_dir)
    assert done.returncode == 0, done.stderr
    assert "115 papers" in done.stdout and out.stat().st_size > 1000
    if suffix == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        assert table.num_rows == 115 and "outlier" in table.column_names


def test_export_refuses_an_unknown_suffix(built_dir: Path, tmp_path: Path) -> None:
    assert_clean_failure(
        run("export", "papers", tmp_path / "papers.xlsx", data_dir=built_dir), "format must be"
    )


def test_query_modes(built_dir: Path) -> None:
    lexical = run("query", "Sinkhorn", "--mode", "lexical", "--json", data_dir=built_dir)
    assert lexical.returncode == 0, lexical.stderr
    hits = json.loads(lexical.stdout)
    assert hits[0]["title"].startswith("Sinkhorn") and hits[0]["dense_score"] is None
    bad = run("query", "Sinkhorn", "--mode", "fuzzy", data_dir=built_dir)
    assert_clean_failure(bad, "mode must be one of")


def test_ingest_reports_and_is_idempotent(tmp_path: Path) -> None:
    first = run("ingest", FIXTURES / "papers-page.txt", data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "4 new" in first.stdout and "1 rejected" in first.stdout
    assert "title without an abstract" in first.stderr
    again = run("ingest", FIXTURES / "papers-page.txt", data_dir=tmp_path)
    assert "0 new, 0 updated, 4 unchanged" in again.stdout
    assert "nothing changed" in again.stdout


def test_bad_inputs_fail_cleanly(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Caf\xe9 title\n\n".encode("latin-1") + b"x " * 50)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text("this is not json\n")
    assert_clean_failure(run("ingest", tmp_path / "missing.txt", data_dir=tmp_path), "not found")
    assert_clean_failure(run("ingest", empty, data_dir=tmp_path), "empty")
    assert_clean_failure(run("ingest", latin, data_dir=tmp_path), "not UTF-8")
    assert_clean_failure(run("ingest", wrong, data_dir=tmp_path), "no papers found")
    assert_clean_failure(
        run("ingest", wrong, "--format", "bogus", data_dir=tmp_path), "choose one of"
    )
    assert_clean_failure(run("similar", "x", data_dir=tmp_path), "no build")


def test_unknown_id_and_bad_k(built_dir: Path) -> None:
    assert_clean_failure(run("similar", "no-such-paper", data_dir=built_dir), "no paper with id")
    assert_clean_failure(run("query", "x", "-k", "0", data_dir=built_dir), "k must be between")


@pytest.mark.slow
def test_ingest_then_build_from_scratch(tmp_path: Path) -> None:
    assert run("ingest", FIXTURES / "papers.jsonl", data_dir=tmp_path).returncode == 0
    built = run("build", data_dir=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "4 papers" in built.stdout  # one without a title: derived from its abstract


def test_ingest_column_mapping_and_filters(tmp_path: Path) -> None:
    mapped = run(
        "ingest",
        FIXTURES / "papers-renamed.parquet",
        "--id-col",
        "paper_id",
        "--title-col",
        "name",
        data_dir=tmp_path,
    )
    assert mapped.returncode == 0, mapped.stderr
    assert "3 new" in mapped.stdout and "as parquet" in mapped.stdout
    filtered = run(
        "ingest",
        FIXTURES / "arxiv-oai-sample.jsonl",
        "--category",
        "hep-ph",
        "--limit",
        "1",
        data_dir=tmp_path,
    )
    assert filtered.returncode == 0, filtered.stderr
    assert "1 new" in filtered.stdout and "filtered out" in filtered.stdout
    assert "as arxiv-oai" in filtered.stdout
    assert_clean_failure(
        run("ingest", FIXTURES / "papers.bib", "--since", "March", data_dir=tmp_path), "YYYY-MM-DD"
    )


def _sync(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``paperscope sync ARGS`` with no pause between pages and one retry."""
    return subprocess.run(
        [SCRIPT, "sync", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(data_dir=data_dir, sync_delay=0, sync_retries=1),
        timeout=300,
    )


def test_sync_harvests_and_prints_the_log(tmp_path: Path) -> None:
    repository = Repository(busy_tokens={"metadataPrefix=arXivRaw&set=cs|3"})
    with Endpoint(repository) as endpoint:
        result = _sync(tmp_path, "--endpoint", endpoint.url, "--no-build")
    assert result.returncode == 0, result.stderr
    assert "6 records (6 new, 0 updated" in result.stdout
    assert "in 2 pages, 1 retries" in result.stdout and "next sync from 2024-01-09" in result.stdout
    assert not (tmp_path / "builds").exists()  # --no-build


def test_sync_failures_are_clean(tmp_path: Path) -> None:
    down = _sync(tmp_path, "--endpoint", f"http://127.0.0.1:{free_port()}/oai", "--no-build")
    assert down.returncode == 2
    assert_clean_failure(down, "error: cannot reach http://127.0.0.1:")
    backwards = _sync(tmp_path, "--from", "2024-02-01", "--until", "2024-01-01")
    assert_clean_failure(backwards, "--from is after --until")
