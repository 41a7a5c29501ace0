"""The runtime images' configuration (pure parts of the runtime stage)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from pbrx_images.plan import ImagePlan
from pbrx_images.plan.lock import Lock
from pbrx_images.plan.runtime_image import (DEFAULT_PATH, base_entrypoint, create_user_command,
                                            image_requirement, parent_labels, search_path,
                                            with_env)
from pbrx_images.plan.wheel_volume import WHEELS, WheelBuild
from pbrx_images.project.metadata import ProjectMetadata

PARENT = {"Config": {"Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
                     "Labels": {"org.opencontainers.image.title": "base"}}}


def test_with_env_replaces_in_place_and_appends_the_rest():
    assert with_env(PARENT, {"PATH": "/opt/venv/bin:/usr/bin:/bin", "VIRTUAL_ENV": "/opt/venv"}) \
        == ["PATH=/opt/venv/bin:/usr/bin:/bin", "LANG=C.UTF-8", "VIRTUAL_ENV=/opt/venv"]
    assert PARENT["Config"]["Env"] == ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"]  # a copy
    assert with_env({"Config": {"Env": None}}, {"A": "1"}) == ["A=1"]
    assert with_env({}, {}) == []


def test_parent_labels_are_a_copy():
    labels = parent_labels(PARENT)
    labels["x"] = "y"
    assert PARENT["Config"]["Labels"] == {"org.opencontainers.image.title": "base"}
    assert parent_labels({"Config": {"Labels": None}}) == {}


def test_search_path_of_the_env_or_the_default():
    assert search_path(("LANG=C", "PATH=/usr/local/bin:/usr/bin")) == "/usr/local/bin:/usr/bin"
    assert search_path(("LANG=C",)) == DEFAULT_PATH
    assert search_path(("PATHX=/nope",)) == DEFAULT_PATH


def test_image_requirement_names_the_run_wheel_with_the_image_extra():
    wheels = WheelBuild(ProjectMetadata("app", "1.0", (), (), "wheel"), "app-1.0-py3-none-any.whl",
                        Lock(()),
                        "pip-26-py3-none-any.whl")
    base = ImagePlan("app-base:latest", None, None)
    api = ImagePlan("app-api:latest", "app-api", "api")
    assert image_requirement("r1", wheels, base) == \
        WHEELS + "/runs/r1/app-1.0-py3-none-any.whl"
    assert image_requirement("r1", wheels, api) == \
        WHEELS + "/runs/r1/app-1.0-py3-none-any.whl[api]"


def test_the_entrypoint_is_the_init():
    assert base_entrypoint() == ("/usr/bin/dumb-init", "--")


@pytest.mark.parametrize("user, uid, words", [
    ("app", None, ["useradd --user-group --create-home", "adduser -D -s /sbin/nologin app"]),
    ("app", 1234, ["useradd --uid 1234 --user-group", "adduser -D -u 1234 -s /sbin/nologin"]),
    ("o'brien", None, ["'o'\"'\"'brien'"]),  # quoted for sh
])
def test_create_user_command(user, uid, words):
    command = create_user_command(user, uid)
    for word in words:
        assert word in command
    assert command.startswith("id -u ")


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
def test_create_user_command_is_valid_sh():
    completed = subprocess.run(["sh", "-n", "-c", create_user_command("app", 7)])
    assert completed.returncode == 0
