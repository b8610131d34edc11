"""``paperscope bench``: every command answers --help, a few really run on tiny inputs, and
``scripts/`` holds only the entry points people run (measurement code lives in service/bench)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from service.bench.commands import bench_app
from service.bench.common import REPO, child_env, paperscope_command
from service.bench.load_test import filter_body, lua_script, parse_summary, title_queries
from service.bench.suite import index_cells
from service.cli import app
from tests.helpers import FIXTURES, graph

COMMANDS = {
    "all",
    "embed",
    "embed-path",
    "feedback",
    "full-build",
    "clustering-corpora",
    "exact-search",
    "map",
    "map-quality",
    "names",
    "cold-start",
    "eval-quality",
    "incremental-cost",
    "index-scale",
    "filtered-scale",
    "load-test",
    "load-table",
    "answers",
    "make-default-corpus",
    "ray-embed",
    "topic-sample",
    "topic-stability",
    "topic-sweep",
}
ENTRY_POINTS = {"install", "serve", "test", "bench", "fuzz-api"}

runner = CliRunner()


def bench(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, ["bench", *args], env=env)


def test_every_benchmark_is_a_command() -> None:
    names = {c.name for c in bench_app.registered_commands}
    assert names == COMMANDS


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help(command: str) -> None:
    result = bench(command, "--help")
    assert result.exit_code == 0, result.output
    assert f"bench {command}" in result.output
    assert len(result.output.splitlines()) > 5  # a description, not just the usage line


def test_help_names_the_environment_variables_load_test_reads() -> None:
    output = bench("load-test", "--help").output
    for variable in ("LOAD_MIX", "LOAD_CONNECTIONS", "LOAD_IDS"):
        assert variable in output


def test_scripts_keep_only_entry_points_and_no_python() -> None:
    scripts = REPO / "scripts"
    assert {p.name for p in scripts.iterdir()} == ENTRY_POINTS
    for path in scripts.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<<-?\s*['\"]?PY", text), path.name  # Python in a heredoc
        assert not re.search(r"python3? -(\s|$)", text, re.MULTILINE), path.name  # from stdin
        assert os.access(path, os.X_OK), path.name


def test_only_the_cli_imports_the_benchmarks() -> None:
    importers = {
        module
        for module, targets in graph().items()
        if not module.startswith("service.bench")
        and any(t == "service.bench" or t.startswith("service.bench.") for t in targets)
    }
    assert importers == {"service.cli"}


def test_child_processes_import_this_checkout(tmp_path: Path) -> None:
    """The CLI a benchmark starts is this checkout's, wherever it runs from."""
    code = "import service; print(service.__file__)"
    done = subprocess.run(
        [paperscope_command()[0], "-c", code],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(done.stdout.strip()) == REPO / "service" / "__init__.py"
    helped = subprocess.run(
        [*paperscope_command(), "bench", "--help"],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    assert "topic-stability" in helped.stdout


def test_embed_runs_two_backends_on_four_texts() -> None:
    result = bench("embed", "4", "1", "--backends", "onnx,openvino-int8")
    assert result.exit_code == 0, result.output
    assert "4 abstracts from the bundled corpus, 1 interleaved runs each" in result.output
    rows = {
        m[1]: m
        for m in re.finditer(
            r"^(\S+)\s+([\d.]+) abstracts/s\s+[\d.]+ tokens/s\s+x([\d.]+) vs onnx\s+"
            r"([\d.]+) GFLOP/s\s+"
            r"cosine to onnx mean ([\d.]+) min ([\d.]+)$",
            result.output,
            re.MULTILINE,
        )
    }
    assert set(rows) == {"onnx", "openvino-int8"}, result.output
    assert float(rows["onnx"][2]) > 0 and float(rows["onnx"][4]) > 0
    assert float(rows["onnx"][3]) == 1.0 and float(rows["onnx"][5]) == pytest.approx(1.0, abs=1e-4)
    # static int8 moves vectors a little, never far
    assert 0.95 < float(rows["openvino-int8"][6]) < 1.0


def test_embed_refuses_an_unknown_backend() -> None:
    result = bench("embed", "4", "1", "--backends", "onnx,tpu")
    assert result.exit_code == 2
    assert "--backends" in result.output


def test_index_scale_on_two_thousand_vectors(tmp_path: Path) -> None:
    result = bench("index-scale", "2000", "auto,ivf-flat", "--results", str(tmp_path))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if re.match(r"\| [a-z-]+: `", line)]
    assert len(rows) == 2, result.output
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert all(len(row) == 9 for row in cells)
    assert cells[0][0] == "auto: `Flat`" and cells[0][3] == "1.000"  # exact below 20,000
    assert cells[1][0].startswith("ivf-flat: `IVF")
    assert float(cells[1][3]) >= 0.95 or int(cells[1][2]) >= 32  # target reached, or widest
    assert float(cells[1][4].replace(",", "")) > 0  # measured in the serving probe
    assert not list(tmp_path.glob("*.faiss"))  # scratch indexes removed
    summary, kind = index_cells(rows[1])
    assert kind == cells[1][0] and summary.startswith(f"build {cells[1][1]} s, recall@10 ")


def test_index_scale_refuses_an_unknown_layout(tmp_path: Path) -> None:
    result = bench("index-scale", "2000", "auto,ivf-magic", "--results", str(tmp_path))
    assert result.exit_code == 2
    assert "LAYOUTS" in result.output


def test_eval_quality_on_a_tiny_dataset(tmp_path: Path) -> None:
    out = tmp_path / "quality.md"
    result = bench(
        "eval-quality",
        str(FIXTURES / "beir-tiny"),
        str(out),
        "--split",
        "test",
        env={"PAPERSCOPE_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.exit_code == 0, result.output
    table = out.read_text(encoding="utf-8")
    assert table.strip() in result.output
    lines = table.splitlines()
    assert lines[0] == "| configuration | nDCG@10 | Recall@100 | MRR@10 |"
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert len(rows) >= 10  # every configuration's modes (the two-fold row comes on top)
    assert any(row.startswith("| **(a) + (b) + (c) hybrid: the defaults** | ") for row in rows)
    assert re.search(r"^\d+ queries, 8 abstracts; .* eval runs took (\d+, ){4}\d+ s", table, re.M)
    assert (tmp_path / "data" / "eval-cache" / "embeddings.sqlite").is_file()


def test_make_default_corpus_writes_id_title_abstract_date(tmp_path: Path) -> None:
    out = tmp_path / "corpus.jsonl"
    result = bench("make-default-corpus", str(FIXTURES / "papers-page.txt"), "--out", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert records and all(set(r) == {"id", "title", "abstract", "date"} for r in records)
    assert f"wrote {len(records)} papers to {out}" in result.output


def test_topic_sample_refuses_a_bad_configuration(tmp_path: Path) -> None:
    result = bench("topic-sample", str(tmp_path), "full,20000x")
    assert result.exit_code == 2
    assert "CONFIGS" in result.output


WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:1234/
  2 threads and 4 connections
Requests/sec:    234.79
requests 712 in 3.0 s: 235 req/s
latency p50 18.7 ms
latency p90 39.7 ms
latency p99 59.3 ms
latency p99.9 76.0 ms
errors 3 (non-2xx 3, timeouts 0)"""


def test_load_summary_is_read_from_the_script_output() -> None:
    summary = parse_summary(WRK_OUTPUT)
    assert summary.rate == 235.0 and summary.requests == 712
    assert summary.latency_ms == {"50": 18.7, "90": 39.7, "99": 59.3, "99.9": 76.0}
    assert summary.errors == 3


def test_load_script_names_the_papers_and_the_mix() -> None:
    script = lua_script(["2501.00001", 'odd"id'], "similar")
    assert '"2501.00001",' in script and '"odd\\"id",' in script
    assert 'mix = "similar"' in script
    assert "latency:percentile(p)" in script and "req/s" in script
    assert '"\\"odd\\\\\\"id\\"",' in script  # as a JSON string inside a request body


def test_load_script_carries_the_filter_to_queries_and_bodies() -> None:
    script = lua_script(["a"], "recommend", "categories=cs.LG&categories=cs&since=2025-06-01")
    assert 'filter_query = "&categories=cs.LG&categories=cs&since=2025-06-01"' in script
    body = json.loads("{" + filter_body("categories=cs.LG&topics=3&since=2025-06-01")[2:] + "}")
    assert body == {"categories": ["cs.LG"], "topics": [3], "since": "2025-06-01"}
    assert 'filter_query = ""' in lua_script(["a"], "similar") and filter_body("") == ""
    warmed = lua_script(["a"], "similar", "", opened_per_thread=32)
    assert "opened_per_thread = 32" in warmed and "warm_up_ms = 2000" in warmed


def test_load_queries_are_distinct_runs_of_title_words_shared_out_by_thread() -> None:
    titles = ["Graph Neural Networks for Molecules", "Graph neural networks, again!", "Ok"]
    queries = title_queries(titles)
    assert len(queries) == len(set(queries))
    assert {"graph neural", "neural networks for", "networks again"} <= set(queries)
    assert all(q == " ".join(q.split()) and q.islower() for q in queries)
    assert title_queries(titles) == queries  # seeded
    assert len(title_queries(titles, limit=3)) == 3
    script = lua_script(["a"], "search", queries=["diffusion models", "x&y"], threads=2)
    assert '"diffusion%20models",' in script and '"x%26y",' in script
    assert "threads = 2" in script and "first_query = 0" in script
    assert "first_query = 7" in lua_script(["a"], "search", first_query=7)


@pytest.mark.slow  # a real server under wrk's load on every route
def test_the_route_table_loads_every_route_with_no_error(built_copy: Path) -> None:
    from service.bench.load_test import FILTERED, ROUTES, route_table

    if shutil.which("wrk") is None:
        pytest.skip("wrk is missing (apt-get install wrk; .ci/run installs it)")
    lines: list[str] = []
    results = route_table(built_copy, 1, (1, 16), echo=lines.append, filter_query="topics=0")
    filtered = {(f"{mix}?topics=0", n) for mix in FILTERED for n in (1, 16)}
    assert set(results) == {(mix, n) for mix in ROUTES for n in (1, 16)} | filtered
    assert all(got.errors == 0 and got.rate > 0 for got in results.values())
    assert lines[0].startswith("machine: ") and lines[2].startswith("| route |")
    assert len(lines) == 4 + len(results)


@pytest.mark.slow  # two child processes: an ingest and a whole build with the real model
def test_full_build_reports_every_stage_from_an_empty_folder(tmp_path: Path) -> None:
    from service.bench.full_build import measure

    result = measure(FIXTURES / "labelled-arxiv.jsonl", tmp_path / "data", echo=False)
    assert 0 < result.papers <= len((FIXTURES / "labelled-arxiv.jsonl").read_text().splitlines())
    assert f"{result.papers:,} papers" in result.lines()[0]
    assert {"embed", "index", "lexical"} <= set(result.stage_seconds)
    assert result.build_seconds >= sum(result.stage_seconds.values())
    assert 0.05 < result.peak_rss_gb["build"] < 24
    assert "papers/s" in "\n".join(result.lines())
    assert result.nmi is not None and 0 <= result.nmi <= 1  # the fixture has primary categories
    assert f"NMI {result.nmi:.4f}" in "\n".join(result.lines())


def test_full_build_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    from service.bench.full_build import measure
    from service.errors import InvalidInput

    (tmp_path / "papers.sqlite").write_text("x")
    with pytest.raises(InvalidInput, match="not empty"):
        measure(FIXTURES / "papers.jsonl", tmp_path, echo=False)


def test_exact_search_compares_both_kernel_choices_in_one_run() -> None:
    result = bench("exact-search", "256", "16", "--runs", "1")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("| OpenBLAS's own")]
    ours = [line for line in result.output.splitlines() if line.startswith("| paperscope's")]
    assert len(rows) == 1 and len(ours) == 1
    assert ours[0].rstrip(" |").split("|")[-1].strip()  # a ratio was printed


def test_embed_path_times_the_build_path_against_the_runtime() -> None:
    from service.bench.embed_path import corpus_papers, measure
    from service.ingest import BUNDLED_CORPUS

    papers = corpus_papers(BUNDLED_CORPUS, 40)
    rates = measure(papers, runs=1, echo=False)
    assert rates.papers == len(papers) == 40
    assert rates.windows >= rates.papers
    assert rates.tokens > 0 and rates.runtime > 0 and rates.build_path > 0
    if rates.fixed is not None:  # the default backend has fixed shapes: compiled for this run
        assert rates.fixed > 0
    result = bench("embed-path", str(BUNDLED_CORPUS), "20", "1")
    assert result.exit_code == 0, result.output
    assert "% of the runtime's" in result.output
    assert (rates.fixed is None) == ("fixed shapes" not in result.output)
    missing = bench("embed-path", "no-such-file.jsonl")
    assert missing.exit_code != 0
    assert "not a file" in missing.output


@pytest.mark.slow  # a real server
def test_answers_are_recorded_alike_from_two_servers_over_one_folder(
    built_copy: Path, tmp_path: Path
) -> None:
    from service.bench.answers import QUERIES, write
    from service.bench.load_test import served

    files = [tmp_path / "a.json", tmp_path / "b.json"]
    for out in files:
        with served(built_copy) as target:
            assert write(target.base, out) > 4 * len(QUERIES)
    first, second = (json.loads(f.read_text(encoding="utf-8")) for f in files)
    assert first == second
    assert first["/api/v1/papers/no-such-paper"]["error"]["code"] == "not_found"
    assert "request_id" not in first["/api/v1/papers/no-such-paper"]["error"]
    assert first["POST /api/v1/recommend"]["results"]


def test_map_quality_scores_the_built_map_beside_a_plain_umap(built_dir: Path) -> None:
    result = bench("map-quality", str(built_dir), "--sample", "100")
    assert result.exit_code == 0, result.output
    rows = {line.split("|")[1].strip(): line for line in result.output.splitlines() if "|" in line}
    assert {"as built", "plain UMAP of the sample"} <= set(rows)
    share, trust = (float(v) for v in rows["as built"].split("|")[4:6])
    assert 0.5 < share <= 1 and 0.5 < trust <= 1  # a small corpus's own fit: topics are regions


def test_names_of_a_build_made_with_this_code_come_back_unchanged(built_dir: Path) -> None:
    result = bench("names", str(built_dir))
    assert result.exit_code == 0, result.output
    assert "->" not in result.output  # the build's naming, reproduced name for name
    counts = dict(
        line.split(": ", 1)
        for line in result.output.splitlines()
        if line.startswith(("topics", "groups"))
    )
    assert counts["topics, as built"] == counts["topics, this code"]
    assert counts["topics, this code"].endswith("0 numbered"), counts
    assert result.output.count("of its papers use its name") == 4  # per level, before and after


def test_clustering_corpora_are_cut_by_date_and_field(tmp_path: Path) -> None:
    import gzip

    result = bench(
        "clustering-corpora", str(FIXTURES / "labelled-arxiv.jsonl"), str(tmp_path / "corpora")
    )
    assert result.exit_code == 0, result.output
    with gzip.open(tmp_path / "corpora" / "minor.jsonl.gz", "rt", encoding="utf-8") as lines:
        minor = [json.loads(line) for line in lines]
    assert all(r["primary_category"] not in {"cs.CV", "cs.CL", "cs.AI"} for r in minor)
    assert f"minor.jsonl.gz: {len(minor)} papers" in result.output
    for name in ("early", "late"):
        assert (tmp_path / "corpora" / f"{name}.jsonl.gz").is_file()
