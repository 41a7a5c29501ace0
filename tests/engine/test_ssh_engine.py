"""A full build through ``DOCKER_HOST=ssh://``: the OpenSSH client to an sshd of the test's own.

The sshd listens on a free port of 127.0.0.1 with its own host key, and
lets in one key the test makes.  The ssh client is given its own
configuration (identity, known hosts) by an ``ssh`` wrapper first on PATH,
so nothing of the machine's or the user's ssh setup is used or changed.  At
the other end, ``docker system dial-stdio`` reaches this machine's engine.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from tests.engine.helpers import build_images, free_port, missing

pytestmark = pytest.mark.engine

SSHD = "/usr/sbin/sshd"


@pytest.fixture
def ssh_engine(tmp_path, docker_client):
    """``(DOCKER_HOST, environment)`` of an ssh:// engine on a loopback port."""
    if not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("docker")):
        missing("sshd, ssh or the docker CLI is missing: install Debian's openssh-server "
                "and docker.io (tools/test-all does)")
    home = tmp_path / "ssh"
    home.mkdir(mode=0o700)
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / key)],
                       check=True)
    (home / "authorized_keys").write_text((home / "client_key.pub").read_text())
    port = free_port()
    (home / "sshd_config").write_text(
        "ListenAddress 127.0.0.1\nPort %d\nHostKey %s\nAuthorizedKeysFile %s\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PidFile %s\nAllowUsers root\n"
        % (port, home / "host_key", home / "authorized_keys", home / "sshd.pid"))
    host_key = (home / "host_key.pub").read_text().split()
    (home / "known_hosts").write_text("[127.0.0.1]:%d %s %s\n"
                                      % (port, host_key[0], host_key[1]))
    (home / "ssh_config").write_text(
        "Host 127.0.0.1\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n"
        "  StrictHostKeyChecking yes\n  BatchMode yes\n"
        % (home / "client_key", home / "known_hosts"))
    (home / "bin").mkdir()
    wrapper = home / "bin" / "ssh"
    wrapper.write_text('#!/bin/sh\nexec %s -F %s "$@"\n'
                       % (shutil.which("ssh"), home / "ssh_config"))
    wrapper.chmod(0o755)
    made_run_dir = not os.path.isdir("/run/sshd")
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    log = open(home / "sshd.log", "wb")
    sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(home / "sshd_config")],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if sshd.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("sshd did not start: %s"
                                     % (home / "sshd.log").read_text()[-2000:])
            time.sleep(0.2)
        env = dict(os.environ, PATH="%s:%s" % (home / "bin", os.environ["PATH"]),
                   DOCKER_HOST="ssh://root@127.0.0.1:%d" % port)
        yield env["DOCKER_HOST"], env
    finally:
        sshd.terminate()
        sshd.wait(timeout=30)
        log.close()
        if made_run_dir:
            shutil.rmtree("/run/sshd", ignore_errors=True)


def test_full_build_over_ssh(example_project, ssh_engine, base_image, docker_client):
    _, env = ssh_engine
    run = build_images(str(example_project), "--base-image", base_image, "--network", "host",
                       "--tag", "ssh-engine", env=env)
    assert run.exit_code == 0
    # the other end of the ssh connection is this machine's engine
    image = docker_client.images.get("pgtool-report:ssh-engine")
    output = docker_client.containers.run(image.id, remove=True, network_mode="host")
    assert b"psycopg2" in output
    for name in ("pgtool-base", "pgtool-report", "pgtool-version"):
        docker_client.images.remove("%s:ssh-engine" % name)


def test_unreachable_ssh_engine_says_what_to_check(example_project):
    address = "ssh://root@127.0.0.1:%d" % free_port()
    env = dict(os.environ, DOCKER_HOST=address)
    run = build_images(str(example_project), "--dry-run", env=env)
    assert run.exit_code == 1
    assert ("build-images: error: No Docker engine answers at %s: check that 'ssh %s docker "
            "version' works" % (address, address)) in run.output
    assert "Traceback" not in run.output and "paramiko" not in run.output


def test_ssh_without_paramiko_says_how_to_get_it(example_project, tmp_path):
    """The SDK loads its ssh transport only with paramiko: say so, not "no engine"."""
    (tmp_path / "paramiko.py").write_text("raise ImportError('no paramiko here')\n")
    env = dict(os.environ, DOCKER_HOST="ssh://root@127.0.0.1:%d" % free_port(),
               PYTHONPATH=str(tmp_path))
    run = build_images(str(example_project), "--dry-run", env=env)
    assert run.exit_code == 1
    assert ("build-images: error: DOCKER_HOST is %s, and the Docker SDK needs paramiko for "
            "ssh:// engines: install it (pip install 'pbrx-images[ssh]') and try again."
            % env["DOCKER_HOST"]) in run.output
