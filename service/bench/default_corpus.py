"""Regenerate the bundled default corpus (service/data/trending-papers.jsonl) from the seed page.

Not a measurement: it lives with the benchmarks because the embedding and map benchmarks run
on this corpus. ``paperscope bench make-default-corpus [PAGE]`` reads a papers-page text file
(default ../shared/seeds/trending-papers.txt beside the checkout), keeps every paper it parses
and writes one JSON line each (id, title, abstract, date) to --out (default: the bundled corpus in
this package), then prints how many it wrote.

The date is the day the page listed the papers: its header shows one date, "Mar 14", above
every paper, and no year. The year is :data:`LISTED_YEAR`, derived from the page's own text:
the latest date any abstract mentions is July 2024 (a study of posts "from January to July
2024"), so the listing is the first 14 March after it, 2025. Every paper gets that one day
(docs/quality.md says so): the page shows no per-paper date.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from service.bench.common import SHARED
from service.ingest import BUNDLED_CORPUS
from service.ingest.pagetext import read_papers_page
from service.schemas import Paper

SEED_PAGE = SHARED / "seeds" / "trending-papers.txt"
LISTED_YEAR = 2025
"""The year of the page's "Mar 14" (the page shows none): see the module's docstring."""
_DAY = re.compile(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{1,2})")


def listing_day(text: str, year: int = LISTED_YEAR) -> str | None:
    """The first header line that is a day ("Mar 14") as YYYY-MM-DD in ``year``; None if none."""
    for line in text.splitlines():
        if _DAY.fullmatch(line.strip()):
            return datetime.strptime(f"{line.strip()} {year}", "%b %d %Y").date().isoformat()
    return None


def write_corpus(page: Path, out: Path = BUNDLED_CORPUS) -> int:
    """Papers written."""
    papers = [r for r in read_papers_page(page) if isinstance(r, Paper)]
    day = listing_day(page.read_text(encoding="utf-8"))
    with out.open("w", encoding="utf-8") as handle:
        for paper in papers:
            record = {"id": paper.id, "title": paper.title, "abstract": paper.abstract, "date": day}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(papers)} papers to {out}")
    return len(papers)
