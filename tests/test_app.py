"""The application object (service/app.py) on a real build: the engine opened once (a command)
or followed (a server), the settings' defaults applied, collections and their feeds, exports."""

from __future__ import annotations

import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from service.app import Paperscope
from service.artifacts import sync_lock
from service.embed.backends import Embedder
from service.errors import InvalidInput, NotFound, NotReady, SyncRunning
from service.query.engine import Engine
from service.schemas import NO_FILTER, CollectionIn, PaperIn, SyncReport
from service.search.fusion import fusion_params
from tests.helpers import SCRIPT, make_settings, start_server, subprocess_env
from tests.oai_server import Endpoint, Repository

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def paperscope(built_copy: Path) -> Paperscope:
    return Paperscope(make_settings(built_copy, search_mode="lexical", port=8123))


@pytest.fixture
def opened(paperscope: Paperscope) -> Engine:
    return paperscope.open_engine(with_model=False)


def _ids(engine: Engine, n: int) -> list[str]:
    return engine.paper_ids[:n]


def test_one_database_path_and_the_stored_papers(paperscope: Paperscope, opened: Engine) -> None:
    assert paperscope.db_path == paperscope.settings.db_path
    assert paperscope.papers_stored() == opened.size == 115


def test_a_command_opens_the_build_once_without_a_server(
    paperscope: Paperscope, opened: Engine
) -> None:
    assert opened.embedder is None  # with_model=False: no model loaded
    assert paperscope.served() is None
    with pytest.raises(NotReady):  # no server: nothing followed
        paperscope.engine()


def test_search_takes_the_configured_mode_unless_one_is_asked_for(
    paperscope: Paperscope, opened: Engine
) -> None:
    fusion = fusion_params(paperscope.settings)
    text = "topic models for scientific papers"
    default = paperscope.search(opened, text, 5, None, NO_FILTER)
    assert default == opened.search(text, 5, "lexical", fusion, NO_FILTER, 0)
    with pytest.raises(InvalidInput):
        paperscope.search(opened, text, 5, "fuzzy", NO_FILTER)


def test_a_server_follows_the_build_and_writes_through_it(
    paperscope: Paperscope, embedder: Embedder
) -> None:
    paperscope.serve(embedder)
    try:
        engine = paperscope.engine()
        assert paperscope.served() is engine
        ready = paperscope.ready(engine)
        assert ready.ready and ready.papers == 115 and ready.added_live == 0
        paper = PaperIn(id="app-new", title="Sparse attention", abstract="We sparsify attention.")
        report = paperscope.add_papers(engine, [paper])
        assert [p.id for p in report.papers] == ["app-new"]
        assert engine.has_paper("app-new")
        paperscope.delete_paper(engine, "app-new")
        assert not engine.has_paper("app-new")
    finally:
        paperscope.stop()


def test_collections_and_their_feeds(paperscope: Paperscope, opened: Engine) -> None:
    seeds = _ids(opened, 2)
    saved, created = paperscope.put_collection(
        opened, "reading", CollectionIn(positive=seeds[:1], note="to read")
    )
    assert created and saved.positive == seeds[:1]
    _, created = paperscope.add_to_collection(opened, "reading", seeds[1:], [], "")
    assert not created
    assert [c.name for c in paperscope.collections(opened)] == ["reading"]
    assert paperscope.collection(opened, "reading").positive == seeds

    feed = paperscope.feed(opened, "reading", None, 5)
    assert len(feed.results) == 5 and not {r.id for r in feed.results} & set(seeds)
    for given, base in ((None, "http://127.0.0.1:8123/"), ("https://x.org/", "https://x.org/")):
        atom = paperscope.feed_atom(opened, "reading", None, 5, given)
        root = ET.fromstring(atom)  # noqa: S314 - our own document
        links = [e.get("href", "") for e in root.iter(f"{ATOM}link")]
        assert len(links) == 2 + 5 and all(link.startswith(base) for link in links)

    paperscope.delete_collection("reading")
    with pytest.raises(NotFound):
        paperscope.collection(opened, "reading")


def test_an_export_refuses_bad_input_before_the_first_byte(
    paperscope: Paperscope, opened: Engine
) -> None:
    with pytest.raises(NotFound):  # raised by the call, not when the stream is read
        paperscope.export(opened, "jsonl", NO_FILTER, k=10, collection="nowhere")
    lines = b"".join(paperscope.export(opened, "jsonl", NO_FILTER, k=10)).splitlines()
    assert len(lines) == opened.visible_count
    topic = opened.topics()[0]
    chosen = b"".join(paperscope.export(opened, "jsonl", NO_FILTER, k=10, topic=topic.id))
    assert {json.loads(line)["topic_id"] for line in chosen.splitlines()} == {topic.id}


def test_an_export_file_and_its_format(
    paperscope: Paperscope, opened: Engine, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput):
        paperscope.export_format(tmp_path / "papers.txt")
    out = tmp_path / "papers.csv"
    assert paperscope.export_format(out) == "csv"
    assert paperscope.export_file(opened, out) == opened.visible_count
    assert len(out.read_text(encoding="utf-8").splitlines()) == opened.visible_count + 1


# -- following a repository (OAI-PMH) ---------------------------------------------------------


class _Recording(Paperscope):
    """The application with its after-sync hook recording what it was handed."""

    synced: ClassVar[list[SyncReport]] = []

    def after_sync(self, report: SyncReport) -> None:
        self.synced.append(report)


def test_sync_harvests_records_the_time_and_calls_the_hook(tmp_path: Path) -> None:
    with Endpoint(Repository()) as endpoint:
        app = _Recording(make_settings(tmp_path, sync_endpoint=endpoint.url, sync_delay=0))
        assert app.last_synced() is None
        report, built = app.sync(app.harvest_request(), build=False, progress=False)
    assert built is None and report.build_id is None
    assert report.new == 6 and app.papers_stored() == 6
    assert app.synced == [report]
    synced = app.last_synced()
    assert synced is not None and datetime.fromisoformat(synced).tzinfo is not None


def test_one_sync_at_a_time(tmp_path: Path) -> None:
    app = Paperscope(make_settings(tmp_path, sync_endpoint="http://127.0.0.1:9/oai"))
    with sync_lock(app.settings.sync_lock_path), pytest.raises(SyncRunning):
        app.sync(app.harvest_request(), build=False, progress=False)


@pytest.mark.slow  # a sync, a build, a server syncing and building again on its schedule
def test_a_server_syncs_on_its_schedule_and_serves_what_came(tmp_path: Path) -> None:
    repository = Repository()
    data_dir = tmp_path / "data"
    with Endpoint(repository) as endpoint:
        first = subprocess.run(
            [SCRIPT, "sync"],
            capture_output=True,
            text=True,
            env=subprocess_env(data_dir=data_dir, sync_endpoint=endpoint.url, sync_delay=0),
            timeout=900,
        )
        assert first.returncode == 0, first.stderr
        assert "6 new" in first.stdout
        built = re.search(r"published build (\S+):", first.stdout)
        assert built is not None
        first_build = built.group(1)
        repository.today = "2024-01-10"  # a day on: 0704.0108 new, 0704.0050 v2, 0704.0046 gone
        log = tmp_path / "server.log"
        process, url = start_server(
            log, data_dir=data_dir, sync_endpoint=endpoint.url, sync_delay=0, sync_every="3s"
        )
        try:
            ready = _wait_for(url, process, log, lambda r: r["build_id"] != first_build)
            assert ready["papers"] == 6 and ready["last_synced"]
            hits = httpx.get(f"{url}/api/v1/search", params={"q": "Reducing SAT to 2-SAT"}).json()
            assert hits["results"][0]["id"] == "0704.0108"
            assert httpx.get(f"{url}/api/v1/papers/0704.0046").status_code == 404
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "sync failed" not in text
    assert "1 new, 1 updated" in text  # the harvest log of the scheduled sync


def _wait_for(
    url: str, process: subprocess.Popen[bytes], log: Path, done: Callable[[dict[str, Any]], Any]
) -> dict[str, Any]:
    """/api/v1/ready's answer once ``done`` holds for it (the server still up)."""
    deadline = time.monotonic() + 600
    while True:
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        try:
            answer = httpx.get(f"{url}/api/v1/ready", timeout=5)
        except httpx.HTTPError:
            answer = None
        if answer is not None and answer.status_code == 200 and done(answer.json()):
            return dict(answer.json())
        time.sleep(0.5)


@pytest.mark.slow  # two syncs with their builds and a mail server
def test_harvested_papers_reach_a_feed_and_a_mailed_digest(tmp_path: Path) -> None:
    """The living corpus end to end: a fresh data folder synced from the local OAI-PMH server
    and built; a collection and a subscriber; the next day's sync builds again and mails the
    new paper (received by a real SMTP server), which the collection's feed also lists."""
    from tests.smtp import smtp_server

    repository = Repository()
    with Endpoint(repository) as endpoint, smtp_server() as (inbox, port):
        settings = make_settings(
            tmp_path / "data",
            sync_endpoint=endpoint.url,
            sync_delay=0,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_tls="none",
            smtp_from="digest@example.org",
            public_url="https://papers.example.org/",
        )
        app = Paperscope(settings)
        report, built = app.sync(app.harvest_request(), progress=False)
        assert report.new == 6 and built is not None
        assert inbox.received == []  # no subscriber yet
        engine = app.open_engine(with_model=False)
        seed = "0704.0050"
        app.put_collection(engine, "sat", CollectionIn(positive=[seed]))
        engine.close()
        app.subscribe("sat", "reader@example.org")
        first = app.send_digests()
        assert [m.status for m in first.mails] == ["sent"] and len(inbox.received) == 1

        repository.today = "2024-01-10"  # a day on: 0704.0108 new, 0704.0050 v2, 0704.0046 gone
        report, built = app.sync(app.harvest_request(), progress=False)
        assert report.new == 1 and built is not None and built[2]
        engine = app.open_engine(with_model=False)
        feed = app.feed(engine, "sat", None, 20)
        engine.close()
    assert "0704.0108" in [item.id for item in feed.results]
    assert len(inbox.received) == 2  # the second digest came with the second sync
    mail = inbox.received[1]
    assert mail.recipients == ["reader@example.org"]
    text = mail.message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert "0704.0108" in body and "https://papers.example.org/" in body
    assert mail.message["List-Unsubscribe"]
    first_ids = set(first.mails[0].papers)
    assert not any(paper_id in body for paper_id in first_ids)  # nothing sent twice
