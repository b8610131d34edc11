"""``paperscope bench <name>``: one command per benchmark module of this package.

Only typer is imported here; each command imports its module when it runs, so ``paperscope
--help`` stays fast. Every ``PAPERSCOPE_*`` setting applies as for the other commands (set the
embedding ones as the measured build was made); commands that start a server or a build run
``python -m service`` from this checkout.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

bench_app = typer.Typer(
    help="Measure speed and quality (one command per benchmark; tables in markdown).",
    no_args_is_help=True,
)

DataDirArg = Annotated[
    Path, typer.Argument(help="A data folder holding a build (papers.sqlite, builds/).")
]
SHARED_HELP = "../shared beside the checkout"


def _prepare() -> None:
    """What the old scripts exported: numba's cache folder, quiet tokenizers."""
    from service.bench.common import runtime_defaults

    runtime_defaults()


@bench_app.command("all")
def bench_all(
    data_dir: DataDirArg,
    seconds: Annotated[
        int, typer.Argument(min=1, help="Seconds per 64-connection load test.")
    ] = 30,
    index_n: Annotated[
        int, typer.Argument(min=1000, help="Synthetic vectors for the index figure.")
    ] = 200_000,
) -> None:
    """The speed table: embedding per backend, cold start, HTTP load, index at scale.

    Runs embed 115 3, cold-start DATA_DIR 3, load-test (like-this and search, 64 connections,
    SECONDS each; search on one connection, 10 s) and index-scale INDEX_N auto, then prints one
    markdown row per figure naming the command that measured it. The load tests' server runs
    PAPERSCOPE_WORKERS processes (default: one per core). Needs wrk.
    """
    _prepare()
    from service.bench.suite import run_all

    run_all(data_dir, seconds, index_n)


@bench_app.command("embed")
def bench_embed(
    n_papers: Annotated[
        int,
        typer.Argument(min=1, help="Abstracts to embed (the bundled corpus cycled, or --corpus)."),
    ] = 115,
    repeats: Annotated[int, typer.Argument(min=1, help="Timed runs per backend.")] = 3,
    backends: Annotated[
        str,
        typer.Option(
            help="Comma-separated backends; the first is the reference the others "
            "are compared with."
        ),
    ] = "torch,onnx,onnx-int8,openvino,openvino-int8,auto",
    corpus: Annotated[
        Path | None,
        typer.Option(help="JSON Lines papers (title, abstract; .gz too) to take the first N from."),
    ] = None,
) -> None:
    """Embedding throughput and agreement of each backend on the same abstracts.

    One line per backend: abstracts/s (median run), speed against the first backend (xN), the
    model arithmetic achieved (GFLOP/s), and the cosine similarity of its vectors to the first
    backend's, mean and min (1.0 = identical). 'auto' is the default backend. Runs interleave.
    """
    _prepare()
    from service.bench.embed import measure

    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    from service.bench.embed import KNOWN

    if not chosen or set(chosen) - set(KNOWN):
        raise typer.BadParameter(f"comma-separated, of {', '.join(KNOWN)}", param_hint="--backends")
    if corpus is not None and not corpus.is_file():
        raise typer.BadParameter(f"{corpus} is not a file", param_hint="--corpus")
    measure(n_papers, repeats, chosen, corpus=corpus)


@bench_app.command("embed-path")
def bench_embed_path(
    corpus: Annotated[
        Path, typer.Argument(help="A corpus file paperscope ingest reads: its first N papers.")
    ],
    n_papers: Annotated[int, typer.Argument(min=1, help="Papers to embed.")] = 3000,
    runs: Annotated[int, typer.Argument(min=1, help="Timed runs of each.")] = 3,
) -> None:
    """How much of the runtime's speed a build's embedding path keeps.

    Splits N papers into windows as a build does, then times (interleaved, RUNS times) the
    default backend alone on the tokenised windows and the build's whole embedding path into an
    empty store (split, cache lookup, model, saving); prints tokens/s of each and the ratio.
    """
    _prepare()
    from service.bench.embed_path import corpus_papers, measure

    if not corpus.is_file():
        raise typer.BadParameter(f"{corpus} is not a file", param_hint="CORPUS")
    measure(corpus_papers(corpus, n_papers), runs)


@bench_app.command("map")
def bench_map(
    data_dir: DataDirArg,
    screenshot: Annotated[Path, typer.Argument(help="PNG to save the first render to.")],
    runs: Annotated[int, typer.Argument(min=1, help="Page loads timed.")] = 3,
    browser: Annotated[Path, typer.Option(help="Chromium executable.")] = Path("/usr/bin/chromium"),
) -> None:
    """Map payload size (raw, gzip) and time to first render in headless Chromium.

    Starts paperscope serve on the build, times GET /api/v1/map (first: builds the payload;
    first gzip: compresses once; then: cached), then the page's own firstRenderMs over RUNS
    loads (median, min, max). Needs playwright (dev extra) and Chromium.
    """
    _prepare()
    from service.bench.map_page import measure

    measure(data_dir, screenshot, runs, browser)


@bench_app.command("full-build")
def bench_full_build(
    corpus: Annotated[Path, typer.Argument(help="A corpus file paperscope ingest reads.")],
    data_dir: Annotated[
        Path | None, typer.Argument(help="An empty folder to build in (default: a temporary one).")
    ] = None,
) -> None:
    """A default build from nothing: ingest CORPUS, then build (empty embedding cache).

    Prints the wall minutes, each build stage's seconds and each command's peak RSS; the
    environment's PAPERSCOPE_* settings apply as they would to paperscope build.
    """
    _prepare()
    from service.bench.full_build import measure

    measure(corpus, data_dir)


@bench_app.command("clustering-corpora")
def bench_clustering_corpora(
    source: Annotated[Path, typer.Argument(help="The arXiv JSON Lines file (.gz too).")] = Path(
        "../shared/data/arxiv-cs-2025-2026.jsonl.gz"
    ),
    out_dir: Annotated[Path, typer.Argument(help="Where the corpora go.")] = Path(
        "paperscope-data/eval-corpora"
    ),
) -> None:
    """Cut three labelled corpora for eval clustering: early and late time slices and the
    smaller fields (minor); each labelled by primary_category."""
    from service.bench.clustering_corpora import cut

    for name, papers in cut(source, out_dir).items():
        typer.echo(f"{out_dir / name}.jsonl.gz: {papers} papers")


@bench_app.command("exact-search")
def bench_exact_search(
    rows: Annotated[int, typer.Argument(min=16, help="Vectors searched.")] = 20_000,
    queries: Annotated[int, typer.Argument(min=1, help="Queries a search.")] = 4096,
    runs: Annotated[int, typer.Option(min=1, help="Searches timed per side.")] = 5,
) -> None:
    """FAISS exact search with OpenBLAS's own kernels against paperscope's choice (service.runtime).

    Prints the kernel faiss's OpenBLAS runs and the median seconds of each side, in one run.
    """
    from service.bench.exact_search import measure

    measure(rows, queries, runs)


@bench_app.command("cold-start")
def bench_cold_start(
    data_dir: DataDirArg,
    runs: Annotated[int, typer.Argument(min=1, help="Server starts timed.")] = 3,
) -> None:
    """Seconds from starting paperscope serve to /api/v1/ready answering 200.

    Prints 'run i: ready after S s' per start: imports, loading the build and the model.
    """
    _prepare()
    from service.bench.cold_start import measure

    measure(data_dir, runs)


@bench_app.command("eval-quality")
def bench_eval_quality(
    dataset: Annotated[
        Path | None,
        typer.Argument(help=f"BEIR-layout folder (default: {SHARED_HELP}/data/scifact)."),
    ] = None,
    out: Annotated[Path | None, typer.Argument(help="Also write the table here.")] = None,
    split: Annotated[str, typer.Option(help="Qrels split (qrels/SPLIT.tsv).")] = "train",
) -> None:
    """Retrieval quality: dense vs lexical vs hybrid, and what each lever adds.

    Runs the evaluation of 'paperscope eval retrieval' once per configuration (embeddings
    cached in PAPERSCOPE_DATA_DIR/eval-cache, default paperscope-data) and prints one markdown
    table of nDCG@10, Recall@100 and MRR@10, then the dataset, model, machine and run times.
    """
    _prepare()
    from service.bench.common import SHARED
    from service.bench.eval_quality import measure

    measure(dataset or SHARED / "data" / "scifact", out, split)


@bench_app.command("incremental-cost")
def bench_incremental_cost(
    data_dir: DataDirArg,
    share: Annotated[
        float, typer.Argument(min=0.0001, max=0.5, help="Share of papers held out and added.")
    ] = 0.01,
    refit: Annotated[
        bool, typer.Option("--refit", help="Also refit and compare the placed papers' topics.")
    ] = False,
) -> None:
    """What adding new papers costs (incremental build) against a full build.

    On a copy of DATA_DIR's store: hold out SHARE of the papers (their cached embeddings
    forgotten), full build of the rest, then ingest + incremental build of the held-out ones,
    each with the real CLI. Prints wall and stage seconds, both ratios (incremental over a full
    build from scratch, and over a full build with every embedding cached), peak RSS, and the
    share of placed papers left unclustered. Set PAPERSCOPE_BACKEND as DATA_DIR was built.
    """
    _prepare()
    from service.bench.incremental_cost import measure

    measure(data_dir, share, refit)


@bench_app.command("index-scale")
def bench_index_scale(
    n: Annotated[int, typer.Argument(min=1000, help="Synthetic 384-d vectors.")],
    layouts: Annotated[
        str,
        typer.Argument(
            help="Comma-separated: auto, hnsw, ivf-flat, ivf-sq8, ivf-sq8-flatq, ivf-pq."
        ),
    ] = "auto",
    results: Annotated[
        Path, typer.Option(help="Folder for the scratch files (index, queries, vectors).")
    ] = Path("/tmp/index-results"),  # noqa: S108
) -> None:
    """FAISS layouts at scale on synthetic clustered vectors, tuned to their recall target.

    One markdown row per layout: build s, breadth (nprobe / efSearch), recall@10 on 1,000
    held-out queries, q/s on one thread in a fresh serving process, index file MB, the RSS the
    index adds there, that process's RSS (private + file-backed), this process's peak RSS.
    """
    _prepare()
    from service.bench.index_scale import KINDS, measure

    chosen = [k.strip() for k in layouts.split(",") if k.strip()]
    if not chosen or set(chosen) - set(KINDS):
        raise typer.BadParameter(f"comma-separated, of {', '.join(KINDS)}", param_hint="LAYOUTS")
    measure(n, chosen, results)


@bench_app.command("filtered-scale")
def bench_filtered_scale(
    n: Annotated[int, typer.Argument(min=1000, help="Synthetic 384-d vectors.")],
    selectivities: Annotated[
        str, typer.Argument(help="Comma-separated shares of the rows a filter keeps.")
    ] = "0.01,0.1,0.5",
) -> None:
    """Filtered search at scale: exact scan of the allowed rows, per-filter sub-index, and IVF
    with a FAISS IDSelector, each at each selectivity.

    One markdown row per strategy and selectivity: ms/query (p50, p99) on one thread and
    recall@10 against the exact filtered answer. N = 1,000,000 needs about 4 GB of memory.
    """
    _prepare()
    from service.bench.filtered_scale import measure

    try:
        shares = tuple(float(s) for s in selectivities.split(",") if s.strip())
    except ValueError:
        shares = ()
    if not shares or not all(0 < s <= 1 for s in shares):
        raise typer.BadParameter("comma-separated shares in (0, 1]", param_hint="SELECTIVITIES")
    measure(n, shares)


@bench_app.command("load-test")
def bench_load_test(
    data_dir: Annotated[Path, typer.Argument(help="A data folder holding a build.")] = Path(
        "paperscope-data"
    ),
    seconds: Annotated[int, typer.Argument(min=1, help="Seconds of load.")] = 60,
    swap: Annotated[
        bool,
        typer.Option(
            "--swap",
            help="A third of the way in, publish a new build (paperscope build --force); the "
            "server must switch to it with no failed request.",
        ),
    ] = False,
    mix: Annotated[
        str,
        typer.Option(
            envvar="LOAD_MIX",
            help="Requests: both (like-this and search alternating), similar, search, topics "
            "(topic search), recommend.",
        ),
    ] = "both",
    connections: Annotated[
        int, typer.Option(envvar="LOAD_CONNECTIONS", min=1, help="Concurrent connections.")
    ] = 64,
    ids: Annotated[
        int, typer.Option(envvar="LOAD_IDS", min=1, help="Papers asked about (like-this).")
    ] = 5000,
) -> None:
    """HTTP load with wrk: like-this and text-search requests against a local server.

    Prints wrk's output ending in req/s, latency p50/p90/p99/p99.9 and errors, then OK; exits 1
    on any error or non-2xx response (or, with --swap, if the server did not switch builds).
    The server runs PAPERSCOPE_WORKERS processes. Needs wrk (apt-get install wrk).
    """
    _prepare()
    from service.bench.load_test import MIXES, measure

    if mix not in MIXES:
        raise typer.BadParameter(f"one of {', '.join(MIXES)}", param_hint="--mix")
    _under_load(lambda: measure(data_dir, seconds, swap, mix, connections, ids))


def _under_load(run: Callable[[], object]) -> None:
    """Run a load test: ``FAIL: ...`` and exit 1 on failed requests, exit 2 without wrk."""
    from service.bench.load_test import LoadTestFailed

    try:
        run()
    except (LoadTestFailed, FileNotFoundError) as err:
        typer.echo(f"FAIL: {err}", err=True)
        raise typer.Exit(1 if isinstance(err, LoadTestFailed) else 2) from None


@bench_app.command("load-table")
def bench_load_table(
    data_dir: Annotated[Path, typer.Argument(help="A data folder holding a build.")] = Path(
        "paperscope-data"
    ),
    seconds: Annotated[int, typer.Argument(min=1, help="Seconds of load per row.")] = 10,
    connections: Annotated[
        str, typer.Option(help="Comma-separated numbers of concurrent connections.")
    ] = "1,16,64",
    filter_query: Annotated[
        str,
        typer.Option(
            "--filter",
            help="Also run like-this, search and recommend with this filter, as query "
            "parameters (e.g. categories=cs.LG or since=2025-06-01).",
        ),
    ] = "",
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Server processes (default: PAPERSCOPE_WORKERS, else 1)."),
    ] = None,
) -> None:
    """HTTP load per route: text search, topic search, like-this and recommend (an id and a
    text seed), each alone at 1, 16 and 64 connections against one server; with --filter,
    like-this, search and recommend again with that filter.

    Prints the machine and a markdown table (req/s, p50, p99, errors); exits 1 if any request
    failed. Needs wrk (apt-get install wrk).
    """
    _prepare()
    from service.bench.load_test import route_table

    counts = [n.strip() for n in connections.split(",") if n.strip()]
    if not counts or not all(n.isdigit() and int(n) >= 1 for n in counts):
        raise typer.BadParameter("comma-separated whole numbers", param_hint="--connections")
    env = {"PAPERSCOPE_WORKERS": str(workers)} if workers else None
    counted = [int(n) for n in counts]
    _under_load(lambda: route_table(data_dir, seconds, counted, env, filter_query=filter_query))


@bench_app.command("answers")
def bench_answers(
    url: Annotated[str, typer.Argument(help="A running server, e.g. http://127.0.0.1:8000.")],
    out: Annotated[Path, typer.Argument(help="JSON file to write the answers to.")],
) -> None:
    """Record a server's answers to a fixed set of read requests (search in each mode, topic
    search, papers and like-this, topics, timelines, map, duplicates, CSV export, recommend).

    Run it against two servers over one data folder (e.g. two versions of the code) and compare
    the files: a change that should change no answer must give identical files.
    """
    from service.bench.answers import write

    typer.echo(f"{write(url, out)} answers written to {out}")


@bench_app.command("make-default-corpus")
def bench_make_default_corpus(
    page: Annotated[
        Path | None,
        typer.Argument(
            help=f"Papers-page text (default: {SHARED_HELP}/seeds/trending-papers.txt)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="JSONL to write (default: the bundled service/data corpus)."),
    ] = None,
) -> None:
    """Regenerate the bundled default corpus (id, title, abstract per line) from the seed page."""
    from service.bench.default_corpus import SEED_PAGE, write_corpus
    from service.ingest import BUNDLED_CORPUS

    write_corpus(page or SEED_PAGE, out or BUNDLED_CORPUS)


@bench_app.command("ray-embed")
def bench_ray_embed(
    n: Annotated[int, typer.Option("--n", min=1, help="Abstracts to embed.")] = 1000,
    repeats: Annotated[int, typer.Option(min=1, help="Runs of each engine.")] = 3,
    cpus: Annotated[
        int | None, typer.Option(min=1, help="CPUs for the local Ray (default: all).")
    ] = None,
    cpus_per_worker: Annotated[int, typer.Option(min=1, help="CPUs per embedding actor.")] = 1,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report to this JSON file.")
    ] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(
            help=f"JSONL(.gz) of title/abstract (default: {SHARED_HELP}/data/"
            "arxiv-cs-2025-2026.jsonl.gz; else the bundled corpus, cycled)."
        ),
    ] = None,
) -> None:
    """Local engine against a local Ray on the same abstracts, fresh stores (nothing cached).

    A markdown row per engine: median seconds (every run), papers/s, speed against local; then
    Ray's overhead and the min cosine between the engines' vectors. Needs the ray extra.
    """
    _prepare()
    import os

    from service.bench.ray_embed import ARXIV, measure

    measure(n, repeats, cpus or os.cpu_count() or 1, cpus_per_worker, json_out, corpus or ARXIV)


@bench_app.command("topic-sample")
def bench_topic_sample(
    data_dir: DataDirArg,
    configs: Annotated[
        str,
        typer.Argument(
            help="Comma-separated: full, a sample size N (placed, neighbour vote) or Nt "
            "(UMAP transform)."
        ),
    ] = "full,10000,20000,40000",
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Append one JSON line per configuration to this file."),
    ] = None,
) -> None:
    """A full topics + map fit against sampled fits with the rest assigned, on a build.

    One markdown row per configuration: seconds per stage and in total, topics, noise, and NMI
    against the primary arXiv category (all papers, clustered only, noise reassigned). Reads
    DATA_DIR only.
    """
    _prepare()
    from service.bench.topic_sample import check_config, measure

    for config in configs.split(","):
        try:
            check_config(config)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="CONFIGS") from None
    measure(data_dir, configs, json_out)


@bench_app.command("map-quality")
def bench_map_quality(
    data_dir: DataDirArg,
    sample: Annotated[
        int, typer.Option(min=100, help="Papers in the evaluation sample (trustworthiness).")
    ] = 5000,
    k: Annotated[int, typer.Option(min=1, help="Map neighbours each paper is scored by.")] = 10,
    plain_all: Annotated[
        bool, typer.Option("--plain-all", help="Fit the plain UMAP on every paper (slow).")
    ] = False,
) -> None:
    """Does each paper sit among its own topic on the map, and among its embedding neighbours?

    One markdown row per layout (as built; for a sampled fit, its placed papers placed again by
    all neighbours and within their topic; a plain UMAP): the share of each paper's K nearest
    map neighbours in its topic, and trustworthiness on a seeded SAMPLE. Reads DATA_DIR only.
    """
    _prepare()
    from service.bench.map_quality import measure

    measure(data_dir, sample, k, plain_all)


@bench_app.command("names")
def bench_names(data_dir: DataDirArg) -> None:
    """The names this code gives the build's topics and groups, beside those it was built with.

    Same clusters and groups, terms counted from the build's papers: each changed name, then
    per level duplicates, near-duplicates, one-word names, names that are not noun phrases and
    numbered names, as built and now. Reads DATA_DIR only; set PAPERSCOPE_BACKEND (and the
    embedding settings) as the build was made.
    """
    _prepare()
    from service.bench.names import measure
    from service.config import Settings

    measure(data_dir, Settings())


@bench_app.command("topic-stability")
def bench_topic_stability(
    data_dir: DataDirArg,
    share: Annotated[
        float, typer.Argument(min=0.0001, max=0.5, help="Share of papers held out and re-added.")
    ] = 0.05,
    only_added: Annotated[
        bool, typer.Option("--only-added", help="Skip the other-seed experiment.")
    ] = False,
) -> None:
    """How many papers keep their topic id across full rebuilds (another seed; papers added).

    Works on a copy of DATA_DIR's store (nothing re-embedded: set PAPERSCOPE_BACKEND as it was
    built). Each line: share of papers keeping their topic id, topics matched by papers, by
    centroid, and new.
    """
    _prepare()
    from service.bench.topic_stability import measure

    measure(data_dir, share, only_added)


@bench_app.command("feedback")
def bench_feedback(
    data_dir: DataDirArg,
    today: Annotated[
        str | None, typer.Option(help="Today, YYYY-MM-DD (default: the 90th percentile date).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Days of upcoming papers scored.")] = 7,
    window: Annotated[int, typer.Option(min=1, help="Days up to today the reader rates.")] = 30,
    seeds: Annotated[int, typer.Option(min=1, help="Readers (start papers) per interest.")] = 3,
    background: Annotated[
        int, typer.Option(min=0, help="Random papers added as negatives (classifier+bg).")
    ] = 200,
    batch: Annotated[int, typer.Option(min=1, help="Papers rated per look at the feed.")] = 5,
    tfidf: Annotated[
        bool, typer.Option("--tfidf", help="Also the classifier with TF-IDF features (slower).")
    ] = False,
) -> None:
    """Simulated readers: precision@10 of the upcoming papers after 0-80 thumbs up/down.

    Each category and topic with 10+ papers in the DAYS after TODAY is an interest; SEEDS
    readers each start from one paper of it, rate today's feed (up if of their interest) and
    are scored on the upcoming papers by seed similarity and by the classifier. One markdown
    table per kind of interest. Reads the build's stored vectors; embeds nothing.
    """
    _prepare()
    from service.bench.feedback import measure

    measure(data_dir, today, days, window, seeds, background, batch, tfidf)


@bench_app.command("topic-sweep")
def bench_topic_sweep(
    labels: Annotated[bool, typer.Option("--labels", help="Print every topic's label.")] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Data folder (env PAPERSCOPE_DATA_DIR)."),
    ] = None,
) -> None:
    """The topic-parameter sweep behind the small-corpus defaults, on the current build.

    One line per (selection, min_cluster_size, min_samples, n_neighbors): topics, papers
    unclustered, largest topic.
    """
    _prepare()
    from service.bench.topic_sweep import sweep
    from service.config import load_settings

    sweep(load_settings(data_dir=data_dir), labels)
