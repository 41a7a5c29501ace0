"""The engine going away mid-build, or refusing us, on a dockerd the test starts."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from tests.engine.helpers import build_images, has_traceback

pytestmark = pytest.mark.engine


def test_engine_stops_mid_build_then_next_run_works(example_project, second_engine, base_image):
    env = dict(os.environ, DOCKER_HOST=second_engine.socket)
    args = [sys.executable, "-m", "pbrx_images.cli", str(example_project), "--base-image",
            base_image, "--network", "host"]
    process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    for raw in process.stdout:
        lines.append(raw.decode())
        if lines[-1].startswith("==> Wheels"):
            break
    else:
        process.wait()
        pytest.fail("the build ended (exit %s) before its wheel step; its last lines:\n%s"
                    % (process.returncode, "".join(lines[-60:])))
    time.sleep(2)
    second_engine.stop()
    output = "".join(lines) + process.communicate(timeout=120)[0].decode()
    print(output)
    assert process.returncode == 1
    assert not has_traceback(output)
    errors = [line for line in output.splitlines() if line.startswith("build-images: error:")]
    assert len(errors) == 1, output
    assert "Lost the Docker engine" in errors[0] or "No Docker engine answers" in errors[0]

    second_engine.start()
    run = build_images(str(example_project), "--base-image", base_image, "--network", "host",
                       env=env)
    assert run.exit_code == 0
    client = second_engine.client()
    assert [c.name for c in client.containers.list(all=True)
            if c.name.startswith("pbrx-images-")] == []
    container = client.containers.run("pgtool-version", remove=True, network_mode="host")
    assert b"psycopg2" in container


def test_main_engine_unharmed(docker_client, base_image):
    """The second dockerd left the other engine's default network alone."""
    output = docker_client.containers.run(base_image, ["true"], remove=True)
    assert output == b""


def _importable_copy(target: str) -> None:
    """Copy pbrx_images and the packages it can import into ``target``.

    The user the test switches to may not be able to read this checkout or
    its virtualenv (a checkout under a private temporary directory).
    """
    import pbrx_images

    # Whole site-packages directories (copying module by module tripped over
    # packages whose names collide with files copied before them), then the
    # checkout's pbrx_images when it is not installed there.
    for entry in sys.path:
        if entry and "site-packages" in entry and os.path.isdir(entry):
            shutil.copytree(entry, target, symlinks=True, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
    package = os.path.dirname(pbrx_images.__file__)
    shutil.copytree(package, os.path.join(target, "pbrx_images"), dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for current, dirs, files in os.walk(target):
        os.chmod(current, 0o755)
        for name in files:
            os.chmod(os.path.join(current, name), 0o644)


def test_socket_not_permitted(example_project, docker_client):
    """A user who may not use the engine's socket is told so."""
    world = tempfile.mkdtemp(prefix="pbrx-perm-", dir="/var/tmp")
    try:
        _importable_copy(os.path.join(world, "lib"))
        project = shutil.copytree(example_project, os.path.join(world, "pgtool"))
        for current, dirs, files in os.walk(world):
            os.chmod(current, 0o755)
        interpreter = getattr(sys, "_base_executable", None) or sys.executable
        completed = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
             interpreter, "-m", "pbrx_images.cli", project],
            env=dict(os.environ, HOME=world, XDG_CACHE_HOME=world + "/cache",
                     PYTHONPATH=os.path.join(world, "lib"),
                     DOCKER_HOST="unix:///var/run/docker.sock"),
            cwd=world, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=120)
        output = completed.stdout.decode()
        print(output)
        assert completed.returncode == 1
        assert not has_traceback(output)
        errors = [line for line in output.splitlines()
                  if line.startswith("build-images: error:")]
        assert len(errors) == 1 and "Permission denied" in errors[0], output
    finally:
        shutil.rmtree(world, ignore_errors=True)
