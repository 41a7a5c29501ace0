"""Metadata that setuptools vendors is not taken for installed distributions.

setuptools keeps the ``*.dist-info`` of the copies it vendors in
``setuptools/_vendor/`` (packaging, jaraco.*, zipp, wheel...) and lists them
in its own RECORD.  Only a ``*.dist-info`` directly in site-packages is a
distribution: the image gets one layer for setuptools, none named after a
vendored copy, no leftovers layer, and the SBOM lists setuptools once.
The setuptools wheel is the index's, as every pbr project's images get it.
"""
from __future__ import annotations

import json
import os

import pytest

from tests.engine.helpers import (build_report, remove_images, remove_volume, run_image,
                                  write_python_project)

pytestmark = pytest.mark.engine

PREFIX = "pbrx-test-vendored"
PROJECT = "vendoredapp"
TAG = "vendored"
VENDORED = ("import glob, os, json; print(json.dumps(sorted(os.path.basename(p) for p in "
            "glob.glob('/opt/venv/lib/python3*/site-packages/*/_vendor/*.dist-info'))))")


@pytest.fixture(scope="module")
def built(tmp_path_factory, docker_client, base_image):
    project = write_python_project(
        tmp_path_factory.mktemp("vendored") / PROJECT, PROJECT,
        {PROJECT + "/__init__.py": "", PROJECT + "/cli.py": "def main():\n    print('hi')\n"},
        version="1.0", dependencies=["setuptools"],
        scripts={PROJECT + "-hi": PROJECT + ".cli:main"})
    sbom_dir = tmp_path_factory.mktemp("sbom")
    # a layer cache of its own: the layers are split by this build, not found cached
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path_factory.mktemp("cache")))
    run, report = build_report(str(project), "--base-image", base_image, "--prefix", PREFIX,
                               "--tag", TAG, "--network", "host", "--sbom-dir", str(sbom_dir),
                               env=env)
    yield run, report, sbom_dir
    remove_images(docker_client, ["%s/%s:%s" % (PREFIX, name, TAG)
                                  for name in (PROJECT + "-base", PROJECT + "-hi")])
    remove_volume(docker_client, "pbrx-images-wheels-%s" % PROJECT)


def test_setuptools_vendors_metadata(built, docker_client):
    """The index's setuptools still vendors dist-infos: else this module proves nothing."""
    code, output = run_image(docker_client, "%s/%s-base:%s" % (PREFIX, PROJECT, TAG),
                             ["/opt/venv/bin/python", "-c", VENDORED], entrypoint=[])
    assert code == 0, output
    assert len(json.loads(output)) >= 3, output


def test_one_layer_for_setuptools_and_no_leftovers(built):
    run, report, _ = built
    assert run.exit_code == 0
    assert "files that no or several distributions' RECORDs claim" not in run.output
    for image in report["images"]:
        comments = [str(layer.get("comment")) for layer in image["layers"]]
        assert not any(comment.endswith("leftovers") for comment in comments), comments
        names = sorted(item["name"] for layer in image["layers"]
                       for item in layer["distributions"])
        assert names == ["setuptools", PROJECT], names


def test_the_sbom_lists_installed_distributions_only(built):
    _, report, sbom_dir = built
    for image in report["images"]:
        with open(image["sbom"]["path"]) as handle:
            document = json.load(handle)
        pypi = sorted(component["name"] for component in document["components"]
                      if component.get("purl", "").startswith("pkg:pypi/"))
        assert pypi == ["setuptools", PROJECT], pypi
