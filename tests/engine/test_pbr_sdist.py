"""A pbr project (setup.cfg [extras], several scripts) built from its sdist.

The sdist has no git metadata: pbr takes the version from PKG-INFO, which is
what users get when they build from a release tarball.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from tests.conftest import ROOT
from tests.engine.helpers import build_images, leftover_containers, remove_volume, run_image

pytestmark = pytest.mark.engine

VERSION = "1.2.3"


@pytest.fixture(scope="module")
def sdist_project(tmp_path_factory):
    work = tmp_path_factory.mktemp("pbrdemo")
    shutil.copytree(ROOT / "tests" / "fixtures" / "pbrdemo", work / "src")
    env = dict(os.environ, PBR_VERSION=VERSION)
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(work)],
                   cwd=work / "src", env=env, check=True)
    archive = work / ("pbrdemo-%s.tar.gz" % VERSION)
    with tarfile.open(archive) as tar:
        tar.extractall(work / "unpacked")
    project = work / "unpacked" / ("pbrdemo-%s" % VERSION)
    assert (project / "PKG-INFO").is_file() and not (project / ".git").exists()
    return project


@pytest.fixture(scope="module")
def built(sdist_project, docker_client, base_image):
    # No wheel or build environment kept from an earlier run: the project's wheel is built.
    remove_volume(docker_client, "pbrx-images-wheels-pbrdemo")
    return build_images(str(sdist_project), "--base-image", base_image, "--tag", "sdist")


def test_all_images_built(built, docker_client):
    assert built.exit_code == 0
    # setup.py's setup_requires (pbr) is what the legacy backend asks for: without it the
    # wheel would be "pbrdemo 0.0.0" with no scripts, and no script image would be built
    assert ("built by setuptools.build_meta:__legacy__ in the new build environment "
            "(setuptools>=40.8.0 pbr)") in built.output
    for name in ("pbrdemo-base", "pbrdemo-api", "pbrdemo-manage", "pbrdemo-worker"):
        assert docker_client.images.get("%s:sdist" % name)
    assert leftover_containers(docker_client) == []


def test_scripts_run_with_their_extras(built, docker_client):
    code, output = run_image(docker_client, "pbrdemo-api:sdist")
    assert code == 0 and output.startswith("pbrdemo-api %s idna " % VERSION), output
    code, output = run_image(docker_client, "pbrdemo-manage:sdist")
    assert code == 0 and output.startswith("pbrdemo-manage %s six " % VERSION), output
    code, output = run_image(docker_client, "pbrdemo-worker:sdist")
    assert code == 0 and output.strip() == "pbrdemo-worker %s" % VERSION, output


def test_base_extra_everywhere_script_extra_only_in_its_image(built, docker_client):
    for image in ("pbrdemo-base", "pbrdemo-api", "pbrdemo-worker", "pbrdemo-manage"):
        assert run_image(docker_client, image + ":sdist", ["python", "-c", "import idna"])[0] == 0
    for image in ("pbrdemo-base", "pbrdemo-api", "pbrdemo-worker"):
        assert run_image(docker_client, image + ":sdist", ["python", "-c", "import six"])[0] != 0


def test_runtime_package_from_bindep(built, docker_client):
    code, output = run_image(docker_client, "pbrdemo-base:sdist",
                             ["dpkg-query", "-W", "netbase"])
    assert code == 0 and output.startswith("netbase")
