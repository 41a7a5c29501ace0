"""The runtime images' configuration (pure parts of the runtime stage)."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from pbrx_images.oci.image_archive import NewLayer, image_config
from pbrx_images.oci.layer import LayerPlan, group
from pbrx_images.plan import ImagePlan
from pbrx_images.plan.lock import Lock
from pbrx_images.plan.runtime_image import (DEFAULT_PATH, base_entrypoint, create_user_command,
                                            image_requirement, layer_created_by, layer_description,
                                            layer_distributions, parent_labels, search_path,
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


@pytest.mark.parametrize("layer, expected", [
    ({"created_by": "pbrx-images: psycopg2 2.9.9", "comment": "pbrx-images dependency"},
     [{"name": "psycopg2", "version": "2.9.9"}]),
    ({"created_by": "pbrx-images: pgtool 1.0.0", "comment": "pbrx-images project"},
     [{"name": "pgtool", "version": "1.0.0"}]),
    ({"created_by": "pbrx-images: 2 smaller distributions: a 1.0, b-c 2.0rc1",
      "comment": "pbrx-images group"},
     [{"name": "a", "version": "1.0"}, {"name": "b-c", "version": "2.0rc1"}]),
    ({"created_by": "pbrx-images: user app", "comment": "pbrx-images user"}, []),
    ({"created_by": "pbrx-images: files of no or of several distributions",
      "comment": "pbrx-images leftovers"}, []),
    ({"created_by": "/bin/sh -c apt-get install -y x", "comment": ""}, []),
    ({"created_by": "pbrx-images: CMD [\"x\"]", "comment": "pbrx-images"}, []),
])
def test_layers_name_the_distributions_they_hold(layer, expected):
    assert layer_distributions(layer) == expected


def test_what_a_layer_is_called_is_read_back_for_every_kind():
    """Round trip: the history written for split and grouped layers names their distributions."""
    def plan(name, version, size, kind="dependency"):
        return LayerPlan("%s %s" % (name, version), ["site-packages/%s.py" % name], size, kind,
                         name=name)
    layers = [plan("big", "1.0", 300), plan("small-a", "2.0", 2), plan("small_b", "3.0rc1", 1),
              LayerPlan("files of no or of several distributions", ["x"], 1, "leftovers"),
              plan("app", "0.1.dev3", 5, "project")]
    grouped, merged = group(layers, 4)
    assert [layer.kind for layer in grouped] == ["dependency", "group", "leftovers", "project"]
    assert merged == ["small-a 2.0", "small_b 3.0rc1"]
    config = json.loads(image_config(
        {"RootFS": {"Layers": []}}, [],
        [NewLayer("sha256:%064d" % number, layer_created_by(layer.description), layer.kind)
         for number, layer in enumerate(grouped)], {}, "1970-01-01T00:00:00Z", "pbrx-images"))
    read = [layer_distributions({"created_by": entry["created_by"], "comment": entry["comment"]})
            for entry in config["history"]]
    assert [layer_description(entry["created_by"]) for entry in config["history"]] == [
        layer.description for layer in grouped]
    assert layer_description("/bin/sh -c apt-get install -y x") == \
        "/bin/sh -c apt-get install -y x"
    assert read == [[{"name": "big", "version": "1.0"}],
                    [{"name": "small-a", "version": "2.0"},
                     {"name": "small_b", "version": "3.0rc1"}],
                    [],
                    [{"name": "app", "version": "0.1.dev3"}]]
