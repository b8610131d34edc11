"""The ``paperscope`` command: ingest, sync, build, serve, query, similar, info, verify, export-map,
collection, digest, backup, restore, builds, models, eval, bench.

Every command builds its :class:`Settings` from ``PAPERSCOPE_*`` variables plus the flags given.
A :class:`PaperscopeError` ends the command with ``error: <message>`` and exit code 2, never a
traceback; so does an OSError (a full disk, a read-only folder) that no command explained better.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import threading
import time
import webbrowser
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from service.bench.commands import bench_app
from service.config import Settings, load_settings, runtime_settings
from service.errors import IngestError, PaperscopeError, storage_error
from service.ingest import FORMATS
from service.schemas import BuildManifest, Hit, PaperFilter, TopicEdit

if TYPE_CHECKING:
    from service.app import Paperscope

app = typer.Typer(
    help="paperscope: semantic search and topic maps for paper abstracts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Prepare and list embedding models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
eval_app = typer.Typer(help="Measure quality on benchmark datasets.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
collection_app = typer.Typer(
    help="Saved collections of papers and their feeds of new papers.", no_args_is_help=True
)
app.add_typer(collection_app, name="collection")
digest_app = typer.Typer(help="Email digests of collections' feeds.", no_args_is_help=True)
app.add_typer(digest_app, name="digest")
topics_app = typer.Typer(
    help="Curate topics: rename, merge, move papers; kept across builds.", no_args_is_help=True
)
app.add_typer(topics_app, name="topics")
export_app = typer.Typer(
    help="Export papers with their topics and map positions.", no_args_is_help=True
)
app.add_typer(export_app, name="export")

log = logging.getLogger("paperscope")

DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (env PAPERSCOPE_DATA_DIR).")
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Embedding model (env PAPERSCOPE_MODEL).")
]
KOpt = Annotated[int, typer.Option("-k", "--k", help="Number of results.")]
JsonOutOpt = Annotated[
    Path | None, typer.Option("--json", help="Also write the report to this JSON file.")
]
CacheDirOpt = Annotated[
    Path | None, typer.Option(help="Embedding cache folder (default: DATA_DIR/eval-cache).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _settings(**overrides: object) -> Settings:
    return runtime_settings(**overrides)


def _echo_json(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def _app(**overrides: object) -> Paperscope:
    """The application object, for the commands that read a build (imported here: the others
    start without loading the engine)."""
    from service.app import Paperscope

    return Paperscope(_settings(**overrides))


def _iso_date(value: str | None, flag: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise typer.BadParameter("expected a date as YYYY-MM-DD", param_hint=flag) from None


SinceOpt = Annotated[str | None, typer.Option(help="Only papers dated on/after YYYY-MM-DD.")]
UntilOpt = Annotated[str | None, typer.Option(help="Only papers dated on/before YYYY-MM-DD.")]
CategoryOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--category", help="Only papers in this category or group (cs.CL, cs); repeatable."
    ),
]
TopicOpt = Annotated[
    list[int] | None, typer.Option("--topic", help="Only papers in this topic; repeatable.")
]
OffsetOpt = Annotated[int, typer.Option(min=0, help="Results to skip (paging).")]


def _filter(
    since: str | None, until: str | None, categories: list[str] | None, topics: list[int] | None
) -> PaperFilter:
    return PaperFilter(
        since=_iso_date(since, "--since"),
        until=_iso_date(until, "--until"),
        categories=categories or [],
        topics=topics or [],
    )


ColOpt = Annotated[str | None, typer.Option(help="Column holding this field (jsonl/csv/parquet).")]


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Files to ingest.")],
    fmt: Annotated[str, typer.Option("--format", help=f"One of {', '.join(FORMATS)}.")] = "auto",
    id_col: ColOpt = None,
    title_col: ColOpt = None,
    abstract_col: ColOpt = None,
    authors_col: ColOpt = None,
    categories_col: ColOpt = None,
    date_col: ColOpt = None,
    category: Annotated[
        list[str] | None,
        typer.Option(help="Keep papers in this category or group (cs.CL, cs); repeatable."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Keep papers dated on/after YYYY-MM-DD.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Keep papers dated on/before YYYY-MM-DD.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Keep at most this many papers.")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add or update papers from files (one transaction per file).

    Formats: papers-page text, arxiv-oai snapshot, jsonl (.jsonl.gz too), csv, parquet, bibtex.
    """
    from service.ingest import IngestFilter, ingest_file
    from service.ingest.tabular import ColumnMap
    from service.store import Store

    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of: {', '.join(FORMATS)}", param_hint="--format")
    columns = ColumnMap(
        id=id_col,
        title=title_col,
        abstract=abstract_col,
        authors=authors_col,
        categories=categories_col,
        date=date_col,
    )
    keep = IngestFilter(
        categories=tuple(category or ()),
        since=_iso_date(since, "--since"),
        until=_iso_date(until, "--until"),
        limit=limit,
    )
    settings = _settings(data_dir=data_dir)
    with Store(settings.db_path) as store:
        store.ensure_sound()  # never write into a damaged database
        for path in files:
            report = ingest_file(store, path, fmt, columns=columns, keep=keep)
            if report.new + report.updated + report.unchanged + report.filtered == 0:
                rejected = "; ".join(f"{r.location}: {r.reason}" for r in report.rejected[:5])
                raise IngestError(
                    f"{path}: no papers found as {report.format}"
                    + (f" ({rejected})" if rejected else "")
                )
            verdict = "changed" if report.changed else "nothing changed (all papers already stored)"
            counts = f"{report.new} new, {report.updated} updated, {report.unchanged} unchanged"
            if report.filtered:
                counts += f", {report.filtered} filtered out"
            typer.echo(
                f"{path}: {counts}, {len(report.rejected)} rejected as {report.format} -> {verdict}"
            )
            for item in report.rejected:
                typer.echo(f"  rejected {item.location}: {item.reason}", err=True)
        typer.echo(f"{store.count()} papers in {settings.db_path}")


@app.command()
def build(
    force: Annotated[
        bool,
        typer.Option(help="Rebuild with a full topic and map fit, even if up to date."),
    ] = False,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing when a build already exists.")
    ] = False,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
    engine: Annotated[
        str | None,
        typer.Option(
            help="Where new papers are embedded: local (this process) or ray "
            "(env PAPERSCOPE_ENGINE)."
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster for --engine ray, HEAD:6379; default: a Ray started on this "
            "machine (env PAPERSCOPE_RAY_ADDRESS)."
        ),
    ] = None,
) -> None:
    """Embed, index, cluster and lay out the stored papers; publish the build atomically.

    With an empty store, the bundled corpus of 115 trending papers is ingested first. When few
    papers changed since the last full fit (PAPERSCOPE_INCREMENTAL_LIMIT), they are placed into
    the previous build's topics and map instead of refitting (an incremental build).
    """
    from service.artifacts import current_build_dir
    from service.embed.backends import load_embedder
    from service.pipeline.pipeline import run_build

    if address and not engine:  # an address only makes sense on Ray
        engine = "ray"
    settings = _settings(data_dir=data_dir, model=model, engine=engine, ray_address=address)
    existing = current_build_dir(settings.builds_dir)
    if if_missing and existing is not None:
        typer.echo(f"build {existing.name} exists; nothing to do (--if-missing)")
        return
    _print_build(*run_build(settings, lambda: load_embedder(settings), force=force))


def _print_build(folder: Path, manifest: BuildManifest, made: bool) -> None:
    from service.artifacts import read_manifest

    if not made:
        typer.echo(f"build {folder.name} is up to date; use --force to rebuild")
        return
    manifest = read_manifest(folder)
    typer.echo(
        f"published build {manifest.build_id}: {manifest.papers} papers "
        f"({manifest.embedded_new} embedded now), {manifest.n_topics} topics, "
        f"{manifest.noise_share:.0%} unclustered, index {manifest.index.type}"
    )
    fit = manifest.fit
    if fit.mode == "incremental":
        typer.echo(
            f"incremental: {manifest.topic_ids.get('placed')} papers placed into the topics of "
            f"build {fit.fitted_build} ({fit.changed_since_fit} changed since that fit); "
            "--force refits"
        )
    elif fit.sampled_papers is not None:
        typer.echo(
            f"sampled: topics and map fitted on {fit.sampled_papers} papers drawn at random, "
            f"the other {manifest.papers - fit.sampled_papers} assigned to that fit"
        )
    typer.echo(
        "stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in manifest.stage_seconds.items())
    )


@app.command()
def sync(
    endpoint: Annotated[
        str | None,
        typer.Option(help="OAI-PMH endpoint (env PAPERSCOPE_SYNC_ENDPOINT; default: arXiv's)."),
    ] = None,
    set_spec: Annotated[
        str | None,
        typer.Option(
            "--set",
            help="OAI-PMH set: cs, math, physics:hep-th; '' = all (env PAPERSCOPE_SYNC_SET).",
        ),
    ] = None,
    from_date: Annotated[
        str | None,
        typer.Option(
            "--from", help="Records changed on/after YYYY-MM-DD (default: where the last ended)."
        ),
    ] = None,
    until: Annotated[str | None, typer.Option(help="Records changed on/before YYYY-MM-DD.")] = None,
    no_build: Annotated[
        bool, typer.Option("--no-build", help="Only harvest; build later (paperscope build).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the harvest log as JSON.")] = False,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
) -> None:
    """Harvest new and updated papers from an OAI-PMH endpoint (arXiv's), then build.

    Resumes where the last sync of the endpoint and set ended; deleted records remove their
    papers. The build is incremental when few papers changed, as with paperscope build.
    """
    from service.ingest.oai_sync import summary

    start, end = _iso_date(from_date, "--from"), _iso_date(until, "--until")
    if start and end and start > end:
        raise typer.BadParameter("--from is after --until", param_hint="--from")
    paperscope = _app(data_dir=data_dir, model=model, sync_endpoint=endpoint, sync_set=set_spec)
    report, built = paperscope.sync(
        paperscope.harvest_request(start, end), build=not no_build, progress=not as_json
    )
    if as_json:
        _echo_json(report.model_dump())
    else:
        typer.echo(summary(report))
        for item in report.rejected:
            typer.echo(f"  rejected {item.location}: {item.reason}", err=True)
    if built is not None and not as_json:
        _print_build(*built)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (env PAPERSCOPE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env PAPERSCOPE_PORT).")] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the map in a web browser when ready.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(help="Server processes sharing the port (env PAPERSCOPE_WORKERS).")
    ] = None,
    sync_every: Annotated[
        str | None,
        typer.Option(
            help="Also harvest (paperscope sync) and build in the background this often: "
            "24h, 30m, 1d (env PAPERSCOPE_SYNC_EVERY)."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
) -> None:
    """Serve the JSON API (/api/v1, docs at /docs) and the topic map page (/)."""
    import uvicorn

    from service.api.app import create_app

    settings = _settings(
        data_dir=data_dir,
        model=model,
        host=host,
        port=port,
        workers=workers,
        sync_every=sync_every,
    )
    url = f"http://{settings.host}:{settings.port}/"
    if open_browser:

        def _open() -> None:
            time.sleep(3)
            if not webbrowser.open(url):
                log.info("no web browser found here; open %s yourself", url)

        threading.Thread(target=_open, daemon=True).start()
    typer.echo(f"serving {settings.data_dir} at {url} (API docs at {url}docs)")
    from service.config import server_log_config

    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        "access_log": settings.access_log,
    }
    log_config = server_log_config(settings)
    if log_config is not None:
        common["log_config"] = log_config
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return
    # Worker processes build their own app from the environment: hand them these options,
    # and a fresh folder where prometheus-client sums their metrics (set before any worker
    # imports it).
    import tempfile

    os.environ.update(
        PAPERSCOPE_DATA_DIR=str(settings.data_dir.resolve()),
        PAPERSCOPE_MODEL=settings.model,
        PAPERSCOPE_LOG_FORMAT=settings.log_format,
        PAPERSCOPE_SYNC_EVERY=str(settings.sync_every),
        PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp(prefix="paperscope-metrics-"),
    )
    uvicorn.run(
        "service.api.app:create_app_from_environment",
        factory=True,
        workers=settings.workers,
        **common,
    )


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="Free text: a question, a title or an abstract.")],
    k: KOpt = 10,
    mode: Annotated[
        str | None,
        typer.Option(help="dense, lexical (BM25) or hybrid (env PAPERSCOPE_SEARCH_MODE)."),
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    category: CategoryOpt = None,
    topic: TopicOpt = None,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
) -> None:
    """Search the current build by meaning, by terms, or both (filters apply before ranking)."""
    filters = _filter(since, until, category, topic)
    paperscope = _app(data_dir=data_dir, model=model)
    chosen = paperscope.search_mode(mode)
    engine = paperscope.open_engine(with_model=chosen != "lexical")
    _print_hits(paperscope.search(engine, text, k, chosen, filters, offset), as_json)


@app.command()
def similar(
    paper_id: Annotated[str, typer.Argument(help="Id of a paper in the build.")],
    k: KOpt = 10,
    since: SinceOpt = None,
    until: UntilOpt = None,
    category: CategoryOpt = None,
    topic: TopicOpt = None,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Papers like PAPER_ID (the paper itself excluded; filters apply before ranking)."""
    filters = _filter(since, until, category, topic)
    engine = _app(data_dir=data_dir).open_engine(with_model=False)
    _print_hits(engine.similar(paper_id, k, filters, offset), as_json)


def _print_hits(hits: list[Hit], as_json: bool) -> None:
    if as_json:
        _echo_json([h.model_dump() for h in hits])
        return
    for rank, hit in enumerate(hits, 1):
        typer.echo(f"{rank:>3}. {hit.score:.3f}  {hit.title}")
        typer.echo(f"      {hit.id}   [topic {hit.topic_id}: {hit.topic_label}]")


@app.command()
def info(as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    """What is stored and what the current build holds (topics with their labels)."""
    from service.artifacts import current_build_dir

    paperscope = _app(data_dir=data_dir)
    settings = paperscope.settings
    stored = paperscope.papers_stored()
    backend, why = paperscope.backend_choice()
    embedding = {"backend": backend, "setting": settings.backend, "why": why}
    folder = current_build_dir(settings.builds_dir)
    if folder is None:
        payload: dict[str, object] = {
            "data_dir": str(settings.data_dir),
            "papers_stored": stored,
            "embedding": embedding,
            "build": None,
        }
        if as_json:
            _echo_json(payload)
        else:
            typer.echo(
                f"{stored} papers stored in {settings.db_path}; no build yet (paperscope build)"
            )
            typer.echo(f"embedding    {settings.backend} = {backend}: {why}")
        return
    engine = paperscope.open_engine(with_model=False)
    topics = engine.topics()
    manifest = engine.manifest
    news = paperscope.emerging(engine)
    if as_json:
        _echo_json(
            {
                "data_dir": str(settings.data_dir),
                "papers_stored": stored,
                "embedding": embedding,
                "build": manifest.model_dump(),
                "emerging": news.model_dump(),
                "topics": [t.model_dump(exclude={"representative"}) for t in topics],
            }
        )
        return
    typer.echo(f"data dir     {settings.data_dir}  ({stored} papers stored)")
    typer.echo(f"build        {manifest.build_id}  ({manifest.created_at})")
    typer.echo(
        f"model        {manifest.model.name} ({manifest.model.dim}-dim, {manifest.model.backend})"
    )
    typer.echo(f"embedding    {settings.backend} = {backend}: {why}")
    typer.echo(f"papers       {manifest.papers}  ({manifest.noise_share:.0%} unclustered)")
    typer.echo(f"index        {manifest.index.type}: {manifest.index.reason}")
    typer.echo(
        "stages       " + ", ".join(f"{k} {v:.1f}s" for k, v in manifest.stage_seconds.items())
    )
    typer.echo(f"topics       {manifest.n_topics}")
    if news.added_since_build:
        due = "; a rebuild is suggested (paperscope build)" if news.rebuild_suggested else ""
        typer.echo(
            f"added live   {news.added_since_build} since the build, {news.unassigned} in no "
            f"topic (rebuild suggested at {news.threshold}){due}"
        )
    for topic in topics:
        typer.echo(f"  {topic.id:>4}  {topic.size:>5}  {topic.label}")


@app.command()
def verify(as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    """Check a data folder: every build against its checksums, which build is current, and the
    papers database (SQLite integrity_check). Exit 2 when anything is damaged."""
    from service.errors import BuildDamaged, DatabaseDamaged, InvalidInput
    from service.pipeline.verify import verify_data_folder

    settings = _settings(data_dir=data_dir)
    if not settings.data_dir.is_dir():
        raise InvalidInput(f"no data folder at {settings.data_dir}")
    findings = verify_data_folder(settings)
    if as_json:
        _echo_json([dataclasses.asdict(f) | {"ok": f.ok} for f in findings])
    else:
        for f in findings:
            said = f.detail if f.ok else "; ".join(f.problems)
            typer.echo(f"{'ok' if f.ok else 'DAMAGED':<8} {f.item:<9} {f.name}: {said}")
    damaged = [f for f in findings if not f.ok]
    if damaged:
        kind = DatabaseDamaged if any(f.item == "database" for f in damaged) else BuildDamaged
        raise kind(
            f"{len(damaged)} of {len(findings)} items damaged: "
            + ", ".join(f"{f.item} {Path(f.name).name}" for f in damaged)
        )


@app.command("export-map")
def export_map_command(
    target: Annotated[Path, typer.Argument(help="HTML file to write.")],
    neighbours: Annotated[int, typer.Option(help="'Papers like this' per paper.")] = 8,
    abstracts: Annotated[
        bool | None,
        typer.Option(
            "--abstracts/--no-abstracts", help="Inline abstracts (default: <= 20k papers)."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write the current build's map as one self-contained HTML file that works offline."""
    from service.query.export_map import export_map

    if not 1 <= neighbours <= 50:
        raise typer.BadParameter("between 1 and 50", param_hint="--neighbours")
    engine = _app(data_dir=data_dir).open_engine(with_model=False)
    size = export_map(engine, target, neighbours, abstracts)
    typer.echo(f"wrote {target} ({size / 1e6:.1f} MB, {engine.visible_count} papers)")


@export_app.command("papers")
def export_papers(
    out: Annotated[Path, typer.Argument(help="Output file: .csv, .parquet, .jsonl or .bib.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Every served paper with its topic id and name, outlier flag, date, categories and map
    position (x, y); .bib writes BibTeX."""
    paperscope = _app(data_dir=data_dir)
    paperscope.export_format(out)  # refuse an unknown suffix before loading anything
    count = paperscope.export_file(paperscope.open_engine(with_model=False), out)
    typer.echo(f"{count} papers -> {out}")


def _print_edit(edit: TopicEdit, as_json: bool) -> None:
    if as_json:
        _echo_json(edit.model_dump())
        return
    what = {"rename": f"name {edit.name!r}", "merge": f"merged {edit.topics}"}.get(
        edit.kind, f"{len(edit.paper_ids)} papers moved"
    )
    typer.echo(f"edit {edit.id}: {edit.kind} topic {edit.topic}, {what}; {edit.note}")


@topics_app.command("rename")
def topics_rename(
    topic: Annotated[int, typer.Argument(help="Topic id.")],
    name: Annotated[str, typer.Argument(help="Its new name (1-100 characters).")],
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Give a topic a name (a local write to the papers database: no API key)."""
    paperscope = _app(data_dir=data_dir)
    engine = paperscope.open_engine(with_model=False)
    _print_edit(paperscope.rename_topic(engine, topic, name), as_json)


@topics_app.command("merge")
def topics_merge(
    into: Annotated[int, typer.Argument(help="The topic that stays.")],
    topics: Annotated[list[int], typer.Argument(help="Topics merged into it.")],
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Merge topics into one: their papers join INTO, they disappear."""
    paperscope = _app(data_dir=data_dir)
    engine = paperscope.open_engine(with_model=False)
    _print_edit(paperscope.merge_topics(engine, into, topics), as_json)


@topics_app.command("move")
def topics_move(
    topic: Annotated[int, typer.Argument(help="The topic they go to.")],
    paper_ids: Annotated[list[str], typer.Argument(help="Papers to move.")],
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Move papers into a topic; they stay there in later builds."""
    paperscope = _app(data_dir=data_dir)
    engine = paperscope.open_engine(with_model=False)
    _print_edit(paperscope.move_papers(engine, topic, paper_ids), as_json)


@topics_app.command("edits")
def topics_edits(as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    """Every topic edit, with where it applies in the current build (or orphaned)."""
    paperscope = _app(data_dir=data_dir)
    found = paperscope.topic_edits(paperscope.open_engine(with_model=False))
    if as_json:
        _echo_json([e.model_dump() for e in found])
        return
    for edit in found:
        _print_edit(edit, as_json=False)


@topics_app.command("undo")
def topics_undo(
    edit: Annotated[int, typer.Argument(help="Edit id (see: paperscope topics edits).")],
    data_dir: DataDirOpt = None,
) -> None:
    """Undo a topic edit."""
    paperscope = _app(data_dir=data_dir)
    paperscope.undo_topic_edit(paperscope.open_engine(with_model=False), edit)
    typer.echo(f"edit {edit} undone")


@collection_app.command("add")
def collection_add(
    name: Annotated[str, typer.Argument(help="Collection name (created if new).")],
    paper_ids: Annotated[
        list[str] | None, typer.Argument(help="Papers it is about (positive seeds).")
    ] = None,
    negative: Annotated[
        list[str] | None,
        typer.Option("--negative", help="A paper it is not about; repeatable."),
    ] = None,
    note: Annotated[str, typer.Option(help="Replace the collection's note.")] = "",
    data_dir: DataDirOpt = None,
) -> None:
    """Add papers to a collection (a local write to the papers database: no API key)."""
    import re

    from service.schemas import COLLECTION_NAME_PATTERN

    if not re.match(COLLECTION_NAME_PATTERN, name):
        raise typer.BadParameter(
            "use letters, digits, '.', '_', '-' (up to 100)", param_hint="NAME"
        )
    paperscope = _app(data_dir=data_dir)
    engine = paperscope.open_engine(with_model=False)
    saved, created = paperscope.add_to_collection(
        engine, name, list(paper_ids or []), list(negative or []), note
    )
    verb = "created" if created else "updated"
    typer.echo(
        f"{verb} {name}: {len(saved.positive)} positive, {len(saved.negative)} negative"
        + (f", missing {', '.join(saved.missing)}" if saved.missing else "")
    )


@collection_app.command("list")
def collection_list(as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    """Every collection with its seeds (and those deleted since)."""
    paperscope = _app(data_dir=data_dir)
    found = paperscope.collections(paperscope.open_engine(with_model=False))
    if as_json:
        _echo_json([c.model_dump() for c in found])
        return
    for c in found:
        missing = f", {len(c.missing)} missing" if c.missing else ""
        typer.echo(
            f"{c.name}: {len(c.positive)} positive, {len(c.negative)} negative, "
            f"{len(c.seen)} seen{missing}  {c.note}"
        )


@collection_app.command("feed")
def collection_feed(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    since: Annotated[
        str | None, typer.Option(help="Papers dated or added on/after YYYY-MM-DD.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Papers to list.")] = 20,
    atom: Annotated[bool, typer.Option("--atom", help="Print an Atom document.")] = False,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Server address the Atom links point to "
            "(default: PAPERSCOPE_PUBLIC_URL, else http://HOST:PORT/ from the settings)."
        ),
    ] = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """New papers like a collection, with the reason for each."""
    paperscope = _app(data_dir=data_dir)
    engine = paperscope.open_engine(with_model=False)
    day = _iso_date(since, "--since")
    if atom:
        typer.echo(paperscope.feed_atom(engine, name, day, limit, base_url).decode())
        return
    result = paperscope.feed(engine, name, day, limit)
    if as_json:
        _echo_json(result.model_dump())
        return
    if result.missing:
        typer.echo(f"seeds no longer served: {', '.join(result.missing)}", err=True)
    typer.echo(f"ranked by {result.ranking}: {result.ranking_note}", err=True)
    for rank, rec in enumerate(result.results, 1):
        typer.echo(f"{rank:>3}. {rec.score:.3f}  {rec.title}")
        why = f"like {rec.reason.closest_seed}"
        if rec.reason.terms:
            why += f"; terms: {', '.join(rec.reason.terms)}"
        typer.echo(f"      {rec.id}   {why}")


@digest_app.command("send")
def digest_send(
    collection: Annotated[
        str | None, typer.Option(help="Only this collection's subscribers (default: every one).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the mails that would be sent; send nothing.")
    ] = False,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Mail each subscriber their collection's new papers (none sent twice) through the
    PAPERSCOPE_SMTP_* server."""
    paperscope = _app(data_dir=data_dir)
    report = paperscope.send_digests(collection=collection, dry_run=dry_run)
    if as_json:
        _echo_json(report.model_dump())
        return
    for mail in report.mails:
        typer.echo(f"{mail.status}: {mail.email} <- {mail.subject}" + _said(mail.detail))
        if mail.text:
            typer.echo(mail.text)
    idle = f"{report.nothing_new} subscribers with nothing new"
    if dry_run:
        typer.echo(f"{len(report.mails)} would be sent, {idle} (dry run: nothing sent)")
        return
    refused = sum(m.status == "refused" for m in report.mails)
    typer.echo(f"{len(report.mails) - refused} sent, {refused} refused, {idle}")


def _said(detail: str) -> str:
    return f" ({detail})" if detail else ""


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Annotated[
        Path, typer.Argument(help="BEIR-layout folder: corpus.jsonl, queries, qrels.")
    ],
    split: Annotated[str, typer.Option(help="Qrels split (qrels/SPLIT.tsv).")] = "test",
    modes: Annotated[str, typer.Option(help="Comma-separated search modes.")] = ",".join(
        ("dense", "lexical", "hybrid")
    ),
    json_out: JsonOutOpt = None,
    cache_dir: CacheDirOpt = None,
    two_fold: Annotated[
        bool,
        typer.Option(
            "--two-fold",
            help="Also tune the hybrid dense weight (0.3-0.7) on half the queries and "
            "report the other half, both ways round.",
        ),
    ] = False,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
) -> None:
    """nDCG@10, Recall@100 and MRR@10 of each search mode on a BEIR dataset.

    BM25 and fusion parameters come from the settings (PAPERSCOPE_BM25_*, PAPERSCOPE_FUSION*).
    """
    paperscope = _app(data_dir=data_dir, model=model)
    report = paperscope.eval_retrieval(dataset, split, modes, cache_dir, two_fold)
    typer.echo(
        f"{report.dataset} ({report.split}): {report.queries} queries, {report.documents} "
        f"documents; {report.model} ({report.backend})"
    )
    typer.echo(report.table())
    typer.echo("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items()))
    if json_out is not None:
        json_out.write_text(json.dumps(dataclasses.asdict(report), indent=2), encoding="utf-8")


@eval_app.command("clustering")
def eval_clustering(
    corpus: Annotated[
        Path, typer.Argument(help="JSONL (or .jsonl.gz) with title, abstract, label.")
    ],
    label_field: Annotated[str, typer.Option(help="Field holding each paper's label.")] = "label",
    limit: Annotated[int | None, typer.Option(help="Use only the first N papers.")] = None,
    bertopic: Annotated[
        bool, typer.Option("--bertopic/--no-bertopic", help="Also fit BERTopic (if installed).")
    ] = True,
    peers: Annotated[
        bool,
        typer.Option(
            "--peers/--no-peers",
            help="Also fit EVoC, Turftopic Topeax (if installed) and k-means at our topic counts.",
        ),
    ] = True,
    noise_stability: Annotated[
        bool,
        typer.Option(
            help="Fit every method again on the vectors with bf16-level noise and report the "
            "ARI between the two (1 = the topics did not move); doubles the fitting time.",
        ),
    ] = False,
    json_out: JsonOutOpt = None,
    cache_dir: CacheDirOpt = None,
    data_dir: DataDirOpt = None,
    model: ModelOpt = None,
) -> None:
    """NMI, ARI and V-measure of the topics against known labels, ours beside BERTopic's."""
    paperscope = _app(data_dir=data_dir, model=model)
    report = paperscope.eval_clustering(
        corpus, label_field, cache_dir, limit, bertopic, peers, noise_stability
    )
    typer.echo(
        f"{report.file}: {report.papers} papers, {report.labels} labels ({report.label_field}); "
        f"{report.model}; embedding {report.embed_seconds:.0f} s"
    )
    typer.echo(report.table())
    for note in report.notes:
        typer.echo(f"note: {note}")
    if json_out is not None:
        json_out.write_text(json.dumps(dataclasses.asdict(report), indent=2), encoding="utf-8")


@models_app.command("prepare")
def models_prepare(
    models_dir: Annotated[Path | None, typer.Option(help="Models folder.")] = None,
    remeasure: Annotated[
        bool, typer.Option(help="Time the backends again, though this machine has a choice.")
    ] = False,
) -> None:
    """Verify the installed model weights against models/manifest.json and link them, export
    the ONNX/OpenVINO variants, and time every backend here once: auto uses the fastest that
    keeps the quality guard."""
    from service.embed.prepare import prepare_models

    settings = load_settings(models_dir=models_dir)
    for line in prepare_models(settings.models_dir, remeasure=remeasure):
        typer.echo(line)


@models_app.command("list")
def models_list(
    models_dir: Annotated[Path | None, typer.Option(help="Models folder.")] = None,
) -> None:
    """Models named in the manifest and where each resolves to."""
    from service.embed.models import read_manifest, resolve_model

    settings = load_settings(models_dir=models_dir)
    for name, entry in read_manifest(settings.models_dir).items():
        resolved = resolve_model(name, settings.models_dir)
        typer.echo(f"{name}  dim {entry.dim}  {entry.licence}\n    -> {resolved.location}")


# -- backups and the served build (service/backup.py, service/artifacts.py) -------------------

builds_app = typer.Typer(
    help="List the builds and choose the one served (rollback).", no_args_is_help=True
)
app.add_typer(builds_app, name="builds")


@app.command("backup")
def backup_command(
    dest: Annotated[Path, typer.Argument(help="New or empty folder to write the backup into.")],
    with_build: Annotated[
        bool, typer.Option("--with-build", help="Also copy the current build itself.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Replace an earlier backup in DEST.")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Copy the papers database (consistent while servers run) and the current build's
    manifest into DEST."""
    from service.backup import backup

    made = backup(_settings(data_dir=data_dir), dest, with_build, force)
    size = sum(f.bytes for f in made.files.values())
    build = (
        "no build yet"
        if made.build_id is None
        else f"build {made.build_id}" + ("" if made.with_build else " (its manifest)")
    )
    typer.echo(
        f"backed up {made.papers} papers and {build} to {dest} "
        f"({size / 1e6:.1f} MB in {len(made.files)} files)"
    )


@app.command("restore")
def restore_command(
    source: Annotated[Path, typer.Argument(help="A folder written by paperscope backup.")],
    force: Annotated[
        bool, typer.Option(help="Replace the existing papers database (and build of that id).")
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Bring a backup back: checksums and SQLite integrity checked, the papers database replaced
    atomically, and the backup's build published when it holds one."""
    from service.backup import restore

    settings = _settings(data_dir=data_dir)
    done = restore(settings, source, force)
    typer.echo(f"restored {done.papers} papers into {settings.db_path}")
    if done.build in ("restored", "already there"):
        typer.echo(f"build {done.build_id} {done.build}; now current")
    elif done.build == "not in the backup":
        typer.echo(
            f"the backup was taken with build {done.build_id} (not copied: --with-build); "
            "run paperscope build if it is not in this data folder"
        )


@builds_app.command("list")
def builds_list(as_json: JsonOpt = False, data_dir: DataDirOpt = None) -> None:
    """Every build in the data folder: id, created, papers, topics, size, which is current."""
    from service.artifacts import list_builds

    found = list_builds(_settings(data_dir=data_dir).builds_dir)
    if as_json:
        _echo_json([dataclasses.asdict(b) for b in found])
        return
    if not found:
        typer.echo("no builds yet (paperscope build)")
    for b in found:
        mark = "*" if b.current else " "
        created = b.created_at or "?"
        counts = "" if b.papers is None else f"{b.papers:>8} papers {b.topics:>5} topics"
        typer.echo(
            f"{mark} {b.id}  {created:<25} {counts:<28} {b.bytes / 1e6:>8.1f} MB"
            + (f"  {b.problem}" if b.problem else "")
        )


@builds_app.command("use")
def builds_use(
    build_id: Annotated[str, typer.Argument(help="A build id from paperscope builds list.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Serve another build (rollback or forward): CURRENT is switched atomically and running
    servers follow within PAPERSCOPE_RELOAD_SECONDS."""
    from service.artifacts import use_build

    settings = _settings(data_dir=data_dir)
    before = use_build(settings.builds_dir, build_id)
    if before == build_id:
        typer.echo(f"{build_id} is already the current build")
        return
    typer.echo(
        f"current build: {build_id} (was {before}); servers follow within "
        f"{settings.reload_seconds:g} s"
    )


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("sentence_transformers", "httpx", "numba", "faiss", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app()
    except PaperscopeError as err:
        typer.echo(f"error: {err.message}", err=True)
        sys.exit(2)
    except OSError as err:  # one no command explained: still what, where and why
        command = " ".join(a for a in sys.argv[1:3] if not a.startswith("-"))
        typer.echo(f"error: {storage_error(err, f'paperscope {command}').message}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
