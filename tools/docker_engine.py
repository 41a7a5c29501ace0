#!/usr/bin/env python3
"""Make sure a Docker engine answers, starting a local dockerd if need be.

Used by ``.ci/run``, the engine tests and the bundled example.  If no engine
answers through the standard environment (``DOCKER_HOST`` or the default
socket) and this runs as root, it installs Debian's ``docker.io`` when
``dockerd`` is missing, starts ``dockerd`` in the background (log in
``/tmp/pbrx-images-dockerd.log``) and waits until it answers.

Usage: ``python3 tools/docker_engine.py`` exits 0 once an engine answers.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import docker

LOG = "/tmp/pbrx-images-dockerd.log"


def answers() -> bool:
    try:
        client = docker.from_env(timeout=10)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


def _say(message: str) -> None:
    print("docker engine: " + message, file=sys.stderr, flush=True)


def _install() -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _say("installing docker.io")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "docker.io"], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def ensure(timeout: float = 90) -> bool:
    """True once an engine answers; starts one if this process may."""
    if answers():
        return True
    if os.environ.get("DOCKER_HOST") or os.geteuid() != 0:
        return False  # someone else's engine, or no right to start one
    if not shutil.which("dockerd"):
        if not shutil.which("apt-get"):
            return False
        _install()
        if answers():  # the package may have started it
            return True
    _say("starting dockerd (log: %s)" % LOG)
    with open(LOG, "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers():
            return True
        time.sleep(1)
    return False


if __name__ == "__main__":
    if not ensure():
        sys.exit("No Docker engine answers and none could be started (see %s)." % LOG)
