"""The map page in a real browser: Debian's Chromium driven by Playwright, against a real server.

`.ci/run` installs Chromium (`apt-get install chromium`); Playwright's own browser download is not
used. Screenshots are decoded with Pillow to check that points are really drawn.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image
from playwright.sync_api import ConsoleMessage, Page, sync_playwright

from service.api.app import create_app
from service.artifacts import current_build_dir
from service.config import Settings
from service.embed.backends import Embedder
from service.query.engine import Engine
from service.query.export_map import export_map
from service.query.live import LiveAdditions
from service.schemas import Paper
from tests.helpers import free_port, make_settings, run

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
NOISE_RGB = (0xC3, 0xC8, 0xD1)

pytestmark = pytest.mark.slow  # a real Chromium


KEY = "map-page-key"
GEOLOGY = {
    "id": "live-geology",
    "title": "Bedload transport in braided Himalayan rivers",
    "abstract": (
        "We measure bedload sediment flux in braided river channels draining the Himalayan "
        "front with repeat lidar surveys and seismic monitoring; discharge thresholds control "
        "how often channels avulse."
    ),
}
"""A paper about rivers: nothing in the bundled corpus is near it, so it fits no topic."""


@contextmanager
def serving(settings: Settings, embedder: Embedder) -> Iterator[str]:
    """A real server (uvicorn in a thread) on a free port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(settings, embedder), port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not instance.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(built_dir: Path, embedder: Embedder) -> Iterator[str]:
    with serving(make_settings(built_dir), embedder) as url:
        yield url


@pytest.fixture(scope="module")
def dated_server(
    built_dir: Path, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server with an API key on its own copy of the build (one per module, as ``built_copy``
    is per test), where every paper was re-posted through the API with a date (2024-01-01 on,
    5 days apart) and :data:`GEOLOGY` was added."""
    data_dir = tmp_path_factory.mktemp("map-dated")
    shutil.copytree(built_dir, data_dir, dirs_exist_ok=True, symlinks=True)
    with serving(make_settings(data_dir, api_key=KEY), embedder) as url:
        with httpx.Client(base_url=url + "api/v1", headers={"X-API-Key": KEY}, timeout=300) as api:
            papers = []
            for row, paper_id in enumerate(api.get("/map").json()["ids"]):
                paper = api.get(f"/papers/{paper_id}").json()
                day = (date(2024, 1, 1) + timedelta(days=5 * row)).isoformat()
                fields = {k: paper[k] for k in ("id", "title", "abstract", "categories")}
                papers.append({**fields, "date": day})
            for batch in (papers, [GEOLOGY]):
                posted = api.post("/papers", json={"papers": batch})
                assert posted.status_code == 200, posted.text
        yield url


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), "install Debian's chromium (apt-get install chromium)"
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield instance
    instance.close()


CSP_WATCH = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""
"""Collects the page's Content-Security-Policy violations (Chromium also logs each as an error)."""


class MapPage:
    """A loaded map page plus the console errors it logged."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda err: self.errors.append(str(err)))
        page.add_init_script(CSP_WATCH)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, url: str) -> MapPage:
        self.page.goto("about:blank")  # a new document even when only the #fragment differs
        self.page.goto(url, wait_until="load")
        self.page.wait_for_function("window.paperscope && window.paperscope.ready", timeout=60_000)
        assert self.page.evaluate("window.paperscope.error || null") is None
        self.page.wait_for_timeout(300)
        return self

    def data(self, field: str) -> Any:
        return self.page.evaluate(f"window.paperscope.state.data.{field}")

    def point_xy(self, row: int) -> tuple[float, float]:
        """Page coordinates of a point, from the plot's own projection."""
        x, y = self.page.evaluate(f"window.paperscope.scatterplot.getScreenPosition({row})")
        box = self.page.locator("#map").bounding_box()
        assert box is not None
        return box["x"] + x, box["y"] + y

    def uncovered(self, row: int) -> bool:
        """Whether the map's canvas is the topmost thing at a point's position."""
        x, y = self.point_xy(row)
        return bool(
            self.page.evaluate(
                "([x, y]) => document.elementFromPoint(x, y)?.tagName === 'CANVAS'", [x, y]
            )
        )

    def clear_row(self, start: int = 0) -> int:
        """The first row from ``start`` whose point no name covers and no other point is near
        (within :data:`CLEAR_PX`): hovering or clicking there reaches that paper whatever the
        layout (a build's layout moves with the backend ``auto`` picks)."""
        screen: list[tuple[float, float]] = self.page.evaluate(
            "window.paperscope.state.data.ids.map((_, i) => "
            "window.paperscope.scatterplot.getScreenPosition(i))"
        )
        n = len(screen)
        for row in [*range(start, n), *range(start)]:
            x, y = screen[row]
            near = any(
                (x - a) ** 2 + (y - b) ** 2 < CLEAR_PX**2
                for other, (a, b) in enumerate(screen)
                if other != row
            )
            if not near and self.uncovered(row):
                return int(row)
        raise AssertionError("every point is covered or crowded")

    def map_colours(self) -> dict[tuple[int, int, int], int]:
        # Hide the text layers: anti-aliased text has greys like the unclustered points' colour.
        toggle = (
            "for (const id of ['labels', 'hint', 'legend', 'no-webgl']) "
            "(document.getElementById(id) || {style: {}}).style.visibility"
        )
        self.page.evaluate(f"{toggle} = 'hidden'")
        png = self.page.locator("#map").screenshot()
        self.page.evaluate(f"{toggle} = 'visible'")
        image = Image.open(io.BytesIO(png)).convert("RGB")
        counts: dict[tuple[int, int, int], int] = {}
        for count, rgb in image.getcolors(maxcolors=1 << 20) or []:
            assert isinstance(rgb, tuple)
            counts[(rgb[0], rgb[1], rgb[2])] = count
        return counts


@contextmanager
def opened(browser: Any, url: str) -> Iterator[MapPage]:
    """The page at ``url`` in a fresh browser context; no console errors by the end."""
    context = browser.new_context(viewport={"width": 1400, "height": 800}, accept_downloads=True)
    page = MapPage(context.new_page())
    yield page.open(url)
    assert not page.errors, page.errors
    assert page.page.evaluate("window.cspViolations") == []
    context.close()


@pytest.fixture
def map_page(browser: Any, server: str) -> Iterator[MapPage]:
    with opened(browser, server) as page:
        yield page


@pytest.fixture
def dated_page(browser: Any, dated_server: str) -> Iterator[MapPage]:
    with opened(browser, dated_server) as page:
        yield page


@pytest.fixture
def dated_api(dated_server: str) -> Iterator[httpx.Client]:
    """The dated server's API, without the key."""
    with httpx.Client(base_url=dated_server + "api/v1", timeout=60) as client:
        yield client


CLEAR_PX = 10
"""No other point within this many pixels of one hovered or clicked."""
BACKGROUND = (251, 251, 253)
OPACITY = 0.9  # the page draws points of small corpora at this opacity over the background


def _palette_pixels(colours: dict[tuple[int, int, int], int], rgb: tuple[int, int, int]) -> int:
    """Pixels showing a point of colour ``rgb`` (blended over the background)."""
    shown = [OPACITY * c + (1 - OPACITY) * b for c, b in zip(rgb, BACKGROUND, strict=True)]
    return sum(
        n
        for colour, n in colours.items()
        if max(abs(a - b) for a, b in zip(colour, shown, strict=True)) < 10
    )


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_page_loads_and_draws_points(map_page: MapPage) -> None:
    assert map_page.page.locator("#meta").inner_text().startswith("115 papers")
    colours = map_page.map_colours()
    topic0 = _hex(map_page.page.evaluate("colour(0)"))
    assert _palette_pixels(colours, topic0) > 50  # topic 0's points are on the canvas
    assert _palette_pixels(colours, NOISE_RGB) > 20  # and the unclustered ones, in grey
    assert map_page.page.evaluate("window.paperscope.state.placedLabels") >= 5
    assert map_page.page.locator("#topic-list .topic").count() == len(map_page.data("topics"))


def test_hover_shows_the_right_paper(map_page: MapPage) -> None:
    row = map_page.clear_row(17)
    map_page.page.mouse.move(*map_page.point_xy(row))
    card = map_page.page.locator("#card")
    card.wait_for(state="visible", timeout=5_000)
    assert map_page.data(f"title[{row}]") in card.inner_text()


def test_click_opens_paper_and_like_this_moves_to_it(map_page: MapPage) -> None:
    row = map_page.clear_row(42)
    map_page.page.mouse.click(*map_page.point_xy(row))
    title = map_page.page.locator("#paper-title")
    title.wait_for(timeout=10_000)
    assert title.inner_text() == map_page.data(f"title[{row}]")
    similar = map_page.page.locator("#similar .hit")
    assert similar.count() == 8
    target_id = similar.first.get_attribute("data-id")
    similar.first.click()
    map_page.page.wait_for_function(f"window.paperscope.state.paper === {target_id!r}")
    assert f"paper={target_id}" in map_page.page.url
    map_page.page.wait_for_timeout(800)  # the zoom transition
    assert map_page.page.evaluate("window.paperscope.scatterplot.get('selectedPoints')") == [
        map_page.page.evaluate(f"window.paperscope.state.rowOf.get({target_id!r})")
    ]


def test_search_highlights_and_lists_results(map_page: MapPage) -> None:
    map_page.page.fill("#q", "knowledge distillation from a teacher to a student")
    map_page.page.press("#q", "Enter")
    map_page.page.locator("#results .hit").first.wait_for(timeout=10_000)
    hits = map_page.page.evaluate("window.paperscope.state.hits")
    assert len(hits) == 50
    assert "distill" in hits[0]["title"].lower()
    selected = map_page.page.evaluate("window.paperscope.scatterplot.get('selectedPoints')")
    assert len(selected) == 50
    assert map_page.page.locator("#query-marker").is_visible()
    assert "q=knowledge" in map_page.page.url


def test_topic_filter_hides_other_topics(map_page: MapPage) -> None:
    before = map_page.map_colours()
    # another topic's colour, one topic 0 does not share (topics far apart may share a colour)
    chosen = _hex(map_page.page.evaluate("colour(0)"))
    others = [_hex(map_page.page.evaluate(f"colour({t['id']})")) for t in map_page.data("topics")]
    topic1 = next(c for c in others if c != chosen and _palette_pixels(before, c) > 50)
    map_page.page.locator('[data-topic="0"]').click()
    map_page.page.wait_for_timeout(300)
    size = next(t["size"] for t in map_page.data("topics") if t["id"] == 0)
    assert map_page.page.evaluate("window.paperscope.state.visible.size") == size
    after = map_page.map_colours()
    assert _palette_pixels(after, topic1) == 0
    assert _palette_pixels(after, NOISE_RGB) == 0
    assert "topic=0" in map_page.page.url


def test_url_state_is_restored(map_page: MapPage, server: str) -> None:
    paper_id = map_page.data("ids[5]")
    map_page.open(f"{server}#topic=2&q=diffusion&paper={paper_id}")
    state = map_page.page.evaluate(
        "({topic: paperscope.state.topic, q: paperscope.state.q, paper: paperscope.state.paper})"
    )
    assert state == {"topic": 2, "q": "diffusion", "paper": paper_id}
    assert map_page.page.locator("#paper-title").inner_text() == map_page.data("title[5]")


def test_selection_exports_csv(map_page: MapPage) -> None:
    """The lasso's CSV: formula-like titles (OWASP CSV injection) get a leading ', numbers (map
    positions, negative ones too) stay numbers."""
    hostile = ['=HYPERLINK("http://evil.example","x")', "-2+3", "@SUM(1)", "+cmd|' /C calc'!A0"]
    for i, title in enumerate(hostile, 1):
        map_page.page.evaluate(f"paperscope.state.data.title[{i}] = {json.dumps(title)}")
    map_page.page.evaluate("window.paperscope.scatterplot.select([1, 2, 3, 4])")
    map_page.page.locator("#export-csv").wait_for()
    with map_page.page.expect_download() as download:
        map_page.page.locator("#export-csv").click()
    text = Path(download.value.path()).read_text()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["id", "title", "date", "topic", "category", "x", "y"]
    assert len(rows) == 5
    assert rows[1][0] == map_page.data("ids[1]")
    assert [r[1] for r in rows[1:]] == ["'" + t for t in hostile]
    for i, row in enumerate(rows[1:], 1):
        assert float(row[5]) == pytest.approx(map_page.data(f"x[{i}]"))
        assert float(row[6]) == pytest.approx(map_page.data(f"y[{i}]"))


def test_exported_map_works_offline(browser: Any, built_dir: Path, tmp_path: Path) -> None:
    build = current_build_dir(built_dir / "builds")
    assert build is not None
    target = tmp_path / "map.html"
    engine = Engine(build, None)
    export_map(engine, target, neighbours=5)
    engine.close()
    context = browser.new_context(viewport={"width": 1200, "height": 700}, offline=True)
    page = MapPage(context.new_page()).open(target.as_uri())
    assert page.page.locator("#meta").inner_text().startswith("115 papers")
    assert _palette_pixels(page.map_colours(), _hex(page.page.evaluate("colour(0)"))) > 50
    # a point no topic name is drawn over (a click on a name is not a click on the point)
    row = page.clear_row()
    page.page.mouse.click(*page.point_xy(row))
    page.page.locator("#similar .hit").first.wait_for(timeout=5_000)
    assert page.page.locator("#similar .hit").count() == 5
    assert page.page.locator("p.abstract").inner_text()
    assert not page.page.locator("#views").is_visible()  # the views need the server
    assert page.page.locator("#collection-name").count() == 0
    page.page.locator('#topic-list [data-topic="0"]').click()  # its timeline from the file
    page.page.locator("#timeline-chart rect.bar").first.wait_for(timeout=5_000)
    assert page.page.locator("#thumbs, .thumbs").count() == 0  # no thumbs without a server
    assert not page.errors, page.errors
    context.close()


def test_exported_map_opens_a_paper_added_live(
    browser: Any, built_copy: Path, embedder: Embedder, tmp_path: Path
) -> None:
    """Added through the live path, exported by the CLI, opened from the file: the live paper
    has its abstract and its neighbours (no server behind the page)."""
    build = current_build_dir(built_copy / "builds")
    assert build is not None
    engine = Engine(build, embedder)
    LiveAdditions(make_settings(built_copy).db_path, embedder).add(engine, [Paper(**GEOLOGY)])
    engine.close()
    target = tmp_path / "map.html"
    exported = run("export-map", target, "--neighbours", "5", data_dir=built_copy)
    assert exported.returncode == 0, exported.stderr
    assert "116 papers" in exported.stdout
    context = browser.new_context(viewport={"width": 1200, "height": 700}, offline=True)
    page = MapPage(context.new_page()).open(f"{target.as_uri()}#paper={GEOLOGY['id']}")
    assert page.page.locator("#meta").inner_text().startswith("116 papers")
    assert page.page.locator("#paper-title").inner_text() == GEOLOGY["title"]
    assert page.page.locator("p.abstract").inner_text() == GEOLOGY["abstract"]
    similar = page.page.locator("#similar .hit")
    assert similar.count() == 5
    target_id = similar.first.get_attribute("data-id")
    similar.first.click()
    page.page.wait_for_function(f"window.paperscope.state.paper === {target_id!r}")
    assert page.page.locator("p.abstract").inner_text()
    assert not page.errors, page.errors
    context.close()


def test_the_page_keeps_to_its_content_security_policy(browser: Any, server: str) -> None:
    headers = httpx.get(server).headers
    policy = headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-eval';" in policy  # regl compiles its draw calls
    assert "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
    assert (headers["x-content-type-options"], headers["x-frame-options"]) == ("nosniff", "DENY")
    assert headers["referrer-policy"] == "same-origin"
    # opened() fails on any violation, and the other tests here open the page the same way
    with opened(browser, server) as page:
        assert _palette_pixels(page.map_colours(), _hex(page.page.evaluate("colour(0)"))) > 50
        swatch = page.page.locator("#topic-list .swatch").first
        r, g, b = _hex(page.page.evaluate(f"colour({swatch.get_attribute('data-swatch')})"))
        painted = swatch.evaluate("(s) => getComputedStyle(s).backgroundColor")
        assert painted == f"rgb({r}, {g}, {b})"
        # the library's lasso animations: an empty <style> filled through the CSSOM
        sheet = page.page.evaluate(
            "() => { const e = document.createElement('style'); document.head.append(e); "
            "e.sheet.insertRule('#hint { color: rgb(1, 2, 3) }', 0); "
            "return getComputedStyle(document.getElementById('hint')).color; }"
        )
        assert sheet == "rgb(1, 2, 3)"
        # the policy is in force: an inline script put into the page does not run
        page.page.evaluate(
            "() => { const s = document.createElement('script'); "
            "s.textContent = 'window.injected = true'; document.body.append(s); }"
        )
        assert page.page.evaluate("window.injected") is None
        assert page.page.evaluate("window.cspViolations") == ["script-src-elem inline"]
        page.page.evaluate("window.cspViolations = []")
        page.errors.clear()


def test_docs_work_offline(browser: Any, server: str) -> None:
    """Swagger UI from the server's own files: nothing asked of another host, no violation of
    the page's policy, every route listed."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    page = MapPage(context.new_page())
    page.page.goto(server + "docs", wait_until="load")
    operations = page.page.locator(".opblock")
    operations.first.wait_for(timeout=30_000)
    paths = httpx.get(server + "openapi.json").json()["paths"]
    assert operations.count() == sum(len(methods) for methods in paths.values())
    operations.first.locator(".opblock-summary").click()  # a route opens, with its parameters
    page.page.locator(".opblock-body").first.wait_for(timeout=5_000)
    assert elsewhere == []
    assert not page.errors, page.errors
    assert page.page.evaluate("window.cspViolations") == []
    context.close()


def test_shift_drag_lasso_selects_the_points_inside(map_page: MapPage) -> None:
    box = map_page.page.locator("#map").bounding_box()
    assert box is not None
    left, top = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2
    right, bottom = box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.8
    inside = [
        row
        for row in range(len(map_page.data("ids")))
        if left < map_page.point_xy(row)[0] < right and top < map_page.point_xy(row)[1] < bottom
    ]
    assert inside
    mouse, keyboard = map_page.page.mouse, map_page.page.keyboard
    keyboard.down("Shift")
    mouse.move(left, top)
    mouse.down()
    # end just short of the start: a release on the very pixel of the press counts as a click
    for x, y in [(right, top), (right, bottom), (left, bottom), (left, top + 8)]:
        mouse.move(x, y, steps=15)
    mouse.up()
    keyboard.up("Shift")
    map_page.page.locator("#selection").wait_for(timeout=5_000)
    selected = map_page.page.evaluate("window.paperscope.state.selection")
    assert len(set(selected) & set(inside)) >= 0.9 * len(inside)
    assert len(set(selected) - set(inside)) <= 0.1 * len(inside)
    heading = map_page.page.locator("#panel h2").inner_text()
    assert heading == f"{len(selected)} papers selected"


def _labels(map_page: MapPage) -> list[dict[str, Any]]:
    boxes: list[dict[str, Any]] = map_page.page.evaluate("window.paperscope.state.labelBoxes")
    return boxes


def _zoom(map_page: MapPage, distance: float) -> None:
    """Zoom onto the largest topic's centre, so its name is on screen at any zoom whatever the
    layout (the middle of the map may hold no topic centre: CI's build had none there)."""
    largest = max((t for t in map_page.data("topics") if t["id"] >= 0), key=lambda t: t["size"])
    _zoom_onto(map_page, largest["x"], largest["y"], distance)


def _zoom_onto(map_page: MapPage, x: float, y: float, distance: float) -> None:
    map_page.page.evaluate(
        f"window.paperscope.scatterplot.zoomToLocation([toGl({x}), toGl({y})], {distance})"
    )
    map_page.page.wait_for_timeout(1200)  # the zoom's transition, then the labels redraw


def test_names_are_shown_groups_zoomed_out_topics_zoomed_in(map_page: MapPage) -> None:
    topics = {t["id"]: t for t in map_page.data("topics") if t["id"] >= 0}
    groups = {g["id"]: g for g in map_page.data("groups")}
    assert all(t["name"] and len(t["name"].split()) <= 4 for t in topics.values())
    zoomed_out = _labels(map_page)
    assert map_page.page.evaluate("window.paperscope.state.labelLevel") == "coarse"
    shown_groups = [b for b in zoomed_out if b["kind"] == "group"]
    assert shown_groups and all(b["text"] == groups[b["id"]]["name"] for b in shown_groups)
    _zoom(map_page, 0.5)
    assert map_page.page.evaluate("window.paperscope.state.labelLevel") == "fine"
    zoomed_in = _labels(map_page)
    assert zoomed_in and all(b["kind"] == "topic" for b in zoomed_in)
    assert all(b["text"] == topics[b["id"]]["name"] for b in zoomed_in)


def test_label_boxes_never_overlap(map_page: MapPage) -> None:
    for distance in (None, 0.8, 0.5, 0.3):
        if distance is not None:
            _zoom(map_page, distance)
        boxes = [b["box"] for b in _labels(map_page)]
        assert boxes
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                overlap = a[0] < b[2] and a[2] > b[0] and a[1] < b[3] and a[3] > b[1]
                assert not overlap, (a, b)


def _window(map_page: MapPage) -> tuple[float, float, float, float]:
    """The map coordinates on screen: x0, x1, y0, y1."""
    x0, x1, y0, y1 = map_page.page.evaluate("[...xScale.domain(), ...yScale.domain()]")
    return min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)


def _off_centre_view(map_page: MapPage, distance: float) -> tuple[int, float, float] | None:
    """A topic and a paper of it such that, zoomed onto the paper, three or more of the topic's
    papers are on screen but not the topic's centre; None if this zoom has no such view."""
    _zoom(map_page, distance)
    x0, x1, y0, y1 = _window(map_page)
    half_x, half_y = 0.45 * (x1 - x0), 0.45 * (y1 - y0)  # a margin inside the screen's edges
    points = list(zip(map_page.data("x"), map_page.data("y"), map_page.data("topic"), strict=True))
    for topic in sorted(map_page.data("topics"), key=lambda t: -t["size"]):
        mine = [(x, y) for x, y, t in points if t == topic["id"] >= 0]
        for x, y in mine:
            if abs(topic["x"] - x) < 1.2 * half_x and abs(topic["y"] - y) < 1.2 * half_y:
                continue  # its centre would be on screen
            near = sum(abs(a - x) < half_x and abs(b - y) < half_y for a, b in mine)
            if near >= 3:
                return topic["id"], x, y
    return None


def test_a_topic_is_named_where_its_papers_are_when_its_centre_is_off_screen(
    map_page: MapPage,
) -> None:
    for distance in (0.3, 0.2, 0.12):
        found = _off_centre_view(map_page, distance)
        if found:
            break
    assert found, "no zoom shows three papers of a topic without its centre"
    topic_id, x, y = found
    _zoom_onto(map_page, x, y, distance)
    topic = next(t for t in map_page.data("topics") if t["id"] == topic_id)
    x0, x1, y0, y1 = _window(map_page)
    assert not (x0 <= topic["x"] <= x1 and y0 <= topic["y"] <= y1)  # the centre is off screen
    shown = {b["id"] for b in _labels(map_page) if b["kind"] == "topic"}
    crowded = map_page.page.evaluate(
        "(window.paperscope.state.labelsCrowded || []).map((c) => c.id)"
    )
    assert topic_id in shown or topic_id in crowded  # named, unless another name is in its place
    assert shown  # the view is never left without names
    width, height = map_page.page.evaluate("[$('labels').clientWidth, $('labels').clientHeight]")
    for box in (b["box"] for b in _labels(map_page)):
        assert 0 <= box[0] <= box[2] <= width and 0 <= box[1] <= box[3] <= height


def test_neighbouring_topics_get_different_colours(map_page: MapPage) -> None:
    pairs = map_page.page.evaluate(
        "[...window.paperscope.state.nearTopics].flatMap(([t, near]) => [...near].map((o) => "
        "[t, o, colour(t), colour(o)]))"
    )
    topics = [t for t in map_page.data("topics") if t["id"] >= 0]
    assert len(pairs) >= len(topics)  # every topic has neighbours
    for topic, other, mine, theirs in pairs:
        assert mine != theirs, (topic, other)
    # the closest pair of topic centres on the map is a neighbouring pair
    _, a, b = min(
        ((p["x"] - q["x"]) ** 2 + (p["y"] - q["y"]) ** 2, p["id"], q["id"])
        for p in topics
        for q in topics
        if p["id"] < q["id"]
    )
    assert (a, b) in {(t, o) for t, o, _, _ in pairs}


# -- what the API knows: timelines, emerging papers, trending topics, collections -------------


def _topic_panel_opens(page: MapPage, topic_id: int) -> None:
    page.page.locator(f'#topic-list [data-topic="{topic_id}"]').click()
    page.page.wait_for_function(f"window.paperscope.state.topic === {topic_id}")
    name = next(t["name"] for t in page.data("topics") if t["id"] == topic_id)
    page.page.locator("#topic-title").wait_for(timeout=10_000)
    assert page.page.locator("#topic-title").inner_text() == name
    page.page.locator("#timeline").wait_for(timeout=10_000)


def test_a_bundled_topic_shows_the_day_its_page_listed_its_papers(map_page: MapPage) -> None:
    topic = max(map_page.data("topics"), key=lambda t: t["size"])
    _topic_panel_opens(map_page, topic["id"])
    map_page.page.locator("#timeline-chart").wait_for(timeout=10_000)
    bars = map_page.page.evaluate(
        "[...document.querySelectorAll('#timeline-chart rect.bar')].map((b) => "
        "[b.dataset.month, Number(b.dataset.papers)])"
    )
    assert bars == [["2025-03", topic["size"]]]  # every bundled paper: listed 2025-03-14
    assert map_page.page.locator("#timeline-empty").count() == 0
    assert map_page.page.locator("#topic-papers .hit").count() == min(topic["size"], 50)


def test_the_timeline_is_drawn_as_bars_per_month(
    dated_page: MapPage, dated_api: httpx.Client
) -> None:
    topic = max(dated_page.data("topics"), key=lambda t: (t["id"] >= 0, t["size"]))
    _topic_panel_opens(dated_page, topic["id"])
    chart = dated_page.page.locator("#timeline-chart")
    chart.wait_for(timeout=10_000)
    bars = dated_page.page.evaluate(
        "[...document.querySelectorAll('#timeline-chart rect.bar')].map((b) => "
        "[b.dataset.month, Number(b.dataset.papers), b.getBBox().height])"
    )
    expected = dated_api.get(f"/topics/{topic['id']}/timeline").json()
    assert expected["undated"] == 0 and len(expected["months"]) >= 3
    assert [(month, n) for month, n, _ in bars] == [
        (m["month"], m["papers"]) for m in expected["months"]
    ]
    tallest = max(height for _, _, height in bars)
    most = max(n for _, n, _ in bars)
    assert tallest > 50  # drawn at a readable size
    for _, n, height in bars:
        assert height == pytest.approx(tallest * n / most, abs=0.05)
    # the bars are on screen, in the topic's colour
    png = Image.open(io.BytesIO(chart.screenshot())).convert("RGB")
    fill = _hex(dated_page.page.evaluate(f"colour({topic['id']})"))
    painted = sum(n for n, rgb in png.getcolors(1 << 20) or [] if rgb == fill)
    assert painted > 100


def test_the_emerging_view_lists_a_paper_that_fits_no_topic(
    dated_page: MapPage, dated_api: httpx.Client
) -> None:
    emerging = dated_api.get("/topics/emerging").json()
    assert GEOLOGY["id"] in [p["id"] for p in emerging["papers"]]
    dated_page.page.locator('#views [data-view="emerging"]').click()
    listed = dated_page.page.locator("#emerging .hit")
    listed.first.wait_for(timeout=10_000)
    assert listed.count() == len(emerging["papers"])
    assert listed.first.inner_text() == GEOLOGY["title"]  # the newest first
    listed.first.click()
    dated_page.page.wait_for_function(f"window.paperscope.state.paper === {GEOLOGY['id']!r}")
    dated_page.page.locator("#paper-title").wait_for(timeout=10_000)
    assert dated_page.page.locator("#paper-title").inner_text() == GEOLOGY["title"]


def _wait_for_trends(page: MapPage, order: list[int]) -> None:
    """Wait until the trending view lists exactly these topics, in this order."""
    listed = "[...document.querySelectorAll('#trending .trend')].map((r) => r.dataset.openTopic)"
    expected = json.dumps([str(t) for t in order], separators=(",", ":"))
    page.page.wait_for_function(f"JSON.stringify({listed}) === {expected!r}", timeout=10_000)


def test_the_trending_view_ranks_topics_by_growth(
    dated_page: MapPage, dated_api: httpx.Client
) -> None:
    dated_page.page.locator('#views [data-view="trending"]').click()
    trends = dated_api.get("/topics/trending").json()
    assert len(trends) >= 3 and any(t["growth"] is not None for t in trends)
    _wait_for_trends(dated_page, [t["id"] for t in trends])
    growth = [t["growth"] for t in trends]
    new = sum(1 for g in growth if g is None)
    assert growth[new:] == sorted(growth[new:], reverse=True) and None not in growth[new:]
    first = dated_page.page.locator("#trending .trend").first.inner_text()
    top = trends[0]
    assert top["name"] in first and f"{top['recent']} recent" in first
    assert f"{top['earlier']} before" in first
    # another window: the list follows
    dated_page.page.fill("#trend-months", "12")
    dated_page.page.dispatch_event("#trend-months", "change")
    longer = [t["id"] for t in dated_api.get("/topics/trending", params={"months": 12}).json()]
    assert longer != [t["id"] for t in trends]
    _wait_for_trends(dated_page, longer)
    # a trend opens its topic's panel
    dated_page.page.locator("#trending .trend").nth(1).click()
    dated_page.page.wait_for_function(f"window.paperscope.state.topic === {longer[1]}")
    name = next(t["name"] for t in dated_page.data("topics") if t["id"] == longer[1])
    dated_page.page.locator("#timeline-chart").wait_for(timeout=10_000)
    assert dated_page.page.locator("#topic-title").inner_text() == name


def _add_to_collection(page: MapPage, name: str, expect: str) -> None:
    page.page.fill("#collection-name", name)
    page.page.locator("#add-to-collection").click()
    page.page.wait_for_function(
        f"document.getElementById('collection-status').textContent.includes({expect!r})",
        timeout=10_000,
    )


def test_the_open_paper_goes_into_a_collection_and_its_feed_is_shown(
    browser: Any, dated_server: str, dated_api: httpx.Client
) -> None:
    ids = dated_api.get("/map").json()["ids"]
    kept, negative, opened_id = ids[0], ids[1], ids[2]
    body = {"positive": [kept], "negative": [negative], "seen": [ids[3]], "note": "kept note"}
    saved = dated_api.put("/collections/reading", json=body, headers={"X-API-Key": KEY})
    assert saved.status_code == 201, saved.text
    with opened(browser, f"{dated_server}#paper={opened_id}") as page:
        page.page.locator("#paper-title").wait_for(timeout=10_000)
        # without the key the server refuses, and says why
        _add_to_collection(page, "reading", "X-API-Key")
        assert len(page.errors) == 1 and "401" in page.errors[0], page.errors
        page.errors.clear()
        assert dated_api.get("/collections/reading").json()["positive"] == [kept]
        page.page.fill("#api-key", KEY)
        _add_to_collection(page, "reading", "Added to reading")
        _add_to_collection(page, "fresh-list", "Added to fresh-list")
        page.open(f"{dated_server}#paper={opened_id}")  # the key is kept across visits
        assert page.page.locator("#api-key").input_value() == KEY
    reading = dated_api.get("/collections/reading").json()
    assert (reading["positive"], reading["negative"]) == ([kept, opened_id], [negative])
    assert (reading["seen"], reading["note"]) == ([ids[3]], "kept note")
    assert dated_api.get("/collections/fresh-list").json()["positive"] == [opened_id]

    feed = dated_api.get("/collections/reading/feed", params={"limit": 20}).json()["results"]
    with opened(browser, dated_server) as page:
        page.page.locator('#views [data-view="collections"]').click()
        names = page.page.locator("#collections .collection b")
        names.first.wait_for(timeout=10_000)
        assert sorted(names.all_inner_texts()) == ["fresh-list", "reading"]
        page.page.locator('#collections [data-collection="reading"]').click()
        listed = page.page.locator("#feed .hit")
        listed.first.wait_for(timeout=10_000)
        assert [h.get_attribute("data-id") for h in listed.all()] == [r["id"] for r in feed]
        assert not {kept, opened_id, negative, ids[3]} & {r["id"] for r in feed}
        reason = page.page.locator("#feed .hit .reason").first.inner_text()
        seed = feed[0]["reason"]["closest_seed"]
        seed_title = dated_api.get(f"/papers/{seed}").json()["title"]
        assert reason.startswith(f"like “{seed_title}”")
        listed.first.click()
        page.page.locator("#paper-title").wait_for(timeout=10_000)
        assert page.page.locator("#paper-title").inner_text() == feed[0]["title"]


def test_a_feed_offers_its_email_digest(
    browser: Any, dated_server: str, dated_api: httpx.Client
) -> None:
    ids = dated_api.get("/map").json()["ids"]
    body = {"positive": [ids[5]]}
    saved = dated_api.put("/collections/by-mail", json=body, headers={"X-API-Key": KEY})
    assert saved.status_code == 201, saved.text
    with opened(browser, dated_server) as page:
        page.page.fill("#api-key", KEY)
        page.page.locator('#views [data-view="collections"]').click()
        page.page.locator('#collections [data-collection="by-mail"]').click()
        page.page.locator("#digest-email").wait_for(timeout=10_000)
        page.page.fill("#digest-email", "ada@example.org")
        page.page.locator("#digest-form button").click()
        page.page.wait_for_function(
            "document.getElementById('digest-status').textContent.includes('will get')",
            timeout=10_000,
        )
        status = page.page.locator("#digest-status").inner_text()
        assert status == "ada@example.org will get the new papers of by-mail by email."
    listed = dated_api.get("/collections/by-mail/subscribers", headers={"X-API-Key": KEY}).json()
    assert [s["email"] for s in listed] == ["ada@example.org"]


def test_thumbs_rate_feed_papers_and_help_me_decide_lists_the_unsure_ones(
    browser: Any, dated_server: str, dated_api: httpx.Client
) -> None:
    ids = dated_api.get("/map").json()["ids"]
    body = {"positive": ids[:3], "negative": ids[3:5]}
    saved = dated_api.put("/collections/thumbs", json=body, headers={"X-API-Key": KEY})
    assert saved.status_code == 201, saved.text
    with opened(browser, dated_server) as page:
        page.page.fill("#api-key", KEY)
        page.page.locator('#views [data-view="collections"]').click()
        page.page.locator('#collections [data-collection="thumbs"]').click()
        ranking = page.page.locator("#feed-ranking")
        page.page.wait_for_function("document.getElementById('feed-ranking')?.textContent")
        assert (
            "seed similarity" in ranking.inner_text()
            and "1 more thumbs down" in ranking.inner_text()
        )
        first = page.page.locator("#feed .hit").first
        rated = first.get_attribute("data-id")
        first.locator('[data-rate="down"]').click()
        page.page.wait_for_function(
            "document.getElementById('feed-ranking').textContent.includes('its classifier')",
            timeout=10_000,
        )
        assert page.page.locator("#paper-title").count() == 0  # a thumb does not open the paper
        page.page.locator("#help-decide").click()
        unsure = page.page.locator("#uncertain-list .hit")
        unsure.first.wait_for(timeout=10_000)
        assert "least sure" in page.page.locator("#uncertain").inner_text()
        assert rated not in [h.get_attribute("data-id") for h in unsure.all()]
    collection = dated_api.get("/collections/thumbs").json()
    assert collection["negative"] == [*ids[3:5], rated] and rated in collection["seen"]
    feed = dated_api.get("/collections/thumbs/feed", params={"limit": 100}).json()
    assert feed["ranking"] == "classifier" and rated not in {r["id"] for r in feed["results"]}


# -- curation: rename, merge, move from the panels --------------------------------------------


def _curate_in_page(page: MapPage, submit: str) -> None:
    """Press a curation button; the page saves, reloads its data and is ready again."""
    with page.page.expect_navigation(timeout=60_000):
        page.page.locator(submit).click()
    page.page.wait_for_function("window.paperscope && window.paperscope.ready", timeout=60_000)
    page.page.wait_for_timeout(300)


def test_topics_are_renamed_merged_and_given_papers_from_the_page(
    browser: Any, built_copy: Path, embedder: Embedder
) -> None:
    hostile = '<img src=x onerror="window.pwned=1">'
    with (
        serving(make_settings(built_copy, api_key=KEY), embedder) as url,
        opened(browser, url) as page,
    ):
        page.page.fill("#api-key", KEY)
        fine = sorted(page.data("topics"), key=lambda t: -t["size"])
        big, gone = fine[0]["id"], fine[1]["id"]
        _topic_panel_opens(page, big)
        page.page.fill("#topic-name", hostile)
        _curate_in_page(page, "#rename-topic")
        named = {t["id"]: t for t in page.data("topics")}[big]
        assert named["name"] == hostile and named["user_named"]
        assert page.page.evaluate("window.pwned || null") is None  # shown as text, never run

        page.page.locator("#curation-topic").wait_for(timeout=10_000)  # reopened from the URL
        assert page.page.evaluate("window.paperscope.state.topic") == big
        assert page.page.locator("#topic-title").inner_text() == hostile
        page.page.select_option("#merge-topic", str(gone))
        _curate_in_page(page, "#merge-topics")
        assert gone not in {t["id"] for t in page.data("topics")}
        assert gone not in set(page.data("topic"))

        ids, topics = page.data("ids"), page.data("topic")
        row = next(i for i, t in enumerate(topics) if t not in (big, -1))
        page.open(f"{url}#paper={ids[row]}")
        page.page.locator("#move-topic").wait_for(timeout=10_000)
        page.page.select_option("#move-topic", str(big))
        _curate_in_page(page, "#move-paper")
        assert page.data("topic")[page.data("ids").index(ids[row])] == big


# -- colour by a field, no WebGL, TeX ---------------------------------------------------------


def _points_painted(page: MapPage) -> dict[tuple[int, int, int], int]:
    """The map's colours drawn by at least 20 pixels (points, not anti-aliased edges)."""
    return {rgb: n for rgb, n in page.map_colours().items() if n >= 20 and rgb != BACKGROUND}


def test_colour_by_a_field_recolours_the_points_and_shows_a_legend(dated_page: MapPage) -> None:
    page = dated_page.page
    by_topic = _points_painted(dated_page)
    assert page.locator("#legend div").count() == 0  # by topic, the topic list is the legend
    for mode, names in (
        ("group", [g["name"] for g in dated_page.data("groups")]),
        ("year", ["2024"]),
    ):
        page.select_option("#colour-by", mode)
        page.wait_for_function(f"window.paperscope.state.colourBy === {mode!r}")
        page.wait_for_timeout(300)
        shown = page.locator("#legend div").all_inner_texts()
        assert set(names) <= set(shown), (names, shown)
        painted = _points_painted(dated_page)
        assert painted != by_topic
        legend = page.eval_on_selector_all(
            "#legend [data-colour]", "(s) => s.map((e) => e.dataset.colour)"
        )
        assert sum(_palette_pixels(painted, _hex(c)) for c in legend) > 50
    assert "colour=year" in page.url
    page.select_option("#colour-by", "topic")
    page.wait_for_timeout(300)
    assert _palette_pixels(dated_page.map_colours(), _hex(page.evaluate("colour(0)"))) > 50


def test_neighbouring_topics_get_colours_far_apart(map_page: MapPage) -> None:
    """Not merely different: the palette's colours differ visibly (CIELAB distance)."""
    closest = map_page.page.evaluate(
        "(() => { const c = window.paperscopeColours, lab = (t) => c.rgbToLab(c.rgbOf(colour(t)));"
        "return Math.min(...[...window.paperscope.state.nearTopics].flatMap(([t, near]) => "
        "[...near].map((o) => c.distance(lab(t), lab(o))))); })()"
    )
    assert closest > 20


@pytest.fixture(scope="module")
def browser_without_webgl(playwright: Any) -> Iterator[Any]:
    """Chromium with WebGL off (no GPU and no software fallback), as some locked-down browsers."""
    args = [*ARGS, "--disable-webgl", "--disable-3d-apis"]
    instance = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    yield instance
    instance.close()


def test_without_webgl_the_page_says_so_and_still_works(
    browser_without_webgl: Any, server: str
) -> None:
    with opened(browser_without_webgl, server) as map_page:
        page = map_page.page
        assert page.evaluate("window.paperscope.webgl") is False
        assert "WebGL is off" in page.locator("#no-webgl").inner_text()
        assert page.locator("#topic-list .topic").count() == len(map_page.data("topics"))
        # the points, drawn on a 2-D canvas, in their topics' colours
        assert _palette_pixels(map_page.map_colours(), _hex(page.evaluate("colour(0)"))) > 50
        row = map_page.clear_row()
        page.mouse.click(*map_page.point_xy(row))
        page.locator("#similar .hit").first.wait_for(timeout=10_000)
        assert page.locator("#paper-title").inner_text() == map_page.data(f"title[{row}]")
        page.fill("#q", "transformer language models")
        page.press("#q", "Enter")
        page.locator("#results .hit").first.wait_for(timeout=30_000)
        assert page.locator("#results .hit").count() > 5


TEX_PAPER = {
    "id": "tex-title",
    "title": r"Critical exponents of $\varphi^{4}$ theory <img src=x data-pwned=1>",
    "abstract": (
        r"We compute $\frac{a}{b}$ to three loops. $\href{javascript:alert(1)}{click}$ "
        r"and $\htmlId{pwned}{x}$ stay text, as does <script>window.pwned = 1</script>. "
        r"A run costs $5 and $10 with \$3 more."
    ),
}


def test_tex_in_a_title_is_typeset_and_hostile_markup_stays_text(
    browser: Any, built_copy: Path, embedder: Embedder
) -> None:
    with serving(make_settings(built_copy, api_key=KEY), embedder) as url:
        posted = httpx.post(
            url + "api/v1/papers",
            json={"papers": [TEX_PAPER]},
            headers={"X-API-Key": KEY},
            timeout=120,
        )
        assert posted.status_code == 200, posted.text
        with opened(browser, f"{url}#paper={TEX_PAPER['id']}") as map_page:
            page = map_page.page
            title = page.locator("#paper-title")
            title.locator(".katex").first.wait_for(timeout=10_000)
            assert "<img" in title.inner_text()  # the markup is shown as text
            assert page.locator("#panel img, #panel script, #panel a, #pwned").count() == 0
            assert page.locator("p.abstract .katex").count() >= 2
            # dollars that are prices are not TeX (Pandoc's rule for a single $)
            assert "A run costs $5 and $10 with" in page.locator("p.abstract").inner_text()
            assert page.evaluate("window.pwned") is None
