"""Base images build-images cannot use, and dependency problems, on a real engine."""
from __future__ import annotations

import pytest

from tests.engine.helpers import (build_images, derived_image, has_traceback,
                                  leftover_containers, write_python_project)

pytestmark = pytest.mark.engine


def assert_clean_failure(run, *fragments):
    assert run.exit_code == 1
    assert not has_traceback(run.output)
    lines = [line for line in run.output.splitlines() if line.startswith("build-images: error: ")]
    assert len(lines) == 1, run.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("name, script, fragments", [
    ("nopython", "rm -f /usr/bin/python3*", ["has no python3"]),
    ("novenv", "rm -rf /usr/lib/python3.*/venv", ["without its venv module"]),
    ("nopackagemanager", "rm -f /usr/bin/apt-get", ["no package manager"]),
], ids=["without-python3", "without-venv", "unknown-package-manager"])
def test_unusable_base_image(example_project, docker_client, base_image, name, script,
                             fragments):
    image = derived_image(docker_client, base_image, "pbrx-images-test/%s:1" % name, script)
    run = build_images(str(example_project), "--base-image", image)
    assert_clean_failure(run, image, *fragments)
    assert leftover_containers(docker_client) == []


def _pure_project(path, dependencies, name="deps-demo"):
    return write_python_project(path, name, {name.replace("-", "_") + "/__init__.py": ""},
                                version="1.0", dependencies=dependencies)


def test_conflicting_dependency_versions(tmp_path, docker_client, base_image):
    project = _pure_project(tmp_path / "p", ["tabulate==0.9.0", "tabulate>=0.10"])
    run = build_images(str(project), "--base-image", base_image)
    assert_clean_failure(run, "no set of versions")


def test_constraints_exclude_a_needed_version(tmp_path, docker_client, base_image):
    project = _pure_project(tmp_path / "p", ["tabulate>=0.9"])
    constraints = tmp_path / "c.txt"
    constraints.write_text("tabulate==0.8.10\n")
    run = build_images(str(project), "--base-image", base_image, "--constraints",
                       str(constraints))
    assert_clean_failure(run, "constraints")


def test_dependency_that_does_not_exist(tmp_path, docker_client, base_image):
    project = _pure_project(tmp_path / "p", ["pbrx-images-no-such-distribution-xyz"])
    run = build_images(str(project), "--base-image", base_image)
    assert_clean_failure(run, "pbrx-images-no-such-distribution-xyz")


def test_compile_failure_in_the_project(tmp_path, docker_client, base_image):
    project = tmp_path / "badext"
    project.mkdir()
    (project / "bindep.txt").write_text("gcc [compile]\npython3-dev [compile platform:dpkg]\n")
    (project / "bad.c").write_text("#error this extension does not compile\n")
    (project / "setup.py").write_text(
        "from setuptools import Extension, setup\n"
        "setup(name='badext', version='1.0', ext_modules=[Extension('bad', ['bad.c'])])\n")
    run = build_images(str(project), "--base-image", base_image)
    assert_clean_failure(run, "badext", "[compile]")
    assert "this extension does not compile" in run.output  # the compiler's words
