"""The README's commands work as written."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.engine


def test_try_example(tmp_path, docker_client):
    env = dict(os.environ, PBRX_IMAGES_EXAMPLE_VENV=str(tmp_path / "venv"))
    completed = subprocess.run([str(ROOT / "tools" / "try-example")], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=1800)
    output = completed.stdout.decode()
    print(output)
    assert completed.returncode == 0
    assert "pgtool-version:latest" in output  # the table of images
    assert output.rstrip().splitlines()[-1].startswith("psycopg2 2.")  # the image ran
