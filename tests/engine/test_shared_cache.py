"""The build cache shared through a registry (``--cache-from``, ``--cache-to``).

Against a real registry: Debian's docker-registry on 127.0.0.1 with htpasswd,
its credentials in a Docker client configuration (``DOCKER_CONFIG``), as
``docker login`` leaves them.  Each build has a client cache of its own
(``XDG_CACHE_HOME``) and the wheel volume is removed before it, so every
build but the first is what a fresh CI machine does: the layers it reuses
can only come from the registry.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import Iterator

import pytest

from pbrx_images.cache.files import write_whole
from pbrx_images.cache.layers import CachedLayer, LayerCache
from pbrx_images.cache.shared import SharedCache, tag
from pbrx_images.registry.client import Descriptor, Repository, Unverifiable, sha256_digest
from tests.engine.helpers import (build_report, docker_config, free_port, remove_images,
                                  remove_volume, run_image, write_python_project)

pytestmark = pytest.mark.engine

PROJECT = "sharedcacheapp"
SCRIPT = PROJECT + "-hello"
PREFIX = "pbrx-test/shared"
IMAGES = (PROJECT + "-base", SCRIPT)


def credentials(registry: dict):
    return lambda host: (registry["username"], registry["password"])


def tags_of(registry: dict, repository: str) -> list[str]:
    """The tags of ``repository`` in the registry ([] when it has none)."""
    request = urllib.request.Request("http://%s/v2/%s/tags/list" % (registry["address"],
                                                                    repository))
    token = b64encode(("%s:%s" % (registry["username"], registry["password"])).encode())
    request.add_header("Authorization", "Basic " + token.decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return sorted(json.load(response).get("tags") or [])
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []
        raise


def as_on_a_fresh_engine(client, project: str) -> None:
    """No wheel volume of ``project``, and no runtime-packages image, as on a new node.

    The runtime-packages images are untagged: their layers stay under the
    images made on them, and one loaded again has the same ID.  The builder
    images stay, for the other tests; builds that should not use one are
    checked not to.
    """
    remove_volume(client, "pbrx-images-wheels-" + project)
    for image in client.images.list(name="pbrx-images-cache/runtime"):
        for name in image.tags:
            client.images.remove(name)


@contextlib.contextmanager
def flipped(path: Path, offset: int) -> Iterator[None]:
    """The blob at ``path`` with the byte at ``offset`` flipped, put back afterwards.

    The registry keeps one copy of each blob, whichever repository names it:
    a corruption left in place would reach the later tests' entries too.
    """
    data = path.read_bytes()
    path.write_bytes(data[:offset] + bytes([data[offset] ^ 0xff]) + data[offset + 1:])
    try:
        yield
    finally:
        path.write_bytes(data)


def manifest_of(registry: dict, repository: str, reference: str) -> dict:
    """The OCI manifest ``reference`` of ``repository``, as the registry's user reads it."""
    request = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (
        registry["address"], repository, reference), headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json",
            "Authorization": "Basic " + b64encode(("%s:%s" % (
                registry["username"], registry["password"])).encode()).decode()})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def blob_file(registry: dict, digest: str) -> Path:
    """Where the registry's filesystem storage keeps the blob ``digest``."""
    hexdigest = digest.partition(":")[2]
    return registry["storage"] / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest \
        / "data"


# --------------------------------------------------------------------------
# The client and the entries, without the engine


def test_blobs_and_manifests_go_up_and_come_back_verified(registry, tmp_path):
    repository = Repository(registry["address"], "pbrx-client/blobs", credentials(registry))
    data = b"a blob" * 1000
    digest = sha256_digest(data)
    assert repository.put_blob(digest, len(data), lambda: data)
    assert not repository.put_blob(digest, len(data), lambda: data)  # already there
    assert repository.blob(Descriptor("application/octet-stream", digest, len(data))) == data
    assert repository.manifest("missing") is None
    with pytest.raises(Unverifiable, match="other content"):
        repository.blob(Descriptor("application/octet-stream", digest, len(data) + 1))
    blob_file(registry, digest).write_bytes(b"A" + data[1:])
    target = tmp_path / "kept"
    with pytest.raises(Unverifiable, match="other content than its digest"):
        write_whole(target, repository.blob_chunks(
            Descriptor("application/octet-stream", digest, len(data))))
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left


def test_writers_of_one_repository_at_once_all_succeed(registry, tmp_path):
    """Concurrent writers of the same entries: the same bytes, each written once or more."""
    reference = registry["address"] + "/pbrx-client/concurrent"
    layers = {}
    for number in range(4):
        tar = tmp_path / ("%d.tar" % number)
        tar.write_bytes(b"layer %d" % number * 2000)
        layers["%064x" % number] = (CachedLayer(sha256_digest(tar.read_bytes()), "d%d" % number,
                                                "d%d 1.0" % number, 10, "dependency",
                                                {"opt/venv/d%d.py" % number: ("file", 0o644, "",
                                                                              "x")}), tar)
    writers = [SharedCache(None, reference, credentials(registry)) for _ in range(3)]
    for writer in writers:
        for key, (layer, tar) in layers.items():
            writer.keep_layer(key, layer, tar)
    threads = [threading.Thread(target=writer.write) for writer in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [writer.tally.notes for writer in writers] == [[], [], []]
    assert sum(writer.tally.stored.get("layer", 0) for writer in writers) >= len(layers)
    reader = SharedCache(reference, None, credentials(registry))
    local = LayerCache(tmp_path / "local")
    for key, (layer, tar) in layers.items():
        assert reader.fetch_layer(key, local) == layer
        assert local.tar_path(layer.diff_id).read_bytes() == tar.read_bytes()
    assert reader.tally.hits == {"layer": len(layers)} and reader.tally.misses == []


def test_refused_credentials_are_one_note_and_no_failure(registry, tmp_path):
    notes = []
    cache = SharedCache(registry["address"] + "/pbrx-client/refused",
                        registry["address"] + "/pbrx-client/refused",
                        lambda host: ("someone", "wrong"), notes.append)
    local = LayerCache(tmp_path)
    assert cache.fetch_layer("a" * 64, local) is None
    assert cache.fetch_layer("b" * 64, local) is None  # not asked again
    tar = tmp_path / "x.tar"
    tar.write_bytes(b"x")
    cache.keep_layer("a" * 64, CachedLayer(sha256_digest(b"x"), "x", "x 1", 1, "dependency",
                                           {}), tar)
    cache.write()
    assert len(notes) == 2, notes
    assert "cannot be used" in notes[0] and "docker login %s" % registry["address"] in notes[0]
    assert "was not written" in notes[1]


# --------------------------------------------------------------------------
# Builds


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return write_python_project(
        tmp_path_factory.mktemp("shared") / PROJECT, PROJECT,
        {PROJECT + "/__init__.py": "import six\n\n\ndef main():\n    print('shared', six.PY3)\n"},
        dependencies=["six"], scripts={SCRIPT: PROJECT + ":main"})


@pytest.fixture(scope="module")
def build(tmp_path_factory, docker_client, base_image, registry, project):
    """``build(tag, *args)``: a build as on a fresh machine, with a cache of its own."""
    config = docker_config(tmp_path_factory.mktemp("docker"), registry)

    def build(image_tag: str, *args: str):
        as_on_a_fresh_engine(docker_client, PROJECT)
        env = dict(os.environ, DOCKER_CONFIG=str(config),
                   XDG_CACHE_HOME=str(tmp_path_factory.mktemp("cache-" + image_tag)))
        run, report = build_report(str(project), "--base-image", base_image, "--prefix", PREFIX,
                                   "--tag", image_tag, *args, env=env)
        assert run.exit_code == 0, run.output
        return run, report

    yield build
    remove_images(docker_client, ["%s/%s:%s" % (PREFIX, name, image_tag) for name in IMAGES
                                  for image_tag in ("first", "second", "corrupt", "down",
                                                    "corrupt-lock")])


def ids(report: dict) -> dict[str, str]:
    return {image["name"].rpartition("/")[2]: image["id"] for image in report["images"]}


@pytest.fixture(scope="module")
def cached(build, registry):
    """A first build that writes the shared cache, then one that reads it."""
    reference = registry["address"] + "/pbrx-cache/" + PROJECT
    first = build("first", "--cache-to", reference)
    written = tags_of(registry, "pbrx-cache/" + PROJECT)
    second = build("second", "--cache-from", reference)
    return {"reference": reference, "first": first, "second": second, "written": written,
            "after_reading": tags_of(registry, "pbrx-cache/" + PROJECT)}


#: six's and the project's layers, their wheels and lock, the runtime-packages layer
EVERYTHING = {"layer": 2, "project-wheel": 1, "lock": 1, "packages-layer": 1}


def steps(report: dict) -> list[str]:
    return [timing["step"] for timing in report["timings"]]


def test_a_build_writes_its_layers_and_wheels_to_the_shared_cache(cached):
    run, report = cached["first"]
    shared = report["shared_cache"]
    assert shared["stored"] == EVERYTHING
    assert shared["hits"] == {} and shared["misses"] == [] and shared["notes"] == []
    assert sorted(entry.partition("-")[0] for entry in cached["written"]) == [
        "layer", "layer", "lock", "packages", "project"]
    assert "Write the shared cache %s" % cached["reference"] in run.output


def test_a_fresh_machine_takes_the_layers_from_it_and_makes_the_same_images(
        cached, docker_client):
    """Every wheel and layer comes from the registry: no builder image, no wheel built."""
    run, report = cached["second"]
    assert report["shared_cache"]["hits"] == EVERYTHING
    assert report["shared_cache"]["misses"] == []
    assert not [step for step in steps(report) if step.startswith("Builder image")]
    assert "no builder image is needed" in run.output
    assert "the project's wheel, from the shared cache" in run.output
    assert "the lock and wheels of the same requirements, from the shared cache" in run.output
    assert "the packages' layer, from the shared cache" in run.output
    assert "2 of 2 distribution layers from the cache (2 from the shared cache %s)" % (
        cached["reference"]) in run.output
    assert ids(report) == ids(cached["first"][1])
    assert run_image(docker_client, "%s/%s:second" % (PREFIX, SCRIPT))[1].strip() == \
        "shared True"


def test_cache_from_alone_writes_nothing(cached):
    assert cached["after_reading"] == cached["written"]
    assert cached["second"][1]["shared_cache"]["stored"] == {}
    assert "Write the shared cache" not in cached["second"][0].output


def test_a_corrupt_entry_is_ignored_with_a_note_and_the_build_is_the_same(
        cached, build, registry):
    corrupted = 0
    for entry in (entry for entry in cached["written"] if entry.startswith("layer-")):
        manifest = manifest_of(registry, "pbrx-cache/" + PROJECT, entry)
        if manifest["config"]["size"] and json.loads(blob_file(
                registry, manifest["config"]["digest"]).read_bytes())["name"] == "six":
            six = blob_file(registry, manifest["layers"][0]["digest"])
            corrupted += 1
    assert corrupted == 1
    with flipped(six, 600):  # in the first file's content
        run, report = build("corrupt", "--cache-from", cached["reference"])
    assert "note: the shared cache's layer entry" in run.output and "is ignored" in run.output
    misses = report["shared_cache"]["misses"]
    assert [miss["why"].partition(":")[0] for miss in misses] == ["unverifiable"]  # six's
    assert report["shared_cache"]["hits"] == dict(EVERYTHING, layer=1)
    assert ids(report) == ids(cached["first"][1])


def test_a_registry_that_is_down_is_a_note_and_a_normal_build(cached, build):
    reference = "127.0.0.1:%d/pbrx-cache/%s" % (free_port(), PROJECT)
    run, report = build("down", "--cache-from", reference, "--cache-to", reference)
    assert "note: the shared cache %s cannot be used" % reference in run.output
    assert "Connection refused" in run.output
    assert "was not written" in run.output  # after the images are tagged
    assert ids(report) == ids(cached["first"][1])


def test_a_corrupt_wheel_of_the_lock_has_the_builder_make_the_wheels(cached, build,
                                                                     registry):
    lock = next(entry for entry in cached["written"] if entry.startswith("lock-"))
    manifest = manifest_of(registry, "pbrx-cache/" + PROJECT, lock)
    six = next(blob for blob in manifest["layers"]
               if blob["annotations"]["org.opencontainers.image.title"].startswith("six-"))
    path = blob_file(registry, six["digest"])
    with flipped(path, path.stat().st_size // 2):
        run, report = build("corrupt-lock", "--cache-from", cached["reference"])
    assert "note: the shared cache's lock entry" in run.output
    assert [step for step in steps(report) if step.startswith("Builder image")]
    assert ids(report) == ids(cached["first"][1])


def test_the_tag_of_an_entry_is_its_kind_and_key():
    assert tag("layer", "f" * 64) == "layer-" + "f" * 64


# --------------------------------------------------------------------------
# The psycopg2 fixture: what a fresh machine does not do with a warm cache


def test_the_psycopg2_fixture_compiles_nothing_on_a_fresh_machine(
        tmp_path_factory, docker_client, base_image, registry):
    """examples/pgtool, renamed: a build writes the cache; a build on a fresh client,
    without the wheel volume or the runtime-packages image, installs no compile package,
    builds no wheel, and makes the same images."""
    import shutil

    from tests.conftest import ROOT

    name = "pgtoolshared"
    project = tmp_path_factory.mktemp("pgtool") / name
    shutil.copytree(ROOT / "examples" / "pgtool", project,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "pgtool"', 'name = "%s"' % name))
    config = docker_config(tmp_path_factory.mktemp("docker"), registry)
    reference = "%s/pbrx-cache/%s" % (registry["address"], name)
    reports = {}
    try:
        for image_tag, args in (("write", ("--cache-to", reference)),
                                ("read", ("--cache-from", reference))):
            as_on_a_fresh_engine(docker_client, name)
            env = dict(os.environ, DOCKER_CONFIG=str(config),
                       XDG_CACHE_HOME=str(tmp_path_factory.mktemp("cache-" + image_tag)))
            run, reports[image_tag] = build_report(
                str(project), "--base-image", base_image, "--prefix", PREFIX, "--tag",
                image_tag, "-v", *args, env=env)
            assert run.exit_code == 0, run.output
        output = run.output  # the reading build's, every command and its output (-v)
        assert not [step for step in steps(reports["read"]) if step.startswith("Builder")]
        # no package installed (neither gcc nor libpq5), no wheel built, no compiler run
        assert "apt-get install" not in output and "apt-get update" not in output
        assert "Building wheel" not in output and " wheel --no-deps" not in output
        assert "x86_64-linux-gnu-gcc" not in output and "\ngcc " not in output
        assert reports["read"]["shared_cache"]["misses"] == []
        assert ids(reports["read"]) == ids(reports["write"])
        code, printed = run_image(docker_client, "%s/pgtool-version:read" % PREFIX)
        assert code == 0 and "psycopg2 2." in printed, printed
    finally:
        remove_images(docker_client, ["%s/%s:%s" % (PREFIX, image, image_tag)
                                      for image in (name + "-base", "pgtool-version",
                                                    "pgtool-report")
                                      for image_tag in ("write", "read")])
        remove_volume(docker_client, "pbrx-images-wheels-" + name)


def test_two_builds_writing_one_repository_at_once_then_a_build_reading_it(
        tmp_path_factory, docker_client, base_image, registry, project):
    import subprocess
    import sys

    config = docker_config(tmp_path_factory.mktemp("docker"), registry)
    reference = "%s/pbrx-cache/concurrent-%s" % (registry["address"], PROJECT)
    remove_volume(docker_client, "pbrx-images-wheels-" + PROJECT)
    processes = []
    for number in range(2):
        env = dict(os.environ, DOCKER_CONFIG=str(config),
                   XDG_CACHE_HOME=str(tmp_path_factory.mktemp("cache-writer%d" % number)))
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "pbrx_images.cli", str(project), "--base-image", base_image,
             "--prefix", PREFIX, "--tag", "writer%d" % number, "--cache-to", reference,
             "--format", "json"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT))
    outputs = [process.communicate(timeout=1200)[0].decode() for process in processes]
    try:
        assert [process.returncode for process in processes] == [0, 0], outputs
        assert not [output for output in outputs if "was not written" in output], outputs
        env = dict(os.environ, DOCKER_CONFIG=str(config),
                   XDG_CACHE_HOME=str(tmp_path_factory.mktemp("cache-reader")))
        remove_volume(docker_client, "pbrx-images-wheels-" + PROJECT)
        run, report = build_report(str(project), "--base-image", base_image, "--prefix",
                                   PREFIX, "--tag", "reader", "--cache-from", reference, env=env)
        assert run.exit_code == 0, run.output
        hits = report["shared_cache"]["hits"]
        assert (hits["project-wheel"], hits["lock"]) == (1, 1) and hits["layer"] >= 1
        assert not [step for step in steps(report) if step.startswith("Builder")]
    finally:
        remove_images(docker_client, ["%s/%s:%s" % (PREFIX, name, image_tag) for name in IMAGES
                                      for image_tag in ("writer0", "writer1", "reader")])
