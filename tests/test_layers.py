"""The shape of the package: layers point down, no import cycles, the web layer stays apart,
and only the storage modules touch SQLite or name the data folder's files.

The import graph is read from the source (every ``import`` statement, function-level ones
included), so a lazy import cannot hide a cycle or an upward dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from service import config
from tests.helpers import PACKAGE, graph, imports_of, module_name

LAYERS: dict[str, int] = {
    "service.errors": 0,
    "service.runtime": 0,
    "service.sanitize": 0,
    "service.files": 0,
    "service.config": 1,
    "service.mail": 1,
    "service.schemas": 1,
    "service.store": 2,
    "service.ingest": 3,
    "service.embed": 4,
    "service.search": 4,
    "service.artifacts": 5,
    "service.backup": 6,
    "service.topics": 6,
    "service.query": 7,
    "service.pipeline": 7,
    "service.eval": 8,
    "service.app": 9,  # the application object: what the API and the CLI both call
    "service.api": 10,
    "service.bench": 11,
    "service.cli": 11,
    "service.__main__": 12,
    "service": 0,  # the package's __init__: its version and the BLAS kernel choice
}
"""Each part's rank: a module may import its own part or parts of a lower rank only."""

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "service.query": ("service.pipeline",),  # the read side never depends on the writer
}


def part_of(module: str) -> str:
    """The layer a module belongs to: the longest prefix named in LAYERS."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return prefix
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def test_every_module_has_a_layer() -> None:
    for module in graph():
        part_of(module)


def test_layers_point_down() -> None:
    upward = []
    for module, targets in graph().items():
        source = part_of(module)
        for target in targets:
            dest = part_of(target)
            if dest != source and (
                LAYERS[dest] > LAYERS[source] or dest in FORBIDDEN.get(source, ())
            ):
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == []


@pytest.mark.parametrize(
    ("module", "banned"),
    [
        ("service.api.routes.__init__", ("numpy", "faiss")),
        ("service.api.routes.deps", ("numpy", "faiss")),
        ("service.api.routes.status", ("numpy", "faiss")),
        ("service.api.routes.search", ("numpy", "faiss")),
        ("service.api.routes.papers", ("numpy", "faiss")),
        ("service.api.routes.topics", ("numpy", "faiss")),
        ("service.api.routes.maps", ("numpy", "faiss")),
        ("service.api.routes.collections", ("numpy", "faiss")),
        ("service.api.routes.exports", ("numpy", "faiss")),
        ("service.api.routes.digests", ("numpy", "faiss")),
        ("service.api.errors", ("numpy", "faiss")),
        ("service.api.limits", ("numpy", "faiss")),
    ],
)
def test_routes_never_see_numpy(module: str, banned: tuple[str, ...]) -> None:
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    assert not {m for m in imports_of(path) if m.split(".")[0] in banned}


def test_only_the_api_imports_the_web_framework() -> None:
    leaks = [
        name
        for name, path in ((module_name(p), p) for p in PACKAGE.rglob("*.py"))
        if part_of(name) != "service.api"
        and name != "service.cli"  # serve: imports the app inside the command
        and {m for m in imports_of(path) if m.split(".")[0] in ("fastapi", "starlette")}
    ]
    assert leaks == []


CORE = [
    "service.pipeline.pipeline",
    "service.query.engine",
    "service.cli",
    "service.topics.cluster",
    "service.eval.clustering",
]


def test_the_core_loads_without_the_web_layer() -> None:
    """Importing the core (the CLI included) pulls in neither fastapi nor starlette."""
    code = (
        f"import sys; import {', '.join(CORE)}; "
        "leaks = [m for m in ('fastapi', 'starlette') if m in sys.modules]; "
        "print(leaks); sys.exit(1 if leaks else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


STORAGE = ("service.store", "service.artifacts")
"""The modules that touch SQLite and the build folders."""


def test_only_the_storage_modules_import_sqlite() -> None:
    users = [
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if any(m.split(".")[0] == "sqlite3" for m in imports_of(path))
    ]
    assert [m for m in users if m not in STORAGE] == []


def declared_names() -> set[str]:
    """The file names artifacts.py declares (``NAME = "literal"``) and the data folder's own
    (service.config). Plain words are left out: "lexical" is also a search mode."""
    tree = ast.parse((PACKAGE / "artifacts.py").read_text(encoding="utf-8"))
    declared = {
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)
    }
    files = {name for name in declared if "." in name or name.isupper()}
    return files | {config.DATABASE, config.EVAL_CACHE}


def spelled(path: Path) -> set[str]:
    """Every path segment of every string literal in a file, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return {
        segment
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        for segment in node.value.split("/")
    }


NAMING = ("service.artifacts", "service.config")
"""Where the data folder's file names are spelled; everything else uses their constants."""
ELSEWHERE = {("service.embed.models", "manifest.json")}
"""The same name for another folder's file: the models folder's manifest."""


def test_only_artifacts_and_config_spell_the_data_folders_file_names() -> None:
    names = declared_names()
    assert {"embeddings.npy", "neighbours.npy", "CURRENT", "papers.sqlite", "eval-cache"} <= names
    spelled_elsewhere = sorted(
        f"{module}: {name}"
        for module, path in ((module_name(p), p) for p in PACKAGE.rglob("*.py"))
        if module not in NAMING
        for name in spelled(path) & names
        if (module, name) not in ELSEWHERE
    )
    assert spelled_elsewhere == []


MAX_FUNCTION_LINES = 100
"""A function longer than this (signature and docstring included) is split into named steps."""


def test_no_function_is_longer_than_the_limit() -> None:
    long = sorted(
        f"{module_name(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    )
    assert long == []


def test_only_the_query_layer_reaches_into_the_build_view() -> None:
    """Outside ``service/query/`` no module reads ``engine.view``: the API and the CLI go
    through the application object (service/app.py) and the engine's own methods. A called
    ``.view(...)`` (numpy's) is another thing and allowed."""
    reaching = []
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        if part_of(module) == "service.query":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        reaching += [
            f"{module}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr == "view" and id(node) not in called
        ]
    assert reaching == []
