"""Builds running at the same time on one engine."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.engine.helpers import (build_images, leftover_containers, remove_volume, run_image,
                                  work_tags)

pytestmark = pytest.mark.engine


def _copy(tmp_path, directory, name=None):
    target = tmp_path / directory
    shutil.copytree(ROOT / "examples" / "pgtool", target)
    if name:
        pyproject = target / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace('name = "pgtool"',
                                                           'name = "%s"' % name))
    return target


def test_same_project_twice_and_another_project_at_once(tmp_path, docker_client, base_image):
    name = "pgtool-concurrent"
    # both builds of the same project compile into one fresh wheel cache
    remove_volume(docker_client, "pbrx-images-wheels-" + name)
    jobs = [(_copy(tmp_path, "a", name), "a"), (_copy(tmp_path, "b", name), "b"),
            (_copy(tmp_path, "c", name + "-other"), "c")]
    processes = [subprocess.Popen(
        [sys.executable, "-m", "pbrx_images.cli", str(project), "--base-image", base_image,
         "--tag", tag], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT) for project, tag in jobs]
    outputs = [process.communicate(timeout=1800)[0].decode() for process in processes]
    for process, output in zip(processes, outputs):
        print(output)
        assert process.returncode == 0
    for image in ("%s-base:a" % name, "%s-base:b" % name, "%s-other-base:c" % name):
        assert docker_client.images.get(image)
    for tag in ("a", "b"):
        code, output = run_image(docker_client, "pgtool-version:%s" % tag)
        assert code == 0 and "psycopg2" in output
    assert leftover_containers(docker_client) == []
    assert work_tags(docker_client) == []
    # The shared wheel cache is intact: a new build uses it and compiles nothing.
    again = build_images(str(jobs[0][0]), "--base-image", base_image, "--tag", "again",
                         "--debug")
    assert again.exit_code == 0
    assert "Building wheel for" not in again.output
    code, output = run_image(docker_client, "pgtool-report:again")
    assert code == 0 and "psycopg2" in output
