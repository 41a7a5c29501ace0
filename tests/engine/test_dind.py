"""A full build against Docker-in-Docker: a dockerd running in a container.

The DinD image is made here from the test base image and Debian's docker.io
(nothing can be pulled).  Its container runs with (almost) every capability
in a network of its own, with its data root in a volume; its dockerd listens
inside it and is published on a free port of 127.0.0.1 only.  The build reaches it with
``DOCKER_HOST=tcp://127.0.0.1:PORT`` and runs its own containers with
``--network host``: the DinD container's network, never the machine's.
"""
from __future__ import annotations

import hashlib
import os
import time

import docker
import docker.errors
import pytest

from tests.engine.helpers import build_images, free_port, leftover_containers, run_image

pytestmark = pytest.mark.engine

#: What the DinD image adds to the base image: Debian's Docker engine.
PACKAGES = "docker.io iproute2 procps"
INNER_PORT = 2375
#: Every capability of Docker 20.10's list but SYS_RESOURCE, instead of
#: --privileged: a dockerd without CAP_SYS_RESOURCE itself (this VM's, for
#: one) cannot start a privileged container ("unable to apply caps").
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
    "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT",
    "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ")
#: Unprivileged, the container's cgroup hierarchies are mounted read-only;
#: the inner dockerd must make cgroups for its containers, so they are
#: remounted read-write first (as --privileged would have them).  On cgroup
#: v2 the container's own processes then move to a child group so that the
#: controllers can be enabled below the root (what docker's dind script does).
ENTRYPOINT = (
    "for mount in $(awk '$3 == \"cgroup\" || $3 == \"cgroup2\" {print $2}' /proc/mounts); "
    "do mount -o remount,bind,rw \"$mount\" || exit 1; done; "
    "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then "
    "mkdir -p /sys/fs/cgroup/init && "
    "xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs; "
    "sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers "
    "> /sys/fs/cgroup/cgroup.subtree_control; fi; "
    "exec dockerd --host tcp://0.0.0.0:%d --iptables=false --ip-masq=false --ip-forward=false")


def _dind_image(client: docker.DockerClient, base_image: str) -> str:
    """``pbrx-images-test/dind:HASH``: the base image with docker.io, made once."""
    base_id = client.images.get(base_image).id
    name = "pbrx-images-test/dind:" + hashlib.sha256(
        (base_id + PACKAGES).encode()).hexdigest()[:12]
    try:
        client.images.get(name)
        return name
    except docker.errors.ImageNotFound:
        pass
    container = client.containers.create(
        base_image, ["sh", "-c", "apt-get update -q && DEBIAN_FRONTEND=noninteractive "
                     "apt-get install -y -q --no-install-recommends %s && apt-get clean && "
                     "rm -rf /var/lib/apt/lists/*" % PACKAGES],
        network_mode="host", name="pbrx-engines-dind-image-%d" % os.getpid())
    try:
        container.start()
        result = container.wait(timeout=900)
        assert result["StatusCode"] == 0, container.logs()[-3000:].decode("utf-8", "replace")
        repository, _, tag = name.rpartition(":")
        container.commit(repository, tag)
    finally:
        container.remove(force=True)
    return name


@pytest.fixture
def dind(docker_client, base_image):
    """A dockerd in a container: its address, a client of it, the container."""
    image = _dind_image(docker_client, base_image)
    name = "pbrx-engines-dind-%d" % os.getpid()
    port = free_port()
    address = "tcp://127.0.0.1:%d" % port
    volume = docker_client.volumes.create(name)
    api = docker_client.api
    container = None
    try:
        host_config = api.create_host_config(
            cap_add=list(CAPABILITIES), security_opt=["seccomp=unconfined",
                                                      "apparmor=unconfined"],
            binds={volume.name: {"bind": "/var/lib/docker", "mode": "rw"}},
            port_bindings={INNER_PORT: ("127.0.0.1", port)})
        host_config.update(MaskedPaths=[], ReadonlyPaths=[])  # what --privileged unmasks
        created = api.create_container(
            image, entrypoint=["sh", "-c", ENTRYPOINT % INNER_PORT], command=[], name=name,
            host_config=host_config, ports=[INNER_PORT])
        container = docker_client.containers.get(created["Id"])
        container.start()
        deadline = time.monotonic() + 120
        while True:
            try:
                inner = docker.DockerClient(base_url=address, timeout=600)
                inner.ping()
                break
            except Exception:
                container.reload()
                if container.status != "running" or time.monotonic() > deadline:
                    raise AssertionError("the DinD dockerd did not start:\n" + container.logs(
                        tail=30).decode("utf-8", "replace"))
                time.sleep(1)
        inner.images.load(docker_client.images.get(base_image).save(named=base_image))
        yield address, inner, container
        inner.close()
    finally:
        if container is not None:
            container.stop(timeout=30)  # the inner dockerd unmounts what it mounted
            container.remove(force=True, v=True)
        volume.remove(force=True)


def test_full_build_against_docker_in_docker(example_project, dind, base_image,
                                             docker_client):
    address, inner, container = dind
    env = dict(os.environ, DOCKER_HOST=address)
    run = build_images(str(example_project), "--base-image", base_image, "--network", "host",
                       "--tag", "dind", env=env)
    assert run.exit_code == 0
    # the images are in the inner engine, not in the machine's
    assert inner.images.get("pgtool-report:dind")
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get("pgtool-report:dind")
    exit_code, output = run_image(inner, "pgtool-report:dind")
    assert exit_code == 0, output
    assert "psycopg2" in output
    assert not leftover_containers(inner)
    assert container.attrs["HostConfig"]["PortBindings"] == {
        "%d/tcp" % INNER_PORT: [{"HostIp": "127.0.0.1", "HostPort": address.rsplit(":", 1)[1]}]}
