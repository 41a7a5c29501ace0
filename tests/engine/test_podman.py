"""A full build against podman's Docker-compatible API (``podman system service``).

Debian's podman (4.3) serves the Docker API on a socket of the test's own,
with storage of its own, so it shares nothing with the Docker engine the
other tests use.  The base image goes in through the SDK (saved from the
Docker engine, loaded into podman): nothing can be pulled here.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

import docker
import pytest

from pbrx_images.cache.layers import LayerCache
from pbrx_images.engine import Engine
from pbrx_images.engine.load import load_archive
from pbrx_images.oci.image_archive import (ArchivedImage, NewLayer, image_config, parent_history,
                                           rfc3339)
from pbrx_images.ui.output import Reporter
from tests.engine.helpers import build_images, leftover_containers, missing
from tests.engine.test_errors import assert_clean_failure

pytestmark = pytest.mark.engine

#: Kept short of the limits podman itself runs with: see :func:`_containers_conf`.
NPROC = 4096


def _containers_conf(path: str) -> None:
    """A containers.conf whose container rlimits never exceed the service's own.

    Rootful podman gives every container ``nofile`` and ``nproc`` limits of
    1048576 unless told otherwise; raising a hard limit needs CAP_SYS_RESOURCE,
    which the machines this runs on (a VM, a CI container) may not grant, and
    then every container fails to start with "error setting rlimits for ready
    process: ... operation not permitted".  Lowering a limit is always allowed.
    """
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    with open(path, "w") as conf:
        conf.write('[containers]\ndefault_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]\n'
                   % (nofile, nofile, NPROC, NPROC))


class Podman:
    """``podman system service`` with its own socket, storage and configuration."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.socket = "unix:///run/pbrx-images-test-podman-%d.sock" % os.getpid()
        self.process: subprocess.Popen | None = None
        self.made_run_dirs: list[str] = []

    def command(self, *args: str) -> list[str]:
        return ["podman", "--root", self.root + "/storage", "--runroot", self.root + "/run",
                "--tmpdir", self.root + "/tmp", "--network-config-dir", self.root + "/networks",
                "--cgroup-manager", "cgroupfs", *args]

    def environment(self) -> dict:
        return dict(os.environ, CONTAINERS_CONF=self.root + "/containers.conf")

    def start(self) -> None:
        #: netavark's run directory, which podman makes even for host networking
        self.made_run_dirs = [path for path in ("/run/containers", "/run/containers/networks")
                              if not os.path.exists(path)]
        _containers_conf(self.root + "/containers.conf")
        log = open(os.path.join(self.root, "podman.log"), "ab")
        self.process = subprocess.Popen(
            self.command("system", "service", "--time=0", self.socket),
            env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                docker.DockerClient(base_url=self.socket, timeout=5).ping()
                return
            except Exception:
                time.sleep(0.5)
        raise AssertionError("podman system service did not start (see %s/podman.log)"
                             % self.root)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with open(os.devnull, "wb") as devnull:  # containers a failed test left
            subprocess.run(self.command("rm", "--all", "--force"), env=self.environment(),
                           stdout=devnull, stderr=devnull, timeout=300)
        self._end_leftovers()
        with open(os.devnull, "wb") as devnull:
            subprocess.run(["umount", "-R", self.root + "/storage/overlay"], stderr=devnull)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket[len("unix://"):])
        for path in reversed(self.made_run_dirs):
            with contextlib.suppress(OSError):
                os.rmdir(path)  # only when empty

    def _end_leftovers(self) -> None:
        """Kill, by PID, the processes the service left that use this storage.

        The conmon of an exec session lingers for exit_command_delay (five
        minutes) after the exec ends, so that the API can still report its
        exit code (a delay of 0 breaks exec inspection), then runs ``podman
        container cleanup``, which would mount the storage again.  SIGKILL,
        so that no such clean-up runs.
        """
        prefix = self.root.encode() + b"/"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = False
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as cmdline:
                        argv = cmdline.read().split(b"\0")
                except OSError:
                    continue
                if os.path.basename(argv[0]) in (b"conmon", b"podman") and any(
                        arg.startswith(prefix) for arg in argv):
                    found = True
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
            if not found:
                return
            time.sleep(0.5)

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.socket, timeout=600)


@pytest.fixture(scope="module")
def podman(docker_client, base_image):
    """A podman service of the test's own, holding the base image."""
    if not shutil.which("podman"):
        missing("podman is missing: install Debian's podman (tools/test-all does)")
    root = tempfile.mkdtemp(prefix="pbrx-podman-", dir="/var/tmp")
    service = Podman(root)
    try:
        service.start()
        client = service.client()
        client.images.load(docker_client.images.get(base_image).save(named=base_image))
        client.close()
        yield service
    finally:
        service.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_full_build_against_podman(example_project, podman, base_image, docker_client,
                                   tmp_path):
    """Every kind of step: commits, volumes, archives, a Dockerfile build, a user."""
    (example_project / "Dockerfile.pgtool-version").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nLABEL org.example.custom=yes\n")
    # a layer cache of its own: podman's load needs the base image's layers too
    env = dict(os.environ, DOCKER_HOST=podman.socket, XDG_CACHE_HOME=str(tmp_path / "cache"))
    args = [str(example_project), "--base-image", base_image, "--network", "host",
            "--tag", "podman", "--user", "app:1234", "--smoke-test", "--format", "json"]
    run = build_images(*args, env=env)
    assert run.exit_code == 0
    assert "from the engine, which loads only complete archives" in run.output
    report, _ = json.JSONDecoder().raw_decode(run.output[run.output.index("\n{") + 1:])
    client = podman.client()
    assert {(image["name"], image["tag"]) for image in report["images"]} == {
        ("pgtool-base", "podman"), ("pgtool-report", "podman"), ("pgtool-version", "podman")}
    for image in report["images"]:
        assert client.images.get(image["id"]).tags and image["layers"]
    assert client.version()["Components"][0]["Name"] == "Podman Engine"
    report_image = client.images.get("pgtool-report:podman")
    assert report_image.attrs["Config"]["User"] == "app"
    assert report_image.labels["org.opencontainers.image.title"] == "pgtool-report"
    # podman's own localhost/...@sha256 digest of a loaded image is no registry's
    assert (report_image.labels["org.opencontainers.image.base.digest"]
            == docker_client.images.get(base_image).id)
    assert client.images.get("pgtool-version:podman").labels["org.example.custom"] == "yes"
    # host network: podman's own (netavark) would add iptables chains to the machine
    output = client.containers.run("pgtool-report:podman", remove=True, network_mode="host")
    assert b"psycopg2" in output
    assert not leftover_containers(client)
    # A second run reuses the builder and runtime package images podman keeps.
    again = build_images(*args[:-2], "--refresh", env=env)  # not the no-op fast path
    assert again.exit_code == 0
    assert "Builder image" in again.output and "pulling" not in again.output
    # ... and the layers it read from podman the first time, from the layer cache
    assert "loads only complete archives" not in again.output


def _test_layer(tmp_path) -> tuple[str, pathlib.Path]:
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as archive:
        info = tarfile.TarInfo("etc/pbrx-podman-load")
        info.size, info.mtime = 3, 0
        archive.addfile(info, io.BytesIO(b"yes"))
    return "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest(), layer


def _load_test_image(engine: Engine, cache: LayerCache, base_image: str, diff_id: str,
                     layer: pathlib.Path, tag: str) -> str:
    """Load the base image plus ``layer`` as ``tag``; the ID the engine gives it."""
    parent = engine.inspect(base_image)
    assert parent is not None
    config = image_config(parent, parent_history(engine.history(base_image), len(
        parent["RootFS"]["Layers"])), [NewLayer(diff_id, "test")], {}, rfc3339(0), "test")
    image = ArchivedImage(config, (tag,))
    try:
        load_archive(engine, cache, engine.reporter, [image], {diff_id: layer}, parent["Id"],
                     "the test image")
        found = engine.inspect(tag)
        assert found is not None and found["Id"] == image.id
        return image.id
    finally:
        engine.untag(tag)


def test_podman_gets_the_layers_it_needs_and_the_same_image_id_as_docker(
        podman, base_image, docker_client, tmp_path):
    """An archive that leaves out the parent's layers loads whole, under Docker's image ID.

    The parent's layers come from podman's save into the layer cache, checked
    against their diff IDs; the image ID is the sha256 of the configuration
    on both engines.
    """
    diff_id, layer = _test_layer(tmp_path)
    cache = LayerCache(tmp_path / "layers")
    ids = {}
    for name, client in (("podman", podman.client()), ("docker", docker_client)):
        engine = Engine(client, Reporter(stream=io.StringIO()))
        assert engine.needs_complete_archives == (name == "podman")
        ids[name] = _load_test_image(engine, cache, base_image, diff_id, layer,
                                     "pbrx-images-test/podman-load:%s" % name)
    assert ids["podman"] == ids["docker"]
    # podman's save of the base image put its layers into the cache, by diff ID
    base_layers = docker_client.images.get(base_image).attrs["RootFS"]["Layers"]
    assert sorted(path.name for path in cache.directory.glob("*.tar")) == sorted(
        item[7:] + ".tar" for item in base_layers)
    for item in base_layers:
        with open(cache.tar_path(item), "rb") as handle:
            assert "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest() == item


def test_an_engine_that_refuses_a_partial_archive_gets_a_complete_one(podman, base_image,
                                                                      tmp_path):
    """As an engine not known to need complete archives would, and then remembers it."""
    diff_id, layer = _test_layer(tmp_path)
    output = io.StringIO()
    engine = Engine(podman.client(), Reporter(stream=output))
    engine.needs_complete_archives = False
    _load_test_image(engine, LayerCache(tmp_path / "layers"), base_image, diff_id, layer,
                     "pbrx-images-test/podman-load:fallback")
    assert engine.needs_complete_archives
    assert "refused an archive without the layers it has" in output.getvalue()


def test_failures_on_podman_are_one_sentence(example_project, podman, base_image):
    """Podman's error replies and build stream are told as on Docker."""
    env = dict(os.environ, DOCKER_HOST=podman.socket)
    client = podman.client()
    run = build_images(str(example_project), "--base-image", "pbrx-images-test/nothing:here",
                       "--network", "host", env=env)
    assert_clean_failure(run, "pbrx-images-test/nothing:here", "could not be pulled")
    bindep = example_project / "bindep.txt"
    good_bindep = bindep.read_text()
    bindep.write_text("libpq5\nno-such-package-pbrx [platform:dpkg]\n")
    run = build_images(str(example_project), "--base-image", base_image, "--network", "host",
                       "--tag", "missing", env=env)
    assert_clean_failure(run, "'no-such-package-pbrx'", base_image)
    bindep.write_text(good_bindep)
    (example_project / "Dockerfile.pgtool-report").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN exit 3\n")
    run = build_images(str(example_project), "--base-image", base_image, "--network", "host",
                       "--tag", "dfail", env=env)
    assert_clean_failure(run, "docker build -f Dockerfile.pgtool-report")
    assert not leftover_containers(client)
    assert not [tag for image in client.images.list() for tag in image.tags
                if "dfail" in tag or "pbrx-images-work" in tag]
