from __future__ import annotations

import json

from service.query.export_map import _inline_json


def test_inline_json_cannot_break_out_of_its_script_tag() -> None:
    hostile = {"title": "</script><!--<script>alert(1)</script>"}
    inlined = _inline_json(hostile)
    assert "<" not in inlined
    assert json.loads(inlined) == hostile
