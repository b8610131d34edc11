"""The map page on one build: payload bytes (raw, gzip) and time to first render in Chromium.

``paperscope bench map DATA_DIR SCREENSHOT.png [RUNS]`` starts ``paperscope serve`` on the build
in DATA_DIR (set PAPERSCOPE_BACKEND etc. as the build was made), fetches ``/api/v1/map`` three
times (the first builds the payload, the first gzip request compresses it once, the third is
served from the cache), then opens the page RUNS times in headless Chromium (Debian's
``/usr/bin/chromium``, software WebGL) and reports the page's own ``firstRenderMs``: navigation
start to points drawn, median, min and max. The first run's screenshot is saved.
"""

from __future__ import annotations

import gzip
import json
import statistics
import time
from pathlib import Path

from service.bench.common import fetch, free_port, server, wait_ready

CHROMIUM = Path("/usr/bin/chromium")


def measure(data_dir: Path, screenshot: Path, runs: int, browser: Path = CHROMIUM) -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with server(data_dir, port):
        if not wait_ready(base, 60):
            raise RuntimeError(f"the server on {data_dir} was not ready after 60 s")
        start = time.perf_counter()
        raw = fetch(f"{base}/api/v1/map")
        first_fetch = time.perf_counter() - start
        gzipped = {"Accept-Encoding": "gzip"}
        start = time.perf_counter()
        zipped = fetch(f"{base}/api/v1/map", headers=gzipped)
        compress_fetch = time.perf_counter() - start
        start = time.perf_counter()
        fetch(f"{base}/api/v1/map", headers=gzipped)
        warm_fetch = time.perf_counter() - start
        if gzip.decompress(zipped) != raw:
            raise RuntimeError("the gzip payload differs from the plain one")
        renders: list[float] = []
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(browser),
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ],
            )
            for run in range(runs):
                page = chromium.new_page(viewport={"width": 1400, "height": 800})
                page.goto(f"{base}/", wait_until="commit")
                page.wait_for_function(
                    "window.paperscope && window.paperscope.ready", timeout=120_000
                )
                renders.append(float(page.evaluate("window.paperscope.state.firstRenderMs")))
                if run == 0:
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(screenshot))
                page.close()
            chromium.close()
    papers = len(json.loads(raw)["ids"])
    print(f"build in {data_dir}: {papers} papers")
    print(f"map payload: {len(raw) / 1e6:.2f} MB raw, {len(zipped) / 1e6:.2f} MB gzip")
    print(
        f"GET /api/v1/map: first {first_fetch * 1000:.0f} ms (builds the payload), "
        f"first gzip {compress_fetch * 1000:.0f} ms (compresses once), "
        f"then {warm_fetch * 1000:.0f} ms (cached)"
    )
    median, low, high = statistics.median(renders), min(renders), max(renders)
    print(
        f"first render (navigation start -> points drawn), {runs} runs: "
        f"median {median:.0f} ms, min {low:.0f}, max {high:.0f}"
    )
    print(f"screenshot: {screenshot}")
