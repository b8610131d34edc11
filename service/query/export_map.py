"""``paperscope export-map``: the current build's map as one self-contained, offline HTML file.

The map page, its bundled WebGL library and the map data are inlined into a single file. With no
server behind it, the page answers "papers like this" from nearest neighbours computed here, and
its search box matches title words instead of meaning.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from service.query.engine import Engine
from service.query.map_payload import drawn_abstracts, drawn_neighbours, drawn_rows, map_points

STATIC = Path(__file__).parents[1] / "api" / "static"
"""The map page, its script, style sheet and bundled library, inlined into the exported file."""
STYLE_TAG = '<link rel="stylesheet" href="static/app.css">'
SCRIPT_TAGS = (
    '<script src="static/vendor/scatterplot.bundle.js"></script>\n'
    '<script src="static/app.js"></script>'
)
SERVED_ONLY = re.compile(r'\n?<script src="static/[\w.-]+\.js"></script>')
"""The page's other scripts (digest.js, feedback.js, curation.js): they talk to a server, which
an exported file has not (removed after PAGE_SCRIPTS are inlined)."""
KATEX_STYLE = "vendor/katex/katex.min.css"
PAGE_SCRIPTS = ("vendor/katex/katex.bundle.js", "colours.js", "canvas2d.js")
"""Loaded by the page before SCRIPT_TAGS, each by its own tag; inlined the same way."""
ABSTRACTS_UP_TO = 20_000
"""Abstracts are inlined for corpora up to this size (beyond it the file grows past ~30 MB)."""


def _inline_json(payload: object) -> str:
    # Any "<" inside a <script> can end it or switch the HTML parser's script state ("<!--");
    # JSON allows the escaped form.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")


def export_map(
    engine: Engine, target: Path, neighbours: int = 8, abstracts: bool | None = None
) -> int:
    """Write the HTML file; returns its size in bytes."""
    html = page_html(offline_payload(engine, neighbours, abstracts))
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target.stat().st_size


def offline_payload(
    engine: Engine, neighbours: int = 8, abstracts: bool | None = None
) -> dict[str, object]:
    """What the page reads instead of the API: the map, and for every paper on it (live
    additions included) its neighbours and abstract, indexed like the map's arrays."""
    view = engine.view
    with view.changed:  # one state of the view: live additions or deletions wait
        rows = drawn_rows(view)
        points = map_points(view)
        with_abstracts = len(rows) <= ABSTRACTS_UP_TO if abstracts is None else abstracts
        manifest = engine.manifest
        return {
            "meta": {
                "papers": len(rows),
                "topics": manifest.n_topics,
                "build_id": manifest.build_id,
                "model": manifest.model.name,
            },
            "map": points.model_dump(),
            "neighbors": drawn_neighbours(view, rows, neighbours),
            "abstracts": drawn_abstracts(view, rows) if with_abstracts else None,
        }


def page_html(embedded: dict[str, object]) -> str:
    """The map page with its library and ``embedded`` inlined."""
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    tags = [STYLE_TAG, SCRIPT_TAGS, _style_tag(KATEX_STYLE), *map(_script_tag, PAGE_SCRIPTS)]
    if any(tag not in page for tag in tags):
        raise RuntimeError("the map page no longer loads its files the way export expects")
    style, bundle, script = (
        (STATIC / name).read_text(encoding="utf-8")
        for name in ("app.css", "vendor/scatterplot.bundle.js", "app.js")
    )
    scripts = (
        f"<script>{bundle}</script>\n"
        f"<script>window.PAPERSCOPE_EMBEDDED = {_inline_json(embedded)};</script>\n"
        f"<script>{script}</script>"
    )
    page = page.replace(STYLE_TAG, f"<style>\n{style}</style>").replace(SCRIPT_TAGS, scripts)
    page = page.replace(_style_tag(KATEX_STYLE), f"<style>\n{_katex_style()}</style>")
    for name in PAGE_SCRIPTS:
        inline = (STATIC / name).read_text(encoding="utf-8")
        page = page.replace(_script_tag(name), f"<script>{inline}</script>")
    return SERVED_ONLY.sub("", page)


def _style_tag(name: str) -> str:
    return f'<link rel="stylesheet" href="static/{name}">'


def _script_tag(name: str) -> str:
    return f'<script src="static/{name}"></script>'


def _katex_style() -> str:
    """KaTeX's style sheet with its woff2 fonts inlined (browsers pick woff2 first and never fetch
    the woff and ttf it also lists)."""
    folder = (STATIC / KATEX_STYLE).parent
    css = (folder / "katex.min.css").read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        data = base64.b64encode((folder / "fonts" / match.group(1)).read_bytes()).decode()
        return f"url(data:font/woff2;base64,{data})"

    return re.sub(r"url\(fonts/([\w-]+\.woff2)\)", inline, css)
