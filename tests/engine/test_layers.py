"""Per-distribution layers, reproducible images and incremental rebuilds, on a real engine.

The fixture projects depend on distributions made here as wheels and served
over HTTP on the host's loopback address (builds use ``--network host`` and
``PIP_FIND_LINKS``), so nothing comes from PyPI but the build backend.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import os
import threading
import zipfile
from pathlib import Path

import pytest

from tests.engine.helpers import build_images, remove_volume, run_image, write_python_project

pytestmark = pytest.mark.engine

PREFIX = "pbrx-test-layers"
NAMESPACE_DISTS = ("nslayers-alpha", "nslayers-beta")
MANY = 150
#: The user's layer must be reproducible too.
USER = ("--user", "layers:10002")


def make_wheel(directory: Path, name: str, version: str, files: dict[str, str],
               requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel written by hand (no build backend needed)."""
    stem = "%s-%s" % (name.replace("-", "_"), version)
    info = stem + ".dist-info"
    contents = dict(files)
    contents[info + "/METADATA"] = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (
        name, version, "".join("Requires-Dist: %s\n" % item for item in requires))
    contents[info + "/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: pbrx-test\n"
                                 "Root-Is-Purelib: true\nTag: py3-none-any\n")
    rows = []
    for path, text in sorted(contents.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        rows.append("%s,sha256=%s,%d" % (path, digest.decode(), len(text.encode())))
    rows.append(info + "/RECORD,,")
    contents[info + "/RECORD"] = "\n".join(rows) + "\n"
    target = directory / ("%s-py3-none-any.whl" % stem)
    with zipfile.ZipFile(target, "w") as archive:
        for path, text in sorted(contents.items()):
            archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
    return target


@contextlib.contextmanager
def serve(directory: Path):
    """An HTTP server of ``directory`` on 127.0.0.1 (a find-links page)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d/" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def write_project(path: Path, name: str, dependencies: list[str], code: str) -> Path:
    return write_python_project(path, name, {name + "/__init__.py": "", name + "/cli.py": code},
                                version="1.0", dependencies=dependencies,
                                scripts={name + "-hello": name + ".cli:main"})


def build(project: Path, links: str, base_image: str, tag: str, cache: Path, *extra: str):
    env = dict(os.environ, PIP_FIND_LINKS=links, XDG_CACHE_HOME=str(cache))
    return build_images(str(project), "--base-image", base_image, "--prefix", PREFIX,
                        "--tag", tag, "--network", "host", *extra, env=env)


def diff_ids(client, name: str) -> list[str]:
    return client.api.inspect_image(name)["RootFS"]["Layers"]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    directory = tmp_path_factory.mktemp("links")
    make_wheel(directory, "nslayers-alpha", "1.0", {"nsl/alpha.py": "VALUE = 'alpha'\n"})
    make_wheel(directory, "nslayers-beta", "1.0", {"nsl/beta.py": "VALUE = 'beta'\n"},
               requires=("nslayers-alpha",))
    for name in ("dupelayers-one", "dupelayers-two"):  # both ship the same module
        make_wheel(directory, name, "1.0", {"dupelayers_shared.py": "WHO = 'shared'\n",
                                            name.replace("-", "_") + ".py": "X = 1\n"})
    for number in range(MANY):
        make_wheel(directory, "manylayers-dep%03d" % number, "1.0",
                   {"manylayers_dep%03d.py" % number: "N = %d\n" % number})
    with serve(directory) as url:
        yield url


@pytest.fixture(scope="module")
def namespace_builds(tmp_path_factory, docker_client, base_image, wheels):
    """Two clean builds (fresh wheel volume and layer cache), then a one-line app change."""
    project = write_project(
        tmp_path_factory.mktemp("ns") / "nslayersapp", "nslayersapp", list(NAMESPACE_DISTS),
        "import nsl.alpha\nimport nsl.beta\n\n\ndef main():\n"
        "    print('hello', nsl.alpha.VALUE, nsl.beta.VALUE)\n")
    runs, ids, caches = {}, {}, {}
    for run in ("first", "second"):
        remove_volume(docker_client, "pbrx-images-wheels-nslayersapp")
        caches[run] = tmp_path_factory.mktemp("cache-" + run)
        runs[run] = build(project, wheels, base_image, run, caches[run], *USER)
        ids[run] = {name: docker_client.images.get("%s/%s:%s" % (PREFIX, name, run)).id
                    for name in ("nslayersapp-base", "nslayersapp-hello")}
    with open(project / "nslayersapp" / "cli.py", "a") as handle:
        handle.write("# a one-line change\n")
    runs["changed"] = build(project, wheels, base_image, "changed", caches["second"], *USER)
    return {"runs": runs, "ids": ids}


def test_two_clean_builds_give_the_same_image_ids(namespace_builds):
    for run in namespace_builds["runs"].values():
        assert run.exit_code == 0
    ids = namespace_builds["ids"]
    assert ids["first"] == ids["second"]


def test_one_layer_per_distribution_project_on_top(namespace_builds, docker_client):
    history = docker_client.api.history("%s/nslayersapp-base:first" % PREFIX)
    created_by = [entry["CreatedBy"] for entry in history[:3]]
    assert created_by[0] == "pbrx-images: nslayersapp 1.0"
    assert sorted(created_by[1:]) == ["pbrx-images: nslayers-alpha 1.0",
                                      "pbrx-images: nslayers-beta 1.0"]
    assert history[3]["CreatedBy"] == "pbrx-images: user layers"


def test_an_app_change_changes_only_the_top_layer(namespace_builds, docker_client):
    run = namespace_builds["runs"]["changed"]
    assert run.exit_code == 0
    assert "2 of 3 distribution layers from the cache" in run.output
    before = diff_ids(docker_client, "%s/nslayersapp-base:second" % PREFIX)
    after = diff_ids(docker_client, "%s/nslayersapp-base:changed" % PREFIX)
    assert len(before) == len(after)
    assert before[:-1] == after[:-1] and before[-1] != after[-1]


def test_image_runs_its_script_and_namespace_package_imports(namespace_builds, docker_client):
    code, output = run_image(docker_client, "%s/nslayersapp-hello:first" % PREFIX)
    assert (code, output.strip()) == (0, "hello alpha beta")


def test_pip_check_passes_inside_the_image(namespace_builds, docker_client):
    container = docker_client.containers.run(
        "%s/nslayersapp-base:first" % PREFIX,
        ["sh", "-c", "python /w/$(ls /w | grep '^pip-.*[.]whl$' | head -n 1)/pip check"],
        volumes={"pbrx-images-wheels-nslayersapp": {"bind": "/w", "mode": "ro"}},
        entrypoint=[], detach=True)
    try:
        code = container.wait(timeout=300)["StatusCode"]
        output = container.logs().decode()
    finally:
        container.remove(force=True)
    assert (code, output.strip()) == (0, "No broken requirements found."), output


def test_at_most_100_layers_with_150_dependencies(tmp_path, docker_client, base_image, wheels):
    deps = ["manylayers-dep%03d" % number for number in range(MANY)]
    project = write_project(tmp_path / "manylayersapp", "manylayersapp", deps,
                            "import manylayers_dep149\n\n\ndef main():\n"
                            "    print(manylayers_dep149.N)\n")
    run = build(project, wheels, base_image, "many", tmp_path / "cache")
    assert run.exit_code == 0
    assert "share one layer, so that the image has at most 100 layers" in run.output
    # said in short: a line per image, not every distribution; the log has them all
    assert max(len(line) for line in run.output.splitlines()) < 400
    assert "layers: the largest manylayers-dep" in run.output
    assert "manylayers-dep000" not in run.output
    (log,) = (tmp_path / "cache" / "pbrx-images" / "logs").glob("*.log")
    assert "manylayers-dep000 1.0" in log.read_text()
    for name in ("manylayersapp-base", "manylayersapp-hello"):
        layers = diff_ids(docker_client, "%s/%s:many" % (PREFIX, name))
        assert 90 <= len(layers) <= 100
    code, output = run_image(docker_client, "%s/manylayersapp-hello:many" % PREFIX)
    assert (code, output.strip()) == (0, "149")


def test_a_file_two_distributions_claim_goes_to_the_leftovers_layer(tmp_path, docker_client,
                                                                    base_image, wheels):
    project = write_project(tmp_path / "dupelayersapp", "dupelayersapp",
                            ["dupelayers-one", "dupelayers-two"],
                            "import dupelayers_shared\n\n\ndef main():\n"
                            "    print(dupelayers_shared.WHO)\n")
    run = build(project, wheels, base_image, "dupe", tmp_path / "cache")
    assert run.exit_code == 0
    assert "installing all at once" in run.output
    history = [entry["CreatedBy"] for entry in
               docker_client.api.history("%s/dupelayersapp-base:dupe" % PREFIX)[:4]]
    assert history[0] == "pbrx-images: dupelayersapp 1.0"
    assert history[1] == "pbrx-images: files of no or of several distributions"
    code, output = run_image(docker_client, "%s/dupelayersapp-hello:dupe" % PREFIX)
    assert (code, output.strip()) == (0, "shared")
