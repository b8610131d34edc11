"""Harvesting from a real local OAI-PMH endpoint (tests/oai_server.py) into a real store."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from service.errors import SyncError
from service.ingest.oai_sync import MAX_WAIT, Harvest, read_page, retry_after, summary, sync
from service.schemas import Paper
from service.store import Store
from tests.helpers import free_port
from tests.oai_server import Endpoint, Repository

FIRST_TOKEN = "metadataPrefix=arXivRaw&set=cs|3"
"""The token of the first harvest's second page (see Repository)."""


def _harvest(url: str, **options: object) -> Harvest:
    return Harvest(endpoint=url, set_spec="cs", delay=0, retries=2, **options)  # type: ignore[arg-type]


def test_a_harvest_follows_tokens_waits_on_503_and_resumes(tmp_path: Path) -> None:
    repository = Repository(busy_tokens={FIRST_TOKEN})
    with Endpoint(repository) as endpoint, Store(tmp_path / "papers.sqlite") as store:
        first = sync(store, _harvest(endpoint.url), progress=False)
        assert (first.records, first.new, first.pages, first.retries) == (6, 6, 2, 1)
        assert first.from_date is None and first.resume_from == "2024-01-09"
        asked = [r.get("resumptionToken") for r in repository.requests]
        assert asked == [None, FIRST_TOKEN, FIRST_TOKEN]  # the 503 was asked again
        paper = store.get("0704.0050")
        assert paper is not None and paper.date == "2007-04-01" and paper.authors
        assert store.sync_state(endpoint.url, "cs") is not None

        repository.today = "2024-01-10"  # a day on: a new version, a deletion, a new paper
        second = sync(store, _harvest(endpoint.url), progress=False)
        assert repository.requests[3]["from"] == "2024-01-09"
        assert (second.new, second.updated, second.deleted) == (1, 1, 1)
        assert store.get("0704.0046") is None
        updated = store.get("0704.0050")
        assert updated is not None and updated.abstract.endswith("second steel structure.")
        assert updated.date == paper.date  # still dated by its first version
        assert store.count() == 6

        third = sync(store, _harvest(endpoint.url), progress=False)
        assert repository.requests[-1]["from"] == "2024-01-10"
        assert (third.new, third.updated, third.deleted, third.unchanged) == (0, 0, 0, 2)
        assert "0 new" in summary(third) and "next sync from 2024-01-10" in summary(third)


def test_no_records_match_is_nothing_new(tmp_path: Path) -> None:
    with Endpoint(Repository()) as endpoint, Store(tmp_path / "papers.sqlite") as store:
        report = sync(store, _harvest(endpoint.url, from_date="2030-01-01"), progress=False)
        assert (report.records, report.pages, store.count()) == (0, 1, 0)
        assert report.resume_from == "2024-01-09"  # the server's day, not the future


def test_a_backfill_does_not_rewind_the_resume_date(tmp_path: Path) -> None:
    repository = Repository(today="2024-01-10")
    with Endpoint(repository) as endpoint, Store(tmp_path / "papers.sqlite") as store:
        sync(store, _harvest(endpoint.url), progress=False)
        backfill = _harvest(endpoint.url, from_date="2024-01-01", until="2024-01-08")
        back = sync(store, backfill, progress=False)
        assert back.records == 1 and back.resume_from == "2024-01-10"
        assert "until" in repository.requests[-1]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("down", "cannot reach"),
        ("garbage", "bad XML"),
        ("bad set", "refused the request (BadArgument: unknown set nosuch)"),
    ],
)
def test_failures_are_sync_errors_and_store_nothing(
    tmp_path: Path, setup: str, message: str
) -> None:
    repository = Repository(garbage=setup == "garbage")
    with Endpoint(repository) as endpoint, Store(tmp_path / "papers.sqlite") as store:
        url = f"http://127.0.0.1:{free_port()}/oai" if setup == "down" else endpoint.url
        harvest = Harvest(url, "nosuch" if setup == "bad set" else "cs", delay=0, retries=1)
        with pytest.raises(SyncError, match=re.escape(message)):
            sync(store, harvest, progress=False)
        assert store.sync_state(url, harvest.set_spec or "") is None
        assert store.count() == 0


def test_a_record_in_the_arxiv_format_is_a_paper() -> None:
    page = etree.fromstring(
        b"""<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords>
        <record><header><identifier>oai:arXiv.org:0704.0001</identifier>
        <datestamp>2008-11-13</datestamp></header><metadata>
        <arXiv xmlns="http://arxiv.org/OAI/arXiv/"><id>0704.0001</id><created>2007-04-02</created>
        <authors><author><keyname>Bal\xc3\xa1zs</keyname><forenames>C.</forenames></author>
        <author><keyname>Berger</keyname><forenames>E. L.</forenames></author></authors>
        <title>Calculation of prompt diphoton production</title><categories>hep-ph</categories>
        <abstract>  A fully differential calculation.</abstract></arXiv></metadata></record>
        <record><header><identifier>oai:arXiv.org:0704.0002</identifier>
        <datestamp>2008-11-13</datestamp></header><metadata><other/></metadata></record>
        </ListRecords></OAI-PMH>"""
    )
    papers, deleted = read_page(page, "test")
    paper, rejected = papers
    assert isinstance(paper, Paper) and not deleted
    assert paper.authors == ["C. Balázs", "E. L. Berger"] and paper.date == "2007-04-02"
    assert not isinstance(rejected, Paper) and rejected.location == "oai:arXiv.org:0704.0002"


def test_retry_after_reads_seconds_and_dates() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert retry_after("5", 9) == 5
    assert 20 < retry_after(soon, 9) <= 30
    assert retry_after(None, 9) == retry_after("soon", 9) == 9
    assert retry_after("86400", 9) == MAX_WAIT


@given(st.one_of(st.none(), st.text(max_size=40)), st.floats(0, 10_000))
def test_retry_after_is_always_a_sane_wait(value: str | None, fallback: float) -> None:
    assert 0 <= retry_after(value, fallback) <= MAX_WAIT
