"""The project's wheel: an in-tree build backend, and pip's isolation when the hook fails.

The fixture's backend (``backend-path``) builds only when pip calls it.
Called by pbrx-images' own hook in the kept build environment it writes a
file into the source and fails; the build must then fall back to pip with
build isolation, on the source as it was given (without that file).
"""
from __future__ import annotations

import contextlib

import docker.errors
import pytest

from tests.engine.helpers import (build_images, leftover_containers, remove_volume, run_image,
                                  write_python_project)

pytestmark = pytest.mark.engine

NAME = "intreebackend"

BACKEND = '''\
import os
import sys

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403

MARK = "LEFT-BY-THE-FIRST-ATTEMPT"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if os.path.exists(MARK):
        raise RuntimeError("the source is not as it was given: %s is in it" % MARK)
    if os.path.basename(sys.argv[0]) != "_in_process.py":  # not pip's hook runner
        with open(MARK, "w") as handle:
            handle.write("x")
        raise RuntimeError("this backend builds only when pip calls it")
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
'''


@pytest.fixture
def project(tmp_path):
    root = write_python_project(
        tmp_path / NAME, NAME,
        {"intreeapp/__init__.py": "def main():\n    print('in-tree backend works')\n",
         "_build/fussy_backend.py": BACKEND},
        dependencies=[], scripts={"intreeapp": "intreeapp:main"})
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'build-backend = "setuptools.build_meta"',
        'build-backend = "fussy_backend"\nbackend-path = ["_build"]'))
    return root


def test_failing_hook_falls_back_to_pip_on_fresh_source(project, docker_client, base_image):
    remove_volume(docker_client, "pbrx-images-wheels-%s" % NAME)
    try:
        run = build_images(str(project), "--base-image", base_image, "--tag", "backend")
        assert run.exit_code == 0, run.output
        assert "building it with pip's build isolation" in run.output
        code, output = run_image(docker_client, "intreeapp:backend")
        assert (code, output.strip()) == (0, "in-tree backend works")
        assert not (project / "LEFT-BY-THE-FIRST-ATTEMPT").exists()
        assert leftover_containers(docker_client) == []
    finally:
        for image in ("intreeapp:backend", "%s-base:backend" % NAME):
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.images.remove(image, force=True)
        remove_volume(docker_client, "pbrx-images-wheels-%s" % NAME)
