"""Load tests with wrk against a local server.

``paperscope bench load-test [DATA_DIR] [SECONDS] [--swap]`` serves the build in DATA_DIR
(default paperscope-data) on a free port (server log: /tmp/paperscope-load-server.log) and runs
``wrk`` (an external program: ``apt-get install wrk``) for SECONDS (default 60) with requests
from a Lua script: like-this for random papers among 5,000 (LOAD_IDS) of the build, text search
for distinct queries made from the build's titles (:func:`title_queries`: a server keeps recent
query vectors, so a few fixed queries would time its memory, not its model), or both
alternating (LOAD_MIX), over 64 connections (LOAD_CONNECTIONS);
the mixes ``topics`` (topic search) and ``recommend`` (POST, an id seed and a text seed) ask one
route each.

Each connection's first request waits :data:`WARM_UP_MS` (not counted), so the load starts with
every connection open. It prints wrk's summary: ``requests R in S s: X req/s``, ``latency pP V ms``
for P = 50, 90, 99, 99.9, and ``errors E (non-2xx N, timeouts T)``, then ``OK``. It exits 1 on any
error or non-2xx response. With ``--swap``, a third of the way in a new build is published
(``paperscope build --force``, log /tmp/paperscope-load-build.log) and the server must switch to it
with no failed request. PAPERSCOPE_WORKERS sets the server's processes.

``paperscope bench load-table [DATA_DIR] [SECONDS] [--filter Q] [--workers N]`` runs each of
the four routes alone at 1, 16 and 64 connections against one server (N processes), then
like-this, search and recommend with the filter Q (``categories=cs.LG``), and prints the
machine and a markdown table (:func:`route_table`).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote

from service.artifacts import read_pointer
from service.bench.common import (
    child_env,
    fetch,
    free_port,
    paperscope_command,
    server,
    wait_ready,
)
from service.config import BUILDS

MIXES = ("both", "similar", "search", "topics", "recommend")
ROUTES = {
    "search": "/api/v1/search",
    "topics": "/api/v1/topics/search",
    "similar": "/api/v1/papers/{id}/similar",
    "recommend": "/api/v1/recommend",
}
"""The mixes that ask one route each, for :func:`route_table`."""
FILTERED = ("similar", "search", "recommend")
"""The routes :func:`route_table` also runs with ``--filter``."""
TABLE_CONNECTIONS = (1, 16, 64)
WARM_UP_MS = 2000
"""How long each connection's first request waits, so that the load starts once every
connection is open. wrk opens its connections at once and times each first request from when
it is written; connections the server accepts while the first ones already load it wait up to
seconds for their first answer, and wrk's correction for coordinated omission multiplies those
samples: at 64 connections that start-up alone put like-this's p99 at 0.1-1 s on a server
whose steady-state p99 was 22 ms (docs/benchmarks.md). The warm-up is not counted in req/s."""
SERVER_LOG = Path("/tmp/paperscope-load-server.log")  # noqa: S108 (a known place to look)
BUILD_LOG = Path("/tmp/paperscope-load-build.log")  # noqa: S108
QUERIES_KEPT = 20_000
"""Distinct queries at most in a script (the wrk threads take them in turn, in order)."""
REQUESTS_LUA = """
counter = 0
thread_index = 0
threads_started = 0
setup = function(thread)
  thread:set("thread_index", threads_started)
  threads_started = threads_started + 1
end
request = function()
  counter = counter + 1
  -- the threads take turns along the list from first_query: no query repeats within a run,
  -- nor in a later run that starts where this one ended, before the list is used up
  local query = queries[(first_query + (counter - 1) * threads + thread_index) % #queries + 1]
  if mix == "similar" or (mix == "both" and counter % 2 == 0) then
    return wrk.format("GET", "/api/v1/papers/" .. ids[math.random(#ids)] .. "/similar?k=10"
                      .. filter_query)
  elseif mix == "topics" then
    return wrk.format("GET", "/api/v1/topics/search?k=10&q=" .. query)
  elseif mix == "recommend" then
    local body = '{"positive": [{"id": ' .. ids_json[math.random(#ids_json)] ..
                 '}, {"text": "' .. query:gsub("%%20", " ") .. '"}], "limit": 10' ..
                 filter_json .. '}'
    return wrk.format("POST", "/api/v1/recommend", {["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("GET", "/api/v1/search?k=10&q=" .. query .. filter_query)
end
started = 0
delay = function()
  -- each connection's first request waits until every connection is open (see WARM_UP_MS)
  if started < opened_per_thread then
    started = started + 1
    return warm_up_ms
  end
  return 0
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
               + summary.errors.status + summary.errors.timeout
  local seconds = summary.duration / 1e6 - warm_up_ms / 1000
  io.write(string.format("requests %d in %.1f s: %.0f req/s\\n", summary.requests, seconds,
           summary.requests / seconds))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("latency p%s %.1f ms\\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("errors %d (non-2xx %d, timeouts %d)\\n", errors, summary.errors.status,
           summary.errors.timeout))
end
"""


class LoadTestFailed(Exception):
    """Errors under load, or the server did not switch to a build published during the run."""


@dataclass(frozen=True)
class LoadSummary:
    rate: float
    """Requests per second."""
    requests: int
    latency_ms: dict[str, float]
    """Percentile ("50", "90", "99", "99.9") -> milliseconds."""
    errors: int
    output: str
    """wrk's own output, the summary at its end."""


def lua_script(
    ids: list[str],
    mix: str,
    filter_query: str = "",
    opened_per_thread: int = 1,
    queries: Sequence[str] = ("graph neural networks",),
    threads: int = 1,
    first_query: int = 0,
) -> str:
    """The wrk script: the paper ids asked about, the queries (plain text; the ``threads`` wrk
    threads take them in turn from ``first_query``), the mix, the filter (query parameters such as
    ``categories=cs.LG&since=2025-06-01``; empty: none), each wrk thread's connections (held
    back for :data:`WARM_UP_MS` before their first request), then the requests."""
    lines = ["ids = {", *(f"  {json.dumps(pid, ensure_ascii=False)}," for pid in ids), "}"]
    # the same ids as JSON string literals, for request bodies
    quoted = (json.dumps(json.dumps(pid)) for pid in ids)
    lines += ["ids_json = {", *(f"  {q}," for q in quoted), "}"]
    encoded = (json.dumps(quote(q, safe="")) for q in queries)
    lines += ["queries = {", *(f"  {q}," for q in encoded), "}"]
    lines.append(f"threads = {threads}")
    lines.append(f"first_query = {first_query}")
    lines.append(f"mix = {json.dumps(mix)}")
    lines.append(f"filter_query = {json.dumps('&' + filter_query if filter_query else '')}")
    lines.append(f"filter_json = {json.dumps(filter_body(filter_query))}")
    lines.append(f"opened_per_thread = {opened_per_thread}")
    lines.append(f"warm_up_ms = {WARM_UP_MS}")
    return "\n".join(lines) + REQUESTS_LUA


def title_queries(titles: Sequence[str], limit: int = QUERIES_KEPT) -> list[str]:
    """Distinct searches made from paper titles: every run of two and of three words (letters
    and digits only, lower case), shuffled (seeded), at most ``limit``. 115 titles give about
    1,800; 75k give ``limit``."""
    found: dict[str, None] = {}
    for title in titles:
        words = re.findall(r"[a-z0-9]+", title.lower())
        for size in (2, 3):
            for start in range(len(words) - size + 1):
                found[" ".join(words[start : start + size])] = None
    queries = list(found)
    random.Random(0).shuffle(queries)
    return queries[:limit] or ["graph neural networks"]


def filter_body(filter_query: str) -> str:
    """The filter's fields for a JSON request body, each after a comma (empty: no filter)."""
    fields: dict[str, list[str] | list[int] | str] = {}
    for name, value in parse_qsl(filter_query):
        if name in ("categories", "topics"):
            values = fields.setdefault(name, [])
            assert isinstance(values, list)
            values.append(int(value) if name == "topics" else value)  # type: ignore[arg-type]
        else:
            fields[name] = value
    return "".join(f", {json.dumps(k)}: {json.dumps(v)}" for k, v in fields.items())


def parse_summary(output: str) -> LoadSummary:
    """The figures of the ``done`` function's lines in wrk's output."""
    rate = re.search(r"requests (\d+) in [\d.]+ s: ([\d.]+) req/s", output)
    errors = re.search(r"^errors (\d+)", output, re.MULTILINE)
    if rate is None or errors is None:
        raise LoadTestFailed(f"no summary in wrk's output:\n{output}")
    latency = {p: float(v) for p, v in re.findall(r"latency p([\d.]+) ([\d.]+) ms", output)}
    return LoadSummary(float(rate[2]), int(rate[1]), latency, int(errors[1]), output)


def _build_id(base: str) -> str:
    return str(json.loads(fetch(f"{base}/api/v1/ready", timeout=10))["build_id"])


@dataclass
class Served:
    """A server started for load, and the papers to ask about."""

    base: str
    ids: list[str]
    queries: list[str]
    """Distinct query texts (:func:`title_queries`)."""
    asked: int = 0
    """Queries asked by the runs so far: the next run starts after them (the server keeps
    recent query vectors, and an earlier run's queries would find theirs)."""


@contextlib.contextmanager
def served(
    data_dir: Path, extra_env: Mapping[str, str] | None = None, n_ids: int = 5000
) -> Iterator[Served]:
    """``paperscope serve`` on a free port (log: :data:`SERVER_LOG`) once it is ready, with up
    to ``n_ids`` of its papers picked at random (seeded) for like-this and recommend."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"PAPERSCOPE_RELOAD_SECONDS": "1", **(extra_env or {})}
    with SERVER_LOG.open("wb") as log, server(data_dir, port, env, log):
        if not wait_ready(base, 120):
            raise LoadTestFailed(f"the server was not ready after 120 s; see {SERVER_LOG}")
        points = json.loads(fetch(f"{base}/api/v1/map"))
        all_ids = [str(i) for i in points["ids"]]
        picked = random.Random(0).sample(all_ids, min(len(all_ids), n_ids))
        yield Served(base, picked, title_queries(points["title"]))


def run_wrk(
    target: Served, mix: str, connections: int, seconds: int, filter_query: str = ""
) -> LoadSummary:
    """wrk against a served build: ``connections`` connections for ``seconds`` seconds."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise FileNotFoundError("wrk is missing: apt-get install wrk")
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {', '.join(MIXES)}, got {mix!r}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", encoding="utf-8") as lua:
        threads = min(connections, 2)
        opened = -(-connections // threads)
        lua.write(
            lua_script(target.ids, mix, filter_query, opened, target.queries, threads, target.asked)
        )
        lua.flush()
        duration = seconds + WARM_UP_MS // 1000
        command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s"]
        command += ["--timeout", "10s", "-s", lua.name, f"{target.base}/"]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
    summary = parse_summary(done.stdout.rstrip("\n"))
    target.asked += summary.requests
    return summary


def measure(
    data_dir: Path,
    seconds: int,
    swap: bool = False,
    mix: str = "both",
    connections: int = 64,
    n_ids: int = 5000,
    extra_env: Mapping[str, str] | None = None,
    echo: bool = True,
) -> LoadSummary:
    """Run the load; raises :class:`LoadTestFailed` on errors or a missed switch."""
    env = {"PAPERSCOPE_RELOAD_SECONDS": "1", **(extra_env or {})}
    with served(data_dir, env, n_ids) as target:
        before = _build_id(target.base)
        builder: threading.Thread | None = None
        if swap:
            builder = threading.Thread(target=_publish_later, args=(data_dir, seconds // 3, env))
            builder.start()
        summary = run_wrk(target, mix, connections, seconds)
        if echo:
            print(summary.output, flush=True)
        if builder is not None:
            builder.join()
            time.sleep(2)
            after = _build_id(target.base)
            published = read_pointer(data_dir / BUILDS)
            if echo:
                print(
                    f"build before {before}, published during the run {published}, "
                    f"served after {after}"
                )
            if after != published or after == before:
                raise LoadTestFailed("the server did not switch")
    if summary.errors:
        raise LoadTestFailed("errors under load")
    if echo:
        print("OK")
    return summary


def machine() -> str:
    """The CPU model, its logical cores and memory, for the table's heading."""
    model = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        names = re.findall(r"^model name\s*:\s*(.+)$", info.read_text(), re.MULTILINE)
        model = names[0] if names else model
    memory = Path("/proc/meminfo")
    total = re.search(r"MemTotal:\s+(\d+)", memory.read_text()) if memory.exists() else None
    gib = f", {int(total[1]) / 1024**2:.0f} GiB" if total else ""
    return f"{model}, {os.cpu_count()} logical cores{gib}"


def route_table(
    data_dir: Path,
    seconds: int,
    connections: Sequence[int] = TABLE_CONNECTIONS,
    extra_env: Mapping[str, str] | None = None,
    echo: Callable[[str], None] = print,
    filter_query: str = "",
) -> dict[tuple[str, int], LoadSummary]:
    """Each route of :data:`ROUTES` alone at each number of connections, against one server,
    then (given ``filter_query``) the routes of :data:`FILTERED` with that filter; echoes a
    markdown table row by row. Raises :class:`LoadTestFailed` after the table when any run
    had an error."""
    results: dict[tuple[str, int], LoadSummary] = {}
    workers = (extra_env or {}).get("PAPERSCOPE_WORKERS", os.environ.get("PAPERSCOPE_WORKERS", "1"))
    echo(f"machine: {machine()}; server workers: {workers}; wrk on the same machine")
    echo("")
    echo("| route | filter | connections | req/s | p50 ms | p99 ms | errors |")
    echo("|---|---|---:|---:|---:|---:|---:|")
    runs = [(mix, "") for mix in ROUTES]
    runs += [(mix, filter_query) for mix in FILTERED if filter_query]
    with served(data_dir, extra_env) as target:
        for mix, chosen in runs:
            for n in connections:
                got = results[mix + ("?" + chosen if chosen else ""), n] = run_wrk(
                    target, mix, n, seconds, chosen
                )
                echo(
                    f"| `{ROUTES[mix]}` | {chosen or '-'} | {n} | {got.rate:,.0f} | "
                    f"{got.latency_ms['50']:.1f} | {got.latency_ms['99']:.1f} | {got.errors} |"
                )
    failed = [f"{mix} at {n}" for (mix, n), got in results.items() if got.errors]
    if failed:
        raise LoadTestFailed(f"errors under load: {', '.join(failed)}; see {SERVER_LOG}")
    return results


def _publish_later(data_dir: Path, delay: int, env: Mapping[str, str]) -> None:
    time.sleep(delay)
    with BUILD_LOG.open("wb") as log:
        subprocess.run(
            [*paperscope_command(), "build", "--force"],
            env=child_env({"PAPERSCOPE_DATA_DIR": str(data_dir), **env}),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
