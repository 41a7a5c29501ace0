"""Ctrl-C and SIGTERM in the middle of a build leave nothing behind."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.engine.helpers import has_traceback, leftover_containers, remove_volume, work_tags

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("signum, expected_exit", [(signal.SIGTERM, 143),
                                                   (signal.SIGINT, 130)])
def test_interrupt_while_wheels_compile(example_project, docker_client, base_image,
                                        signum, expected_exit):
    name = "pgtool-interrupt-%d" % signum
    pyproject = example_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "pgtool"', 'name = "%s"' % name))
    volume = "pbrx-images-wheels-" + name
    # an empty wheel cache: psycopg2 has to compile when the signal comes
    remove_volume(docker_client, volume)
    # A tag that exists before the build must point at the same image afterwards.
    docker_client.images.get(base_image).tag(name + "-base", "latest")
    old_id = docker_client.images.get(name + "-base:latest").id

    process = subprocess.Popen(
        [sys.executable, "-m", "pbrx_images.cli", str(example_project),
         "--base-image", base_image],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    deadline = time.monotonic() + 600
    for raw in process.stdout:
        lines.append(raw.decode())
        if lines[-1].startswith("==> Wheels"):
            break
        assert time.monotonic() < deadline, "".join(lines)
    time.sleep(3)  # inside the wheel build
    process.send_signal(signum)
    signalled = time.monotonic()
    rest, _ = process.communicate(timeout=60)
    output = "".join(lines) + rest.decode()
    print(output)
    assert process.returncode == expected_exit
    assert time.monotonic() - signalled < 30
    assert not has_traceback(output)
    assert leftover_containers(docker_client) == []
    assert work_tags(docker_client) == []
    assert docker_client.images.get(name + "-base:latest").id == old_id
    runs = docker_client.containers.run(
        base_image, ["sh", "-c", "ls /w/runs 2>/dev/null | wc -l"], remove=True,
        volumes={volume: {"bind": "/w", "mode": "ro"}}).decode().strip()
    assert runs == "0"
