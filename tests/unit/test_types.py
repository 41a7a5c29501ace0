"""The type check: mypy over the package, clean (setup.cfg's [mypy] says how)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import ROOT, in_ci


def test_mypy_finds_no_error():
    if importlib.util.find_spec("mypy") is None:
        message = "mypy is missing: install the test extra (tools/test-all does)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    checked = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                             text=True, timeout=900)
    assert checked.returncode == 0, checked.stdout + checked.stderr
