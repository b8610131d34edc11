"""paperscope's tests (a package, so test files in different folders may share a basename)."""

import pytest

# The shared helpers assert like tests do; rewriting makes their failures explain themselves.
pytest.register_assert_rewrite("tests.helpers")
