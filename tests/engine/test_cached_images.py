"""Cached builder and runtime images of a base image name that moved are removed.

A base image name (a tag of the local base image's derivatives, so the
cached images of the other tests stay) points at one image for a first
build, then at another for a second: the second build removes the cached
images the first made, says so, and keeps its own.
"""
from __future__ import annotations

import json
import os

import pytest

from tests.engine.helpers import build_images, derived_image, remove_volume, write_python_project

pytestmark = pytest.mark.engine

NAME = "movingbase"
ALIAS = "pbrx-images-test/moving-base:latest"
PREFIX = "pbrx-moving-test"


def _exists(client, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except Exception:
        return False


def test_cached_images_of_what_a_base_name_was_before_are_removed(
        tmp_path, docker_client, base_image):
    first = derived_image(docker_client, base_image, "pbrx-images-test/moving-base-1:1",
                          "echo 1 > /etc/moving-base")
    second = derived_image(docker_client, base_image, "pbrx-images-test/moving-base-2:1",
                           "echo 2 > /etc/moving-base")
    project = write_python_project(tmp_path / NAME, NAME, {NAME + "/__init__.py": ""},
                                   dependencies=[])
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    records = tmp_path / "cache" / "pbrx-images" / "cached-images"
    made: dict[str, list[str]] = {}
    user = None
    try:
        for image in (first, second):
            if image == second:  # a container of one of them: the engine keeps that image
                user = docker_client.containers.create(made[first][0], ["true"])
            docker_client.images.get(image).tag(ALIAS)
            run = build_images(str(project), "--base-image", ALIAS, "--prefix", PREFIX,
                               env=env)
            assert run.exit_code == 0
            (record,) = [json.loads(path.read_text()) for path in records.glob("*.json")]
            assert record["base_name"] == ALIAS
            assert record["base_id"] == docker_client.images.get(image).id
            made[image] = record["images"]
        assert len(made[first]) == 2  # the builder and runtime-packages images
        in_use, unused = made[first]
        assert not _exists(docker_client, unused)
        assert "removed %s, made from an older %s" % (unused, ALIAS) in run.output
        # the one in use stays, and in the record, for the next time the name moves
        assert _exists(docker_client, in_use) and "removed %s" % in_use not in run.output
        assert in_use in made[second] and unused not in made[second]
        assert all(_exists(docker_client, name) for name in made[second])
        assert len(made[second]) == 3
    finally:
        if user is not None:
            user.remove(force=True)
        names = [name for images in made.values() for name in images]
        names += ["%s/%s-base:latest" % (PREFIX, NAME), ALIAS]
        for name in names:
            try:
                docker_client.images.remove(name)
            except Exception:
                pass
        remove_volume(docker_client, "pbrx-images-wheels-%s" % NAME)
