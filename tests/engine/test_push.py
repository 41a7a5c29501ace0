"""``--push`` against a real registry: Debian's docker-registry on 127.0.0.1 with htpasswd.

The credentials reach the engine the way ``docker login`` leaves them: in a
Docker client configuration directory (``DOCKER_CONFIG``) that the SDK reads.
Every build gets a directory of its own, never the user's ~/.docker.
"""
from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from tests.engine.helpers import (Run, build_images, docker_config, free_port, registry_get,
                                  run_image, write_python_project)

pytestmark = pytest.mark.engine

PROJECT = "pbrxpushdemo"
SCRIPT = "pbrxpushdemo-hello"
TAG = "pushed"
NAMESPACE = "pbrx-push"


def build_and_push(project: Path, base_image: str, prefix: str, config_dir: Path) -> Run:
    """``build-images --push --format json`` with the Docker configuration ``config_dir``."""
    return build_images(str(project), "--base-image", base_image, "--prefix", prefix,
                        "--tag", TAG, "--push", "--format", "json",
                        env=dict(os.environ, DOCKER_CONFIG=str(config_dir)), separate=True)


def write_project(directory: Path, greeting: str) -> Path:
    """A small pure-Python project: one console script and one dependency (six)."""
    return write_python_project(
        directory, PROJECT,
        {PROJECT + "/__init__.py":
         "import six\n\n\ndef main():\n    print(%r, six.__name__)\n" % greeting},
        dependencies=["six"], scripts={SCRIPT: PROJECT + ":main"})


def names(prefix: str) -> list[str]:
    return ["%s/%s" % (prefix, name) for name in ("%s-base" % PROJECT, SCRIPT)]


def remove_tags(client, prefix: str) -> None:
    """Remove every local image named under ``prefix`` (the registry's port changes per run).

    By tag, and by repository digest: an image that lost its tag to a
    rebuild keeps the digest of its push, and the name with it.
    """
    for _ in range(3):  # a script image goes before the base image under it
        for image in client.images.list():
            references = image.tags + (image.attrs.get("RepoDigests") or [])
            if any(reference.startswith(prefix + "/") for reference in references):
                try:
                    client.images.remove(image.id, force=True)
                except Exception:
                    pass


def blobs(registry: dict) -> dict[str, Path]:
    """The registry's blobs by digest (its filesystem storage layout)."""
    root = registry["storage"] / "docker" / "registry" / "v2" / "blobs" / "sha256"
    return {"sha256:" + path.parent.name: path for path in root.glob("*/*/data")}


@pytest.fixture(scope="module")
def prefix(registry, docker_client):
    prefix = "%s/%s" % (registry["address"], NAMESPACE)
    yield prefix
    remove_tags(docker_client, prefix)


@pytest.fixture(scope="module")
def pushed(tmp_path_factory, registry, prefix, base_image):
    """The project built and pushed once, logged in through DOCKER_CONFIG."""
    tmp = tmp_path_factory.mktemp("push")
    project = write_project(tmp / "project", "hello from the first build")
    config_dir = docker_config(tmp / "docker-config", registry)
    run = build_and_push(project, base_image, prefix, config_dir)
    return {"project": project, "config": config_dir, "run": run, "blobs": set(blobs(registry))}


def test_push_reports_digests_and_the_registry_has_the_tags(pushed, registry, prefix,
                                                            docker_client):
    run = pushed["run"]
    assert run.exit_code == 0
    images = {image["name"]: image for image in run.report["images"]}
    assert set(images) == set(names(prefix))
    catalog = registry_get(registry, "/v2/_catalog")["repositories"]
    for name, image in images.items():
        assert image["digest"].startswith("sha256:")
        assert "==> Push %s:%s" % (name, TAG) in run.output
        assert "%s@%s" % (name, image["digest"]) in run.output  # the summary
        repository = name.split("/", 1)[1]
        assert repository in catalog
        assert registry_get(registry, "/v2/%s/tags/list" % repository)["tags"] == [TAG]
        assert docker_client.images.get("%s:%s" % (name, TAG)).id == image["id"]
    # the base image went first; the script image found its layers there
    assert run.output.index("==> Push %s/%s-base" % (prefix, PROJECT)) < run.output.index(
        "==> Push %s/%s" % (prefix, SCRIPT))
    assert "0 layers uploaded" in run.output


def test_pushed_images_pull_back_by_digest_and_run(pushed, registry, prefix, docker_client):
    images = {image["name"]: image for image in pushed["run"].report["images"]}
    remove_tags(docker_client, prefix)
    auth = {"username": registry["username"], "password": registry["password"]}
    references = []
    try:
        for name, image in images.items():
            reference = "%s@%s" % (name, image["digest"])
            pulled = docker_client.images.pull(reference, auth_config=auth)
            references.append(reference)
            assert pulled.id == image["id"]
            assert reference in pulled.attrs["RepoDigests"]
        code, output = run_image(docker_client, "%s/%s@%s" % (
            prefix, SCRIPT, images["%s/%s" % (prefix, SCRIPT)]["digest"]))
        assert (code, output.strip()) == (0, "hello from the first build six"), output
    finally:
        for reference in references:
            try:
                docker_client.images.remove(reference)
            except Exception:
                pass


def test_push_without_login_says_to_log_in(tmp_path, registry, prefix, base_image,
                                           docker_client):
    project = write_project(tmp_path / "project", "hello without login")
    run = build_and_push(project, base_image, prefix, docker_config(tmp_path / "empty"))
    assert run.exit_code == 1
    line = run.error_line()
    assert "Pushing %s/%s-base:%s to %s failed" % (prefix, PROJECT, TAG,
                                                   registry["address"]) in line
    assert "run 'docker login %s'" % registry["address"] in line
    assert "stay tagged locally" in line
    assert run.stdout == ""  # no report of a failed build
    assert "Traceback" not in run.output
    # built and tagged, not pushed
    assert docker_client.images.get("%s/%s-base:%s" % (prefix, PROJECT, TAG))
    assert docker_client.images.get("%s/%s:%s" % (prefix, SCRIPT, TAG))


def test_push_to_an_unreachable_registry_fails_clearly(tmp_path, base_image, docker_client):
    address = "127.0.0.1:%d" % free_port()  # nothing listens there
    prefix = "%s/%s" % (address, NAMESPACE)
    project = write_project(tmp_path / "project", "hello nowhere")
    try:
        run = build_and_push(project, base_image, prefix, docker_config(tmp_path / "config"))
        assert run.exit_code == 1
        line = run.error_line()
        assert "Pushing %s/%s-base:%s to %s failed" % (prefix, PROJECT, TAG, address) in line
        assert "cannot reach the registry %s" % address in line
        assert "stay tagged locally" in line
        assert "Traceback" not in run.output
        assert docker_client.images.get("%s/%s-base:%s" % (prefix, PROJECT, TAG))
    finally:
        remove_tags(docker_client, prefix)


def _layer_files(blob: Path) -> list[str]:
    """The regular files in a layer blob (gzip-compressed tar), or [] for other blobs."""
    with open(blob, "rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            return []  # an image configuration or a manifest
    with gzip.open(blob) as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
        return [member.name for member in archive if member.isfile()]


def test_second_push_after_an_app_change_uploads_only_the_new_layer(
        pushed, registry, prefix, base_image):
    """One line of the app changes: only a layer of the app's own files is uploaded."""
    assert pushed["run"].exit_code == 0
    write_project(pushed["project"], "hello from the second build")
    before = blobs(registry)
    run = build_and_push(pushed["project"], base_image, prefix, pushed["config"])
    assert run.exit_code == 0
    new = {digest: path for digest, path in blobs(registry).items() if digest not in before}
    new_layers = {digest: _layer_files(path) for digest, path in new.items()
                  if _layer_files(path)}
    assert len(new_layers) == 1, new_layers
    files = next(iter(new_layers.values()))
    assert all(PROJECT in path for path in files), files  # no dependency, no leftovers
    assert sum(new[digest].stat().st_size for digest in new_layers) <= 100_000
    base_push = run.output.split("==> Push %s/%s-base" % (prefix, PROJECT))[1]
    assert "1 layer uploaded," in base_push.split("==>")[0]


def test_wrong_password_says_to_log_in(tmp_path, registry, prefix, base_image, docker_client,
                                       monkeypatch):
    """Engine.push itself, with a wrong password in the client's configuration."""
    from pbrx_images.engine import connect
    from pbrx_images.errors import BuildError
    from pbrx_images.ui.output import Reporter

    wrong = dict(registry, password="wrong-password")
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config(tmp_path / "config", wrong)))
    name = "%s/wrong-password:%s" % (prefix, TAG)
    docker_client.images.get(base_image).tag(name)
    try:
        engine = connect(Reporter(stream=io.StringIO()))
        with pytest.raises(BuildError) as raised:
            engine.push(name)
        message = str(raised.value)
        assert message.startswith("Pushing %s to %s failed (" % (name, registry["address"]))
        assert "run 'docker login %s'" % registry["address"] in message
        assert "wrong-password" not in message.replace(name, "")
    finally:
        docker_client.images.remove(name)


def test_dry_run_says_where_it_would_push(tmp_path, prefix, base_image, docker_client):
    project = write_project(tmp_path / "project", "hello")
    run = build_images(str(project), "--base-image", base_image, "--prefix", prefix,
                       "--push", "--dry-run", timeout=600, separate=True)
    assert run.exit_code == 0, run.output
    assert ("Push: every image to %s, once all are built and tagged" % prefix.split("/")[0]
            in run.stdout)
