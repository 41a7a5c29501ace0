"""Shared test fixtures: the engine, a local base image, project copies."""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


@pytest.fixture(scope="session")
def docker_client():
    """A Docker SDK client for a real engine (started if this process may)."""
    import docker
    import docker_engine

    if not docker_engine.ensure():
        message = ("No Docker engine answers (DOCKER_HOST or the default socket) and none "
                   "could be started; see %s." % docker_engine.LOG)
        if in_ci():
            pytest.fail(message)  # in CI a skipped engine test is a broken setup
        pytest.skip(message)
    client = docker.from_env(timeout=600)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The local Debian bookworm + python3 image, made when missing."""
    import base_image as base_image_module

    return base_image_module.ensure(docker_client)


def tree_digest(path: Path) -> str:
    """A digest of every path, mode and content below ``path`` (times excluded)."""
    digest = hashlib.sha256()
    for current, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(current, name)
            stat = os.lstat(full)
            digest.update(("%s\0%o\0%d\0%d\0" % (os.path.relpath(full, path), stat.st_mode,
                                                 stat.st_uid, stat.st_gid)).encode())
            if os.path.isfile(full) and not os.path.islink(full):
                with open(full, "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


@pytest.fixture
def example_project(tmp_path) -> Path:
    """A private copy of the bundled example (pgtool)."""
    target = tmp_path / "pgtool"
    shutil.copytree(ROOT / "examples" / "pgtool", target)
    return target
