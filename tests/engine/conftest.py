"""Fixtures of the engine tests: a second dockerd the test owns."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import docker
import pytest


BRIDGE = "pbrx-test0"
#: Link-local: the bridge is never routed anywhere and no container uses it
#: (builds run with --network host); dockerd only needs a bridge of its own.
BRIDGE_ADDRESS = "169.254.250.1/24"


class Dockerd:
    """A second dockerd with its own socket, data and bridge.

    ``--bridge none`` is not an option: dockerd then deletes the default
    bridge, docker0, which belongs to the engine the other tests use.
    """

    def __init__(self, root: str, host: str | None = None) -> None:
        self.root = root
        #: where it listens (the name is kept from when it was always a socket)
        self.socket = host or "unix://%s/docker.sock" % root
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(os.path.join(self.root, "dockerd.log"), "ab")
        self.process = subprocess.Popen(
            ["dockerd", "--host", self.socket, "--data-root", self.root + "/data",
             "--exec-root", self.root + "/exec", "--pidfile", self.root + "/dockerd.pid",
             "--bridge", BRIDGE, "--iptables=false", "--ip-masq=false"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                docker.DockerClient(base_url=self.socket, timeout=5).ping()
                return
            except Exception:
                time.sleep(0.5)
        raise AssertionError("the test's dockerd did not start (see %s/dockerd.log)" % self.root)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.socket, timeout=600)


@pytest.fixture(params=["unix"])
def second_engine(request, docker_client, base_image):
    """A dockerd of the test's own (socket, data root, bridge) with the base image."""
    if not shutil.which("dockerd"):
        pytest.fail("dockerd is not installed")
    root = tempfile.mkdtemp(prefix="pbrx-dockerd-", dir="/var/tmp")
    from tests.engine.helpers import free_port

    host = ("tcp://127.0.0.1:%d" % free_port()) if request.param == "tcp" else None
    subprocess.run(["ip", "link", "delete", BRIDGE], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "link", "add", "name", BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE], check=True)
    engine = Dockerd(root, host)
    try:
        engine.start()
        engine.client().images.load(docker_client.api.get_image(base_image))
        yield engine
    finally:
        engine.stop()
        # dockerd leaves mounts in both roots (overlay data, the netns file
        # in exec/netns); any left makes rmtree fail and the directory stay.
        for mounted in ("/data", "/exec/netns/default", "/exec"):
            subprocess.run(["umount", "-R", root + mounted], stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["ip", "link", "delete", BRIDGE], stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A docker-registry with htpasswd on a loopback port (see helpers.running_registry)."""
    from tests.engine.helpers import running_registry

    with running_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running
