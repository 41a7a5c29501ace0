"""A Dockerfile.{script} replaces the default image of that script."""
from __future__ import annotations

import pytest

from tests.engine.helpers import build_images, run_image

pytestmark = pytest.mark.engine


def test_dockerfile_gets_base_image_prefix_and_tag(example_project, docker_client, base_image):
    (example_project / "Dockerfile.pgtool-version").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nLABEL org.example.custom=yes\n"
        "ENV GREETING=custom\nCMD [\"sh\", \"-c\", \"echo $GREETING; pgtool-version\"]\n")
    run = build_images(str(example_project), "--base-image", base_image,
                       "--prefix", "pbrx-test/custom", "--tag", "df")
    assert run.exit_code == 0
    image = docker_client.images.get("pbrx-test/custom/pgtool-version:df")
    assert image.labels.get("org.example.custom") == "yes"
    base = docker_client.images.get("pbrx-test/custom/pgtool-base:df")
    assert base.id in [layer for layer in _parents(docker_client, image)]
    code, output = run_image(docker_client, "pbrx-test/custom/pgtool-version:df")
    assert code == 0
    assert output.splitlines()[0] == "custom" and "psycopg2" in output


def _parents(client, image):
    """IDs of the image and its ancestors, as the engine's history tells them."""
    return [entry["Id"] for entry in image.history() if entry["Id"] != "<missing>"]


def test_build_args_reach_the_dockerfile_beside_base_image(example_project, docker_client,
                                                           base_image):
    (example_project / "Dockerfile.pgtool-version").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG GREETING=unset\nENV GREETING=${GREETING}\n"
        "CMD [\"sh\", \"-c\", \"echo $GREETING\"]\n")
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "args",
                       "--build-arg", "GREETING=hello from a build arg", "--dry-run")
    assert run.exit_code == 0
    assert "Build arguments of Dockerfile.{script} builds: GREETING=hello from a build arg" \
        in run.output
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "args",
                       "--build-arg", "GREETING=hello from a build arg")
    assert run.exit_code == 0
    assert run_image(docker_client, "pgtool-version:args") == (0, "hello from a build arg\n")
    # another value is another build (the option is an input), not "up to date"
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "args",
                       "--build-arg", "GREETING=again")
    assert run.exit_code == 0 and "Up to date" not in run.output
    assert run_image(docker_client, "pgtool-version:args") == (0, "again\n")
