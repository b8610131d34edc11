"""The answers of a server to a fixed set of read requests, for checking that a change of code
(a restructure) changes no answer.

``paperscope bench answers URL OUT.json`` asks a running server (any version with the same API)
the same requests: text search in each mode, topic search, like-this and a paper for papers
picked from the map (seeded), recommend, topics at both levels, each topic, its timeline, the
map, duplicates and a CSV export. It writes ``{request: answer}``; error answers are kept
without their request id. Record two servers over one data folder and compare the files.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from service.bench.common import fetch

QUERIES = ("diffusion distillation", "reward hacking", "speech recognition", "graph neural nets")
PAPERS = 10


def _get(base: str, path: str) -> Any:
    try:
        body = fetch(base + path, timeout=60)
    except urllib.error.HTTPError as err:  # an error answer is an answer too
        body = err.read()
    try:
        answer = json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        answer["error"].pop("request_id", None)
    return answer


def requests(base: str) -> list[str]:
    """The paths asked: fixed queries, and papers and topics picked from the served build."""
    ids = [str(i) for i in _get(base, "/api/v1/map")["ids"]]
    picked = random.Random(0).sample(ids, min(PAPERS, len(ids)))
    topics = [int(t["id"]) for t in _get(base, "/api/v1/topics")]
    paths = ["/api/v1/topics", "/api/v1/topics?level=coarse", "/api/v1/map", "/api/v1/duplicates"]
    for query in QUERIES:
        q = urllib.parse.quote(query)
        paths += [f"/api/v1/search?q={q}&mode={mode}" for mode in ("dense", "lexical", "hybrid")]
        paths.append(f"/api/v1/topics/search?q={q}")
    for pid in picked:
        quoted = urllib.parse.quote(pid, safe="")
        paths += [f"/api/v1/papers/{quoted}", f"/api/v1/papers/{quoted}/similar?k=10"]
    for topic in topics:
        paths += [f"/api/v1/topics/{topic}", f"/api/v1/topics/{topic}/timeline"]
    paths.append("/api/v1/export/papers?format=csv")
    paths.append("/api/v1/papers/no-such-paper")
    return paths


def record(base: str) -> dict[str, Any]:
    """Every request of :func:`requests` with its answer, plus recommend (a POST)."""
    answers = {path: _get(base, path) for path in requests(base)}
    ids = [str(i) for i in _get(base, "/api/v1/map")["ids"]][:2]
    body = {"positive": [{"id": ids[0]}, {"text": QUERIES[0]}], "negative": [{"id": ids[1]}]}
    request = urllib.request.Request(
        base + "/api/v1/recommend",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answers["POST /api/v1/recommend"] = json.loads(response.read())
    return answers


def write(base: str, out: Path) -> int:
    """Record and write the answers; returns how many requests were asked."""
    answers = record(base.rstrip("/"))
    out.write_text(json.dumps(answers, indent=1, ensure_ascii=False, sort_keys=True), "utf-8")
    return len(answers)
