"""Two builds that each start clean give the same images, runtime packages included.

Each run starts without the cached runtime-packages and builder images of
this test, without the wheel volume and with an empty client layer cache,
so the runtime-packages layer is made anew by each.  The test builds on a
copy of the base image with a label of its own: the cached images it makes
inherit the label (their keys hash the copy's ID), which is how it finds
and removes them without touching other tests' caches.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.engine.helpers import (build_images, labelled_base, remove_volume, run_image,
                                  write_python_project)

pytestmark = pytest.mark.engine

PREFIX = "pbrx-test-repro"
PROJECT = "reproapp"
LABEL = "org.pbrx-test.reproducible"
#: python3-yaml's postinst byte-compiles; libpq5 brings shared libraries;
#: the compiler builds crcmod's C extension.
BINDEP = ("python3-yaml [platform:dpkg]\nlibpq5 [platform:dpkg]\n"
          "gcc [compile]\npython3-dev [compile platform:dpkg]\n")
#: An sdist-only dependency with a C extension: pip builds it in a randomly
#: named directory, which a compiler with -g would record in the extension.
COMPILED = "crcmod==1.7"
USER = ("--user", "repro:10003")
#: Checks, with the image's own /usr/bin/python3, that each .pyc of the
#: distro's yaml package is valid for its source as the image has it (so
#: Python uses it rather than compiling again).
PYC_CHECK = """
import importlib.util, os, sys, yaml
directory = os.path.dirname(yaml.__file__)
checked = 0
for name in sorted(os.listdir(directory)):
    if not name.endswith('.py'):
        continue
    source = os.path.join(directory, name)
    with open(importlib.util.cache_from_source(source), 'rb') as handle:
        header = handle.read(16)
    stat = os.stat(source)
    flags = int.from_bytes(header[4:8], 'little')
    if flags == 0:
        assert int.from_bytes(header[8:12], 'little') == int(stat.st_mtime) & 0xFFFFFFFF, name
        assert int.from_bytes(header[12:16], 'little') == stat.st_size, name
    else:
        with open(source, 'rb') as handle:
            assert header[8:16] == importlib.util.source_hash(handle.read()), name
    checked += 1
print('valid', checked, yaml.__version__)
"""


def write_project(path: Path) -> Path:
    return write_python_project(
        path, PROJECT, {PROJECT + "/__init__.py": "",
                        PROJECT + "/cli.py": "def main():\n    print('hello reproducible')\n",
                        "bindep.txt": BINDEP},
        version="1.0", dependencies=[COMPILED],
        scripts={PROJECT + "-hello": PROJECT + ".cli:main"})


def remove_cached_images(client, run_label: str) -> list[str]:
    """Remove this test's cached runtime and builder images; their tags."""
    removed = []
    for image in client.images.list(filters={"label": "%s=%s" % (LABEL, run_label)}):
        tags = [tag for tag in image.tags if tag.startswith("pbrx-images-cache/")]
        for tag in tags:
            client.images.remove(tag, noprune=False)
        removed.extend(tags)
    return removed


@pytest.fixture(scope="module")
def own_base(docker_client, base_image):
    """The base image under a label of this test (a new ID), removed with what it made."""
    with labelled_base(docker_client, base_image, PREFIX, LABEL) as (tag, run_label):
        try:
            yield tag, run_label
        finally:
            remove_volume(docker_client, "pbrx-images-wheels-%s" % PROJECT)


@pytest.fixture(scope="module")
def clean_builds(tmp_path_factory, docker_client, own_base):
    base, run_label = own_base
    project = write_project(tmp_path_factory.mktemp("repro") / PROJECT)
    runs, removed = {}, {}
    for run in ("first", "second"):
        removed[run] = remove_cached_images(docker_client, run_label)
        remove_volume(docker_client, "pbrx-images-wheels-%s" % PROJECT)
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path_factory.mktemp("cache-" + run)))
        for variant, extra in (("plain", ()), ("user", USER)):
            tag = "%s-%s" % (run, variant)
            runs[tag] = build_images(str(project), "--base-image", base, "--prefix", PREFIX,
                                     "--tag", tag, "--network", "host", *extra, env=env)
    return {"runs": runs, "removed": removed, "base": base}


def image(name: str, tag: str) -> str:
    return "%s/%s:%s" % (PREFIX, name, tag)


def runtime_layer(client, base: str, name: str) -> tuple[str, str]:
    """The runtime-packages layer of ``name``: its diff ID and what made it."""
    layers = client.api.inspect_image(name)["RootFS"]["Layers"]
    index = len(client.api.inspect_image(base)["RootFS"]["Layers"])
    history = [entry for entry in reversed(client.api.history(name))
               if not (entry.get("CreatedBy") or "").startswith("#(nop)")
               and entry.get("Size")]
    return layers[index], history[index]["CreatedBy"]


def test_each_run_made_the_runtime_packages_image_anew(clean_builds):
    runs = clean_builds["runs"]
    for tag, run in runs.items():
        assert run.exit_code == 0, tag
    assert any(tag.startswith("pbrx-images-cache/runtime:")
               for tag in clean_builds["removed"]["second"])
    for run in ("first", "second"):
        assert "reusing pbrx-images-cache/runtime" not in runs[run + "-plain"].output
        assert "reusing pbrx-images-cache/runtime" in runs[run + "-user"].output


@pytest.mark.parametrize("variant", ["plain", "user"])
def test_two_clean_builds_give_the_same_image_ids(clean_builds, docker_client, variant):
    for name in ("%s-base" % PROJECT, "%s-hello" % PROJECT):
        first = docker_client.images.get(image(name, "first-" + variant)).id
        second = docker_client.images.get(image(name, "second-" + variant)).id
        assert first == second, name


def test_the_runtime_packages_layer_is_the_same(clean_builds, docker_client):
    base = clean_builds["base"]
    first = runtime_layer(docker_client, base, image(PROJECT + "-base", "first-plain"))
    second = runtime_layer(docker_client, base, image(PROJECT + "-base", "second-plain"))
    assert first == second
    assert first[1] == "pbrx-images: runtime packages python3-yaml libpq5 dumb-init"


def test_the_images_run_and_the_distro_byte_code_is_valid(clean_builds, docker_client):
    code, output = run_image(docker_client, image(PROJECT + "-hello", "second-user"))
    assert (code, output.strip()) == (0, "hello reproducible")
    code, output = run_image(docker_client, image(PROJECT + "-base", "second-plain"),
                             ["/usr/bin/python3", "-c", PYC_CHECK], entrypoint=[])
    assert code == 0, output
    assert output.startswith("valid "), output


def test_the_compiled_dependency_is_its_extension(clean_builds, docker_client):
    """The same IDs above cover a compiled extension, not crcmod's pure-Python fallback."""
    code, output = run_image(docker_client, image(PROJECT + "-base", "second-plain"),
                             ["/opt/venv/bin/python", "-c",
                              "import crcmod._crcfunext as c; print(c.__file__)"],
                             entrypoint=[])
    assert code == 0, output
    assert output.strip().endswith(".so"), output
