"""The whole pipeline on a real engine, with the bundled example (pgtool).

pgtool depends on psycopg2, which only builds from source: gcc, libpq-dev
and python3-dev at compile time, libpq5 at run time.  It has two console
scripts, and an extra only the pgtool-report image gets.
"""
from __future__ import annotations

import contextlib
import shutil

import pytest

from tests.conftest import ROOT, tree_digest
from tests.engine.helpers import (build_images, in_wheel_volume, leftover_containers,
                                  remove_volume, run_image, work_tags)

pytestmark = pytest.mark.engine

PREFIX = "pbrx-test"
TAG = "t1"
IMAGES = ["%s/%s:%s" % (PREFIX, name, TAG)
          for name in ("pgtool-base", "pgtool-version", "pgtool-report")]


@pytest.fixture(scope="module")
def built(tmp_path_factory, docker_client, base_image):
    """Build pgtool twice (the second time everything is cached).

    The second build is given --refresh: without it, it would only find the
    images up to date (tests/engine/test_noop.py), and this module checks
    what a full build does with every cache warm.
    """
    project = tmp_path_factory.mktemp("example") / "pgtool"
    shutil.copytree(ROOT / "examples" / "pgtool", project)
    for name in IMAGES:
        try:
            docker_client.images.remove(name)
        except Exception:
            pass
    # a fresh wheel cache, so that the first run must compile
    remove_volume(docker_client, "pbrx-images-wheels-pgtool")
    before = tree_digest(project)
    args = (str(project), "--base-image", base_image, "--prefix", PREFIX, "--tag", TAG,
            "--debug")
    first = build_images(*args)
    after_first = tree_digest(project)
    second = build_images(*args, "--refresh")
    return {"project": project, "first": first, "second": second, "base_image": base_image,
            "digests": (before, after_first, tree_digest(project))}


def test_build_succeeds_and_reports_images(built):
    for run in (built["first"], built["second"]):
        assert run.exit_code == 0
        for name in IMAGES:
            assert name in run.output  # the final table


def test_images_exist_with_entrypoint_and_cmd(built, docker_client):
    base = docker_client.images.get(IMAGES[0]).attrs["Config"]
    assert base["Entrypoint"] == ["/usr/bin/dumb-init", "--"]
    assert any(item.startswith("PATH=/opt/venv/bin:") for item in base["Env"])
    for name, script in ((IMAGES[1], "pgtool-version"), (IMAGES[2], "pgtool-report")):
        config = docker_client.images.get(name).attrs["Config"]
        assert config["Cmd"] == [script]
        assert config["Entrypoint"] == ["/usr/bin/dumb-init", "--"]


def test_each_script_image_runs(built, docker_client):
    code, output = run_image(docker_client, IMAGES[1])
    assert code == 0, output
    assert "psycopg2 2." in output and "libpq 15" in output
    code, output = run_image(docker_client, IMAGES[2])
    assert code == 0, output
    assert "component" in output and "psycopg2" in output


def test_runtime_images_have_no_compiler_dev_packages_or_pip(built, docker_client):
    check = ("for p in gcc libpq-dev python3-dev git; do "
             "dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q 'ok installed' && echo $p; "
             "done; test -e /usr/bin/gcc && echo /usr/bin/gcc; "
             "test -e /opt/venv/bin/pip && echo pip; "
             "ls /var/lib/apt/lists | grep -v -e '^lock$' -e '^partial$' | head -n 1; "
             "ls /root/.cache 2>/dev/null | head -n 1; "
             "dpkg-query -W -f='${Status}' libpq5 dumb-init | grep -c 'ok installed' >/dev/null"
             " || echo missing-runtime-packages")
    for name in IMAGES:
        code, output = run_image(docker_client, name, ["-c", check], entrypoint=["sh"])
        assert code == 0
        assert output.strip() == "", "%s has %s" % (name, output.split())


def test_script_extra_only_in_its_image(built, docker_client):
    importer = ["python", "-c", "import tabulate"]
    assert run_image(docker_client, IMAGES[0], importer)[0] != 0
    assert run_image(docker_client, IMAGES[1], importer)[0] != 0
    assert run_image(docker_client, IMAGES[2], importer)[0] == 0


def test_no_container_or_work_tag_left(built, docker_client):
    assert leftover_containers(docker_client) == []
    assert work_tags(docker_client) == []


def test_run_directories_removed_and_wheel_cache_kept(built, docker_client):
    volume = "pbrx-images-wheels-pgtool"
    output = in_wheel_volume(
        docker_client, "pbrx-images-test/debian-bookworm-python3:" + _tag_of(docker_client),
        volume, "ls /w; ls /w/runs 2>/dev/null | wc -l")
    assert "psycopg2-" in output
    assert output.strip().splitlines()[-1] == "0"


def _tag_of(client):
    import base_image
    return base_image.tag().rpartition(":")[2]


def test_source_tree_untouched(built):
    before, after_first, after_second = built["digests"]
    assert before == after_first == after_second
    leftovers = [p.name for p in built["project"].iterdir()
                 if p.name in ("build", "dist") or p.name.endswith(".egg-info")]
    assert leftovers == []


def test_first_run_compiles_second_run_compiles_nothing(built):
    assert "Building wheel for psycopg2" in built["first"].output
    assert "Building wheel for" not in built["second"].output
    assert "reusing pbrx-images-cache/builder:" in built["second"].output
    assert "reusing pbrx-images-cache/runtime:" in built["second"].output


def test_no_build_settings_in_image_config_or_history(built, docker_client):
    for name in IMAGES:
        image = docker_client.images.get(name)
        text = repr(image.attrs["Config"]) + repr(image.history())
        for needle in ("PIP_", "pbrx-images-pip", "ca-certificates.crt", "proxy"):
            assert needle not in text, "%s found in %s" % (needle, name)


def test_the_wheel_cache_keeps_what_builds_use_and_drops_what_they_do_not(
        built, tmp_path, docker_client):
    """Every use of a cached thing marks it; what no build used for 30 days goes.

    Everything in the wheel volume is made 20 days old, and one wheel 40; a
    build after a code change must mark what it took from the cache (the
    lock record, the wheels, pip, the build environment) and remove the old
    wheel, and leave the project wheel of the previous source alone.
    """
    volume = "pbrx-images-wheels-pgtool"
    image = "pbrx-images-test/debian-bookworm-python3:" + _tag_of(docker_client)

    def in_volume(script: str) -> str:
        return in_wheel_volume(docker_client, image, volume, script, writable=True)

    in_volume("now=$(date +%s); "
              "find /w -mindepth 1 -maxdepth 2 -exec touch -h -d @$((now - 20*86400)) {} +; "
              "echo unused > /w/unused-1-py3-none-any.whl; "
              "touch -d @$((now - 40*86400)) /w/unused-1-py3-none-any.whl")
    old_projects = in_volume("ls /w/projects").split()
    project = tmp_path / "pgtool"
    shutil.copytree(built["project"], project)
    with open(project / "pgtool" / "cli.py", "a") as module:
        module.write("# a change\n")
    run = build_images(str(project), "--base-image", built["base_image"], "--prefix", PREFIX,
                       "--tag", "t2", "--debug")
    try:
        assert run.exit_code == 0
        assert "in the kept build environment" in run.output
        assert "the lock and wheels of the same requirements, reused" in run.output
        ages = {}
        for line in in_volume("now=$(date +%s); for p in /w/*.whl /w/locks/* /w/build-envs/* "
                              "/w/pip/* /w/projects/*; do echo $((now - $(stat -c %Y $p))) "
                              "$p; done").splitlines():
            age, path = line.split(" ", 1)
            ages[path] = int(age) // 86400
        assert "/w/unused-1-py3-none-any.whl" not in ages
        used = [path for path, days in ages.items() if days == 0]
        assert [path for path in ages if path.startswith("/w/psycopg2-")
                and path not in used] == []
        for kind in ("/w/locks/", "/w/build-envs/", "/w/pip/", "/w/pip-"):
            assert any(path.startswith(kind) for path in used), kind
        assert ["/w/projects/%s" % name for name in old_projects] == \
            [path for path in ages if path.startswith("/w/projects/") and ages[path] == 20]
    finally:
        for name in ("pgtool-base", "pgtool-version", "pgtool-report"):
            with contextlib.suppress(Exception):
                docker_client.images.remove("%s/%s:t2" % (PREFIX, name))
