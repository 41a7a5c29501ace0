"""Extras of other names: a script whose dependencies are in an extra not named as it is.

The project's script ``food`` needs ``six``, which only its extra ``d``
requires (as black's ``blackd`` needs its ``d`` extra).  Built without a
mapping, the image has no ``six`` and fails when it runs; with ``--extra
food=d`` it runs; a mapping to an extra the project lacks fails at once, in
one sentence that lists the project's extras.
"""
from __future__ import annotations

import os

import pytest

from tests.engine.helpers import build_images, remove_images, run_image, write_python_project

pytestmark = pytest.mark.engine

NAME = "extrasmap"
TAG = "extras"
IMAGES = ["%s-base:%s" % (NAME, TAG), "food:%s" % TAG]
MAIN = "def main():\n    import six\n    print('food with', six.__name__)\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory, docker_client):
    root = tmp_path_factory.mktemp("extras")
    path = write_python_project(root / NAME, NAME, {NAME + "/__init__.py": MAIN},
                                dependencies=[], scripts={"food": NAME + ":main"},
                                extras={"d": ["six"], "tests": ["pytest"]})
    remove_images(docker_client, IMAGES)
    yield path
    remove_images(docker_client, IMAGES)


def _build(project, base_image, *extra):
    env = dict(os.environ)
    env.pop("SOURCE_DATE_EPOCH", None)
    return build_images(str(project), "--base-image", base_image, "--tag", TAG, *extra,
                        env=env)


def test_without_a_mapping_the_script_lacks_its_extra(project, docker_client, base_image):
    run = _build(project, base_image)
    assert run.exit_code == 0
    code, output = run_image(docker_client, "food:" + TAG)
    assert code != 0 and "No module named 'six'" in output


def test_with_extra_the_scripts_image_has_the_extra_and_runs(project, docker_client,
                                                             base_image):
    dry = _build(project, base_image, "--extra", "food=d", "--dry-run")
    assert dry.exit_code == 0
    assert "  food:%s\n    extras: d (--extra food=d)\n" % TAG in dry.output
    run = _build(project, base_image, "--extra", "food=d")
    assert run.exit_code == 0
    assert run_image(docker_client, "food:" + TAG) == (0, "food with six\n")
    base_id = docker_client.images.get("%s-base:%s" % (NAME, TAG)).id
    code, output = run_image(docker_client, base_id, ["python", "-c", "import six"])
    assert code != 0  # only the script's image has the extra


def test_an_extra_the_project_lacks_fails_before_the_engine_is_used(project, docker_client,
                                                                    base_image):
    before = docker_client.images.get("food:" + TAG).id
    run = _build(project, base_image, "--extra", "food=server")
    assert run.exit_code == 1
    assert ("build-images: error: --extra food=server gives the script 'food' the extra "
            "'server', which the project does not define (its extras: d, tests): fix the "
            "mapping.") in run.output
    assert "==> " not in run.output and "Traceback" not in run.output
    assert docker_client.images.get("food:" + TAG).id == before  # nothing tagged
