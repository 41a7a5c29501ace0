"""A rebuild with nothing changed: up to date at once, without a container.

One small project (its own name, prefix and cache directory) is built again
and again; each step of the fixture changes one thing and records what the
build did: its output, its JSON report and the containers of this project
the engine created meanwhile (from the engine's events, so that builds of
other projects on a shared engine do not count).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engine.helpers import (WITH_IMPORTS, build_report, remove_images, remove_volume,
                                  run_image, write_python_project)

pytestmark = pytest.mark.engine

NAME = "noopcheck"
WHEEL_VOLUME = "pbrx-images-wheels-%s" % NAME
PREFIX = "pbrx-noop-test"
TAG = "noop"
IMAGES = ["%s/%s:%s" % (PREFIX, name, TAG) for name in (NAME + "-base", NAME + "-hello")]
UP_TO_DATE = "Up to date: nothing changed since the build of"
#: What a build says when it reuses the lock of the same requirements.
LOCK_REUSED = "the lock and wheels of the same requirements, reused"
#: What a build says when pip's answer for an image is that of an earlier build.
RESOLUTION_REUSED = "which wheels to install: as an earlier build of the same lock found"
#: A step only a full build has.
FULL_BUILD_STEP = "==> Wheels of the project and its dependencies"


@dataclass
class Build:
    exit_code: int
    stderr: str
    report: dict
    containers: list[str]  #: names of this project's containers the engine created
    imported: list[str]  #: the modules of the Docker SDK and its HTTP libraries it imported

    @property
    def ids(self) -> dict[str, str]:
        return {"%s:%s" % (image["name"], image["tag"]): image["id"]
                for image in self.report["images"]}

    @property
    def up_to_date(self) -> bool:
        return UP_TO_DATE in self.stderr and FULL_BUILD_STEP not in self.stderr


def _created_containers(client, since_ns: int, until_ns: int) -> list[str]:
    events = client.events(since=since_ns // 10**9, until=until_ns // 10**9 + 1, decode=True,
                           filters={"type": "container", "event": "create"})
    return [event["Actor"]["Attributes"].get("name", "") for event in events
            if since_ns <= event["timeNano"] <= until_ns
            and event["Actor"]["Attributes"].get("name", "").startswith(
                "pbrx-images-%s-" % NAME)]


def _build(client, project: Path, base_image: str, cache: Path, *extra: str,
           prefix: str = PREFIX, env: dict | None = None) -> Build:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), **(env or {}))
    env.pop("SOURCE_DATE_EPOCH", None)
    started = time.time_ns()
    run, report = build_report(str(project), "--base-image", base_image, "--prefix", prefix,
                               "--tag", TAG, *extra, env=env, command=("-c", WITH_IMPORTS))
    ended = time.time_ns()
    output, _, imported = run.output.rstrip("\n").rpartition("\nimported: ")
    return Build(run.exit_code, output, report, _created_containers(client, started, ended),
                 imported.split())


def _write_project(root: Path) -> Path:
    return write_python_project(
        root / NAME, NAME,
        {NAME + "/__init__.py": "def main():\n    import six\n    print('hello', six.__name__)\n"},
        dependencies=["six"], scripts={NAME + "-hello": NAME + ":main"},
        extras={NAME + "-hello": ["idna"]})


@pytest.fixture(scope="module")
def builds(tmp_path_factory, docker_client, base_image):
    root = tmp_path_factory.mktemp("noop")
    project = _write_project(root)
    module = project / NAME / "__init__.py"
    cache = root / "cache"
    remove_images(docker_client, IMAGES)
    # a wheel volume of an earlier run would hold lock records of these requirements
    remove_volume(docker_client, WHEEL_VOLUME)

    def build(*extra: str) -> Build:
        return _build(docker_client, project, base_image, cache, *extra)

    runs = {"first": build(), "again": build()}
    os.utime(module, (time.time() + 60,) * 2)  # a new time, the same content
    runs["touched"] = build()
    with open(module, "a") as handle:
        handle.write("# a one-line change\n")
    # a new module too: an edit alone takes the fast path (tests/engine/test_fast_path.py),
    # and these steps are about what the full path of a code change reuses
    (module.parent / "more.py").write_text("MORE = 1\n")
    runs["edited"] = build()
    runs["edited again"] = build()
    docker_client.api.remove_image(IMAGES[1])  # the tag only: the base image keeps the layers
    runs["untagged"] = build()
    sbom = Path(runs["untagged"].report["images"][0]["sbom"]["path"])
    sbom.unlink()
    runs["sbom removed"] = build()
    runs["refresh"] = build("--refresh")
    runs["no cache"] = build("--no-cache")
    runs["after no cache"] = build()
    # what an earlier setuptools build and a virtualenv leave in a tree is not source
    stale = project / "build" / "lib" / NAME / "stale.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("print('a module deleted since')\n")
    (project / "env").mkdir()
    (project / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    runs["build output"] = build()
    runs["records"] = sorted(path.name for path in (cache / "pbrx-images" / "builds").iterdir())
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('["six"]', '["six", "tabulate"]'))
    runs["new requirement"] = build()
    yield runs
    remove_images(docker_client, IMAGES)
    remove_volume(docker_client, WHEEL_VOLUME)


def test_every_build_succeeds(builds):
    for what, run in builds.items():
        if isinstance(run, Build):
            assert run.exit_code == 0, what


def test_first_build_is_a_full_build(builds):
    first = builds["first"]
    assert not first.up_to_date
    assert first.containers  # (the evidence below can tell)


def test_second_build_is_up_to_date_and_creates_no_container(builds):
    first, again = builds["first"], builds["again"]
    assert again.up_to_date
    assert again.containers == []
    assert "==> " not in again.stderr  # no step at all
    assert again.ids == first.ids
    assert sorted(again.ids) == sorted(IMAGES)


def test_an_up_to_date_build_does_without_the_docker_sdk(builds):
    # a local engine's reads go over its socket (engine.socket_api); the SDK, whose import
    # took most of a no-op's time, is imported when a build has work for the engine
    assert builds["again"].imported == []
    assert builds["touched"].imported == []
    assert "docker.api" in builds["first"].imported  # (the evidence can tell)


def test_up_to_date_report_is_the_full_builds(builds):
    first, again = builds["first"].report, builds["again"].report
    for key in ("project", "base_image", "platform", "packages"):
        assert again[key] == first[key], key
    for built, current in zip(first["images"], again["images"]):
        assert current == built


def test_touching_a_file_without_changing_it_is_up_to_date(builds):
    assert builds["touched"].up_to_date
    assert builds["touched"].containers == []


def test_an_edited_file_is_a_full_build_then_up_to_date(builds):
    edited = builds["edited"]
    assert not edited.up_to_date and edited.containers
    assert edited.ids != builds["first"].ids
    assert builds["edited again"].up_to_date
    assert builds["edited again"].ids == edited.ids


def test_a_code_change_reuses_the_lock_and_the_probes(builds):
    """Same requirements: no resolution; same images: no probe container."""
    assert LOCK_REUSED not in builds["first"].stderr
    edited = builds["edited"]
    assert LOCK_REUSED in edited.stderr
    probes = [name for name in edited.containers
              if any("-%s-" % role in name + "-" for role in ("probe", "os-release", "sbom"))]
    assert probes == [], edited.containers
    assert any("-wheels" in name for name in edited.containers)  # (the evidence can tell)


def test_a_code_change_asks_pip_nothing_it_answered_before(builds):
    """The script image's extra is all cached: that image starts no container at all."""
    assert RESOLUTION_REUSED not in builds["first"].stderr
    edited = builds["edited"]
    assert edited.stderr.count(RESOLUTION_REUSED) == 2  # the base image and the script's
    assert [name for name in edited.containers if "-script-" in name] == []
    assert [name for name in edited.containers if "-base-" in name]  # the project's layer
    assert RESOLUTION_REUSED not in builds["refresh"].stderr


def test_a_code_change_builds_the_wheel_in_the_kept_build_environment(builds):
    """No build requirement is installed again (from the index) for a code change."""
    hook = "built by setuptools.build_meta in the %s build environment (setuptools>=61)"
    assert hook % "new" in builds["first"].stderr
    assert hook % "kept" in builds["edited"].stderr
    assert hook % "new" in builds["no cache"].stderr  # remade


def test_refresh_and_a_new_requirement_resolve_again(builds):
    assert LOCK_REUSED not in builds["refresh"].stderr
    changed = builds["new requirement"]
    assert changed.exit_code == 0 and LOCK_REUSED not in changed.stderr
    layers = [item["name"] for image in changed.report["images"]
              for layer in image["layers"] for item in layer.get("distributions", ())]
    assert "tabulate" in layers


def test_a_removed_tag_is_a_full_build_that_puts_it_back(builds):
    untagged = builds["untagged"]
    assert not untagged.up_to_date and untagged.containers
    assert "is gone" in untagged.stderr
    assert untagged.ids == builds["edited"].ids  # reproducible: the same images again


def test_a_removed_sbom_is_a_full_build(builds):
    run = builds["sbom removed"]
    assert not run.up_to_date and run.containers
    assert "SBOM" in run.stderr.split(FULL_BUILD_STEP)[0]
    assert Path(run.report["images"][0]["sbom"]["path"]).exists()


def test_refresh_and_no_cache_always_build(builds):
    for what in ("refresh", "no cache"):
        run = builds[what]
        assert not run.up_to_date and run.containers, what
    assert builds["refresh"].ids == builds["edited"].ids
    # (--no-cache also remakes the runtime packages image, which may differ)
    assert builds["after no cache"].up_to_date
    assert builds["after no cache"].ids == builds["no cache"].ids


def test_build_output_and_virtualenvs_are_not_source(builds, docker_client):
    run = builds["build output"]
    assert run.up_to_date, "the tree's digest changed"
    assert "left out of the source: build/ (what an earlier setuptools build left)" in run.stderr
    assert "left out of the source: env/ (a virtualenv)" in run.stderr
    # a full build with build/lib there (its requirements changed) does not pack it
    assert not builds["new requirement"].up_to_date
    code, output = run_image(docker_client, IMAGES[0], ["python", "-c", "import %s" % NAME])
    assert code == 0, output
    code, output = run_image(docker_client, IMAGES[0],
                             ["python", "-c", "import %s.stale" % NAME])
    assert code != 0 and "No module named" in output, output


def test_one_record_per_set_of_inputs(builds):
    records = [name for name in builds["records"] if not name.startswith("fast-")]
    assert len(records) == 2  # before and after the edit
    assert all(name.endswith(".json") for name in builds["records"])
    # and what the fast path of an app change needs, one per project directory
    assert len(builds["records"]) - len(records) == 1


def test_up_to_date_images_are_still_pushed(tmp_path, registry, docker_client, base_image):
    from tests.engine.helpers import docker_config
    from tests.engine.test_push import remove_tags

    prefix = "%s/pbrx-noop" % registry["address"]
    project = _write_project(tmp_path)
    env = {"DOCKER_CONFIG": str(docker_config(tmp_path / "docker-config", registry))}
    try:
        first = _build(docker_client, project, base_image, tmp_path / "cache", "--push",
                       prefix=prefix, env=env)
        again = _build(docker_client, project, base_image, tmp_path / "cache", "--push",
                       prefix=prefix, env=env)
        assert first.exit_code == again.exit_code == 0
        assert not first.up_to_date and again.up_to_date and again.containers == []
        for image in again.report["images"]:
            assert "==> Push %s:%s" % (image["name"], TAG) in again.stderr
        digests = [(image["name"], image["digest"]) for image in again.report["images"]]
        assert digests == [(image["name"], image["digest"])
                           for image in first.report["images"]]
        assert all(digest.startswith("sha256:") for _, digest in digests)
    finally:
        remove_tags(docker_client, prefix)
        remove_volume(docker_client, WHEEL_VOLUME)  # (the fixture removes it too, if it ran)
