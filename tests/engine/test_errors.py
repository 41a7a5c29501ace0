"""Failures a user can cause, on a real engine: one sentence, exit 1, no traceback."""
from __future__ import annotations

import pytest

from tests.engine.helpers import build_images, has_traceback, leftover_containers, work_tags

pytestmark = pytest.mark.engine


def assert_clean_failure(run, *fragments):
    assert run.exit_code == 1
    assert not has_traceback(run.output)
    error_lines = [line for line in run.output.splitlines()
                   if line.startswith("build-images: error: ")]
    assert len(error_lines) == 1, run.output
    for fragment in fragments:
        assert fragment in error_lines[0]


def test_missing_base_image(example_project, docker_client):
    run = build_images(str(example_project), "--base-image", "pbrx-images-test/nothing:here")
    assert_clean_failure(run, "pbrx-images-test/nothing:here", "could not be pulled")


def test_distro_package_that_does_not_exist(example_project, docker_client, base_image):
    (example_project / "bindep.txt").write_text("libpq5\nno-such-package-pbrx [platform:dpkg]\n")
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "missing")
    assert_clean_failure(run, "'no-such-package-pbrx'", base_image)
    assert leftover_containers(docker_client) == []
    assert work_tags(docker_client) == []


def test_compile_failure_names_the_distribution(example_project, docker_client, base_image):
    # Without libpq-dev (pg_config) psycopg2 cannot build.
    (example_project / "bindep.txt").write_text("gcc [compile]\nlibpq5 [platform:dpkg]\n")
    (example_project / "pyproject.toml").write_text(
        (example_project / "pyproject.toml").read_text().replace(
            'name = "pgtool"', 'name = "pgtool-broken"'))
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "broken")
    assert_clean_failure(run, "psycopg2", "[compile]")
    assert "last lines of output" in run.output
    assert "full log:" in run.output
    assert leftover_containers(docker_client) == []
    assert [name for image in docker_client.images.list()
            for name in image.tags if name.startswith("pgtool-broken")] == []


def test_failing_dockerfile_for_a_script(example_project, docker_client, base_image):
    (example_project / "Dockerfile.pgtool-report").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN exit 3\n")
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "dfail")
    assert run.exit_code == 1
    assert not has_traceback(run.output)
    assert "exit" in run.output
    assert work_tags(docker_client) == []
    for name in ("pgtool-base:dfail", "pgtool-version:dfail", "pgtool-report:dfail"):
        assert not docker_client.images.list(name=name), name


def test_script_with_missing_module_found_by_smoke_test(example_project, docker_client,
                                                        base_image):
    pyproject = example_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pgtool.cli:version"',
                                                       '"pgtool.missing:version"'))
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "smoke",
                       "--smoke-test")
    assert_clean_failure(run, "pgtool-version:smoke", "pgtool-version --help",
                         "ModuleNotFoundError")
    assert not docker_client.images.list(name="pgtool-version:smoke")
    assert leftover_containers(docker_client) == []
