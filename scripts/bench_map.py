"""Measure the map page on one build: payload bytes (raw, gzip) and first-render time."""

from __future__ import annotations

import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright


def main() -> None:
    data_dir, screenshot = Path(sys.argv[1]), Path(sys.argv[2])
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PAPERSCOPE_DATA_DIR": str(data_dir)}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "paperscope"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/v1/ready", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        start = time.perf_counter()
        raw = urllib.request.urlopen(f"{base}/api/v1/map", timeout=60).read()
        first_fetch = time.perf_counter() - start
        request = urllib.request.Request(f"{base}/api/v1/map", headers={"Accept-Encoding": "gzip"})
        start = time.perf_counter()
        zipped = urllib.request.urlopen(request, timeout=60).read()
        compress_fetch = time.perf_counter() - start
        start = time.perf_counter()
        urllib.request.urlopen(request, timeout=60).read()
        warm_fetch = time.perf_counter() - start
        assert gzip.decompress(zipped) == raw
        renders = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ],
            )
            for run in range(runs):
                page = browser.new_page(viewport={"width": 1400, "height": 800})
                page.goto(f"{base}/", wait_until="commit")
                page.wait_for_function(
                    "window.paperscope && window.paperscope.ready", timeout=120_000
                )
                renders.append(page.evaluate("window.paperscope.state.firstRenderMs"))
                if run == 0:
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(screenshot))
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
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


if __name__ == "__main__":
    main()
