"""Harvest new and updated papers from an OAI-PMH endpoint (arXiv's by default) into the store.

The protocol is left to sickle (requests, ``resumptionToken`` paging, OAI error codes as
exceptions, 503 retried after its ``Retry-After``); :class:`_Client` adds what a daily harvest of
arXiv needs on top: a ``Retry-After`` given as an HTTP date or absurdly long is read sanely, 429,
other 5xx answers and refused connections are retried with a doubling wait, each page is checked
to be well-formed OAI-PMH XML (sickle's parser recovers silently), and retries are counted.

Records become papers the way the arXiv snapshot's lines do: an ``arXivRaw`` or ``arXiv``
record is mapped to the snapshot's fields and handed to
:func:`~service.ingest.arxiv_oai.oai_to_paper`, then upserted page by page through the store's
ingest path (a new version of a paper updates it). A record whose header says
``status="deleted"`` removes the paper. The harvest resumes from the date the server gave in its
first answer (``responseDate``), stored only once every page is in: an interrupted harvest is
simply repeated, and an overlap only finds papers unchanged.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from lxml import etree
from sickle import Sickle, oaiexceptions
from sickle.iterator import OAIResponseIterator
from sickle.response import OAIResponse

from service import __version__
from service.errors import PaperscopeError, SyncError
from service.ingest.arxiv_oai import oai_to_paper
from service.schemas import IngestReport, Paper, Rejected, SyncReport
from service.store import Store

log = logging.getLogger(__name__)

OAI = "{http://www.openarchives.org/OAI/2.0/}"
RAW = "{http://arxiv.org/OAI/arXivRaw/}"
ARXIV = "{http://arxiv.org/OAI/arXiv/}"
MAX_WAIT = 600.0
"""The longest wait before a retry, whatever ``Retry-After`` asks (seconds)."""
RETRIED_STATUS = (429, 500, 502, 503, 504)
TIMEOUT = 120.0
"""Seconds one request may take (arXiv's pages of 1,000 records take a few)."""


@dataclass(frozen=True)
class Harvest:
    """What to ask the endpoint for, and how patiently."""

    endpoint: str
    set_spec: str | None
    metadata_prefix: str = "arXivRaw"
    from_date: str | None = None
    until: str | None = None
    retries: int = 5
    delay: float = 3.0


def retry_after(value: str | None, fallback: float) -> float:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date), at most
    :data:`MAX_WAIT`; ``fallback`` when it is missing or unreadable."""
    wait = fallback
    if value:
        try:
            wait = float(value)
        except ValueError:
            try:
                wait = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                wait = fallback
    return min(max(wait, 0.0), MAX_WAIT)


class _Client(Sickle):  # type: ignore[misc]  # sickle ships no types
    """sickle, with the retries described in the module's docstring."""

    def __init__(self, harvest: Harvest) -> None:
        super().__init__(
            harvest.endpoint,
            iterator=OAIResponseIterator,
            max_retries=harvest.retries,
            retry_status_codes=RETRIED_STATUS,
            timeout=TIMEOUT,
            headers={"User-Agent": f"paperscope/{__version__} (OAI-PMH harvester)"},
        )
        self.delay = max(harvest.delay, 1.0)
        self.retried = 0
        self.pages = 0
        self.response_date: str | None = None
        self._failures = 0  # in a row, for the doubling wait

    def get_retry_after(self, http_response: requests.Response) -> float:
        """Called by sickle before each retry of a 429/5xx answer."""
        self.retried += 1
        self._failures += 1
        doubling = min(self.delay * 2 ** (self._failures - 1), MAX_WAIT)
        return retry_after(http_response.headers.get("retry-after"), doubling)

    def _request(self, kwargs: dict[str, str]) -> requests.Response:
        """One request; a refused or timed-out connection is retried after a doubling wait."""
        for attempt in range(self.max_retries + 1):
            try:
                response: requests.Response = super()._request(kwargs)
                return response
            except (requests.ConnectionError, requests.Timeout):
                if attempt == self.max_retries:
                    raise
                self.retried += 1
                wait = min(self.delay * 2**attempt, MAX_WAIT)
                log.warning("no answer from %s; trying again in %.0f s", self.endpoint, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")

    def harvest(self, **kwargs: str) -> OAIResponse:
        response = super().harvest(**kwargs)
        self._failures = 0
        root = _strict_xml(response.http_response.content, self.endpoint)
        self.pages += 1
        self.response_date = self.response_date or root.findtext(f"{OAI}responseDate")
        return response


def _strict_xml(content: bytes, endpoint: str) -> Any:
    """The page's root element; SyncError unless it is well-formed OAI-PMH."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(content, parser=parser)
    except etree.XMLSyntaxError as err:
        raise SyncError(f"{endpoint} answered with bad XML: {err}") from None
    if root.tag != f"{OAI}OAI-PMH":
        raise SyncError(f"{endpoint} answered with XML that is not OAI-PMH (<{root.tag}>)")
    return root


# -- records ----------------------------------------------------------------------------------


def _raw_fields(meta: Any) -> dict[str, Any]:
    """An ``arXivRaw`` record as the snapshot's fields (it is the snapshot's own source)."""
    versions = [
        {"version": v.get("version"), "created": v.findtext(f"{RAW}date")}
        for v in meta.iterfind(f"{RAW}version")
    ]
    return {
        "id": meta.findtext(f"{RAW}id"),
        "title": meta.findtext(f"{RAW}title"),
        "abstract": meta.findtext(f"{RAW}abstract"),
        "authors": meta.findtext(f"{RAW}authors"),
        "categories": meta.findtext(f"{RAW}categories"),
        "versions": versions,
    }


def _arxiv_fields(meta: Any) -> dict[str, Any]:
    """An ``arXiv`` record as the snapshot's fields (names split into keyname and forenames)."""
    authors = [
        " ".join(
            part
            for part in (a.findtext(f"{ARXIV}forenames"), a.findtext(f"{ARXIV}keyname"))
            if part
        )
        for a in meta.iterfind(f"{ARXIV}authors/{ARXIV}author")
    ]
    return {
        "id": meta.findtext(f"{ARXIV}id"),
        "title": meta.findtext(f"{ARXIV}title"),
        "abstract": meta.findtext(f"{ARXIV}abstract"),
        "authors": authors,
        "categories": meta.findtext(f"{ARXIV}categories"),
        "versions": [{"created": meta.findtext(f"{ARXIV}created")}],
    }


def _local_id(identifier: str) -> str:
    """``oai:arXiv.org:2401.00001`` -> ``2401.00001`` (old ids keep their slash)."""
    return identifier.rsplit(":", 1)[-1] if identifier.startswith("oai:") else identifier


def read_page(root: Any, source: str) -> tuple[list[Paper | Rejected], list[str]]:
    """One ListRecords page: its papers (or why a record is not one) and the deleted ids."""
    papers: list[Paper | Rejected] = []
    deleted: list[str] = []
    for record in root.iterfind(f"{OAI}ListRecords/{OAI}record"):
        identifier = record.findtext(f"{OAI}header/{OAI}identifier") or ""
        if record.find(f"{OAI}header").get("status") == "deleted":
            deleted.append(_local_id(identifier))
            continue
        meta = record.find(f"{OAI}metadata/*")
        try:
            if meta is None or meta.tag not in (f"{RAW}arXivRaw", f"{ARXIV}arXiv"):
                raise ValueError("no arXivRaw or arXiv metadata")
            fields = _raw_fields(meta) if meta.tag == f"{RAW}arXivRaw" else _arxiv_fields(meta)
            fields["update_date"] = record.findtext(f"{OAI}header/{OAI}datestamp")
            papers.append(oai_to_paper(fields, source))
        except (ValueError, TypeError, PaperscopeError) as err:
            papers.append(Rejected(location=identifier or "a record", reason=str(err)))
    return papers, deleted


# -- the harvest ------------------------------------------------------------------------------


def _params(harvest: Harvest, resume: str | None) -> dict[str, str]:
    wanted = {
        "metadataPrefix": harvest.metadata_prefix,
        "set": harvest.set_spec,
        "from": harvest.from_date or resume,
        "until": harvest.until,
    }
    return {key: value for key, value in wanted.items() if value}


OAI_ERRORS: tuple[type[Exception], ...] = tuple(
    cls for cls in vars(oaiexceptions).values() if isinstance(cls, type) and cls is not object
)
"""The OAI-PMH error codes as sickle raises them (plain Exception subclasses)."""


def _pages(client: _Client, params: dict[str, str]) -> Iterator[Any]:
    """The pages' root elements, one request each; refusals and failures as SyncError."""
    endpoint = client.endpoint
    try:
        for response in client.ListRecords(**params):
            yield response.xml
    except oaiexceptions.NoRecordsMatch:  # nothing new since "from": not an error
        return
    except OAI_ERRORS as err:
        reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise SyncError(f"{endpoint} refused the request ({reason})") from None
    except requests.HTTPError as err:
        raise SyncError(f"{endpoint} answered {err}") from None
    except requests.RequestException as err:
        raise SyncError(f"cannot reach {endpoint}: {err}") from None


def sync(store: Store, harvest: Harvest, progress: bool = True) -> SyncReport:
    """Harvest into ``store`` from where the last harvest of this endpoint and set ended (or
    ``harvest.from_date``), then record where the next one starts."""
    from tqdm import tqdm

    started = time.monotonic()
    set_key = harvest.set_spec or ""
    previous = store.sync_state(harvest.endpoint, set_key)
    params = _params(harvest, previous[0] if previous else None)
    source = urlsplit(harvest.endpoint).netloc or harvest.endpoint
    counts = IngestReport(file=harvest.endpoint, format="oai-pmh")
    report = SyncReport(
        endpoint=harvest.endpoint,
        set_spec=harvest.set_spec,
        metadata_prefix=harvest.metadata_prefix,
        from_date=params.get("from"),
        until=harvest.until,
    )
    client = _Client(harvest)
    shown = None if progress else True  # None: a bar on a terminal, none in a cron job's log
    with tqdm(desc=f"sync {source}", unit="rec", disable=shown) as bar:
        for root in _pages(client, params):
            papers, deleted = read_page(root, source)
            report.deleted += store.harvest_page(papers, deleted, counts)
            report.records += len(papers) + len(deleted)
            token = root.find(f"{OAI}ListRecords/{OAI}resumptionToken")
            if token is not None and token.get("completeListSize", "").isdigit():
                bar.total = int(token.get("completeListSize"))
            bar.update(len(papers) + len(deleted))
            if token is not None and token.text and harvest.delay:
                time.sleep(harvest.delay)  # politeness between the pages of one harvest
    report.new, report.updated, report.unchanged = counts.new, counts.updated, counts.unchanged
    report.rejected = counts.rejected
    report.pages, report.retries = client.pages, client.retried
    report.resume_from = _resume_from(client.response_date, harvest.until, previous)
    report.seconds = round(time.monotonic() - started, 2)
    synced_at = datetime.now(UTC).isoformat(timespec="seconds")
    log_json = json.dumps(report.model_dump(exclude={"rejected"}))
    store.save_sync(harvest.endpoint, set_key, report.resume_from, synced_at, log_json)
    return report


def _resume_from(response_date: str | None, until: str | None, previous: Any) -> str:
    """The next harvest's ``from``: the server's date of this one (its clock, not ours), or
    ``until`` when that is earlier; never earlier than the stored one (a backfill with
    ``--from``/``--until`` does not rewind it)."""
    server_day = (response_date or datetime.now(UTC).isoformat())[:10]
    day = min(server_day, until) if until else server_day
    return max(day, previous[0]) if previous else day


def summary(report: SyncReport) -> str:
    """The harvest log in one line, for the command and the server's log."""
    where = report.endpoint + (f" set {report.set_spec}" if report.set_spec else "")
    since = f" from {report.from_date}" if report.from_date else " (everything)"
    return (
        f"harvested {where}{since}: {report.records} records ({report.new} new, "
        f"{report.updated} updated, {report.unchanged} unchanged, {report.deleted} deleted, "
        f"{len(report.rejected)} rejected) in {report.pages} pages, {report.retries} retries, "
        f"{report.seconds:.1f} s; next sync from {report.resume_from}"
    )
