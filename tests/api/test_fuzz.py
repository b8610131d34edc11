"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis).

Every generated request must get a non-5xx answer that conforms to the declared schema (status
code, content type, body). CI runs a bounded number of examples per operation
(``PAPERSCOPE_FUZZ_EXAMPLES``, default 40); ``scripts/fuzz-api`` runs thousands.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from service.api.app import create_app
from service.embed.backends import Embedder
from tests.helpers import make_settings

pytestmark = pytest.mark.slow  # thousands of generated requests

EXAMPLES = int(os.environ.get("PAPERSCOPE_FUZZ_EXAMPLES", "40"))


def fuzz_app(app: Any, examples: int) -> dict[str, int]:
    """Fuzz every operation of ``app``; returns requests made per operation."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    made: dict[str, int] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the schema has an invalid operation: {result}"
        operation = result.ok()
        _fuzz_operation(operation, f"{operation.method.upper()} {operation.path}", examples, made)
    return made


def _fuzz_operation(operation: Any, label: str, examples: int, made: dict[str, int]) -> None:
    made[label] = 0

    @given(case=operation.as_strategy())
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        made[label] += 1
        case.call_and_validate()

    check()


def test_api_survives_generated_requests(built_dir: Path, embedder: Embedder) -> None:
    app = create_app(make_settings(built_dir), embedder)
    with TestClient(app):  # runs the lifespan: the build is loaded
        made = fuzz_app(app, EXAMPLES)
    print(f"\nfuzzed {sum(made.values())} requests over {len(made)} operations: {made}")
    assert len(made) >= 9
    assert sum(made.values()) >= 5 * len(made)
