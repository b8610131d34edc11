"""A real OAI-PMH endpoint for the sync tests: recorded arXiv records served over HTTP.

:class:`Repository` holds the history of a small arXiv set (tests/fixtures/oai-pmh-arxiv.xml:
real snapshot records, a later version of one, the deletion of another), and answers
``ListRecords`` as arXiv does on the day ``today``: each record's latest state up to that day,
selected by ``from``/``until``, ``page_size`` records a page with a ``resumptionToken``, the OAI
error codes (``noRecordsMatch``, ``badArgument``, ``badResumptionToken``), and a 503 with
``Retry-After`` on the first request for each token in ``busy_tokens``. Every request is kept in
``requests`` so a test can check what a harvester asked for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

FIXTURES = Path(__file__).parent / "fixtures"
RECORDS = FIXTURES / "oai-pmh-arxiv.xml"
OAI_NS = "http://www.openarchives.org/OAI/2.0/"
OAI = f"{{{OAI_NS}}}"
SETS = ("cs",)


@dataclass
class Repository:
    """What the endpoint serves, and what it was asked."""

    today: str = "2024-01-09"
    page_size: int = 3
    busy_tokens: set[str] = field(default_factory=set)
    """Tokens whose first request is answered 503 with Retry-After: 1."""
    garbage: bool = False
    """Answer every request with a page that is not XML."""
    requests: list[dict[str, str]] = field(default_factory=list)
    history: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(identifier, datestamp, the <record> element) in the order recorded."""

    def __post_init__(self) -> None:
        ElementTree.register_namespace("", OAI_NS)
        for record in ElementTree.parse(RECORDS).getroot().iter(f"{OAI}record"):  # noqa: S314
            header = record.find(f"{OAI}header")
            assert header is not None
            identifier = header.findtext(f"{OAI}identifier") or ""
            stamp = header.findtext(f"{OAI}datestamp") or ""
            self.history.append((identifier, stamp, ElementTree.tostring(record)))

    def state(self) -> list[tuple[str, bytes]]:
        """Each record's latest state as of ``today``, by datestamp: (datestamp, record)."""
        latest: dict[str, tuple[str, bytes]] = {}
        for identifier, stamp, record in self.history:
            if stamp <= self.today:
                latest[identifier] = (stamp, record)
        return sorted(latest.values(), key=lambda item: item[0])

    def answer(self, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one request."""
        self.requests.append(params)
        token = params.get("resumptionToken")
        if token in self.busy_tokens:
            self.busy_tokens.discard(token)
            return 503, {"Retry-After": "1"}, b"busy: come back in a second"
        if self.garbage:
            return 200, {}, b"<html><body>Service maintenance</body>"
        if params.get("verb") != "ListRecords":
            return self._page(error=("badVerb", "only ListRecords here"))
        if token is not None:
            query, _, cursor = token.rpartition("|")
            if not cursor.isdigit():
                return self._page(error=("badResumptionToken", token))
            return self._records(dict(parse_qsl(query)), int(cursor))
        return self._records(params, 0)

    def _records(self, params: dict[str, str], cursor: int) -> tuple[int, dict[str, str], bytes]:
        if params.get("metadataPrefix") != "arXivRaw":
            return self._page(error=("cannotDisseminateFormat", "only arXivRaw here"))
        if params.get("set", "cs") not in SETS:
            return self._page(error=("badArgument", f"unknown set {params['set']}"))
        try:
            start = date.fromisoformat(params.get("from", "0001-01-01")).isoformat()
            end = date.fromisoformat(params.get("until", "9999-12-31")).isoformat()
        except ValueError:
            return self._page(error=("badArgument", "dates are YYYY-MM-DD"))
        chosen = [record for stamp, record in self.state() if start <= stamp <= end]
        if not chosen:
            return self._page(error=("noRecordsMatch", ""))
        page = chosen[cursor : cursor + self.page_size]
        rest = cursor + len(page)
        query = "&".join(f"{k}={v}" for k, v in params.items() if k != "verb")
        token = query + f"|{rest}" if rest < len(chosen) else ""
        resumption = (
            f'<resumptionToken cursor="{cursor}" completeListSize="{len(chosen)}">'
            f"{escape(token)}</resumptionToken>"
        )
        return self._page(b"".join(page) + resumption.encode())

    def _page(
        self, body: bytes = b"", error: tuple[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        inner = (
            f'<error code="{error[0]}">{error[1]}</error>'.encode()
            if error
            else b"<ListRecords>" + body + b"</ListRecords>"
        )
        document = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n'
            + f'<OAI-PMH xmlns="{OAI_NS}"><responseDate>{self.today}T12:00:00Z</responseDate>'
            f'<request verb="ListRecords">http://localhost/oai</request>'.encode()
            + inner
            + b"</OAI-PMH>"
        )
        return 200, {"Content-Type": "text/xml; charset=utf-8"}, document


class _Handler(BaseHTTPRequestHandler):
    repository: Repository

    def do_GET(self) -> None:
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        status, headers, body = self.repository.answer(params)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Endpoint:
    """A real HTTP server answering for ``repository`` on a free local port (a context)."""

    def __init__(self, repository: Repository) -> None:
        handler = type("Handler", (_Handler,), {"repository": repository})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oai"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Endpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
