from __future__ import annotations

import subprocess
import sys

CORE = ["service.build", "service.engine", "service.cli", "service.topics", "service.maps"]


def test_core_never_imports_the_web_layer() -> None:
    code = (
        f"import sys; import {', '.join(CORE)}; "
        "leaks = [m for m in ('fastapi', 'starlette') if m in sys.modules]; "
        "print(leaks); sys.exit(1 if leaks else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
