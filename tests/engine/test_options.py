"""Options that change what is built, on a real engine."""
from __future__ import annotations

import os

import pytest

from tests.engine.helpers import build_images, leftover_containers, run_image, write_python_project

pytestmark = pytest.mark.engine


def test_constraints_apply_to_every_pip_step(example_project, docker_client, base_image,
                                             tmp_path):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("tabulate==0.9.0\n")
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "pinned",
                       "--constraints", str(constraints))
    assert run.exit_code == 0
    code, output = run_image(docker_client, "pgtool-report:pinned",
                             ["python", "-c", "import tabulate; print(tabulate.__version__)"])
    assert (code, output.strip()) == (0, "0.9.0")
    # Bumping a dependency's pin is no reason for a new builder image.
    constraints.write_text("tabulate==0.10.0\n")
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "pinned",
                       "--constraints", str(constraints))
    assert run.exit_code == 0
    assert "reusing pbrx-images-cache/builder:" in run.output
    code, output = run_image(docker_client, "pgtool-report:pinned",
                             ["python", "-c", "import tabulate; print(tabulate.__version__)"])
    assert (code, output.strip()) == (0, "0.10.0")


def test_settings_from_pyproject(example_project, docker_client, base_image):
    with open(example_project / "pyproject.toml", "a") as handle:
        handle.write('\n[tool.build-images]\nprefix = "pbrx-test/settings"\ntag = "fromfile"\n'
                     'base-image = "%s"\n' % base_image)
    run = build_images(str(example_project), "--tag", "fromcli")
    assert run.exit_code == 0
    assert docker_client.images.get("pbrx-test/settings/pgtool-version:fromcli")
    assert not docker_client.images.list(name="pbrx-test/settings/pgtool-version:fromfile")


def test_project_without_console_scripts(tmp_path, docker_client, base_image):
    project = write_python_project(tmp_path / "noscripts", "noscripts",
                                   {"noscripts/__init__.py": "VALUE = 42\n"})
    run = build_images(str(project), "--base-image", base_image)
    assert run.exit_code == 0
    assert "no console scripts, so only the base image is built" in run.output
    assert "no bindep.txt" in run.output
    code, output = run_image(docker_client, "noscripts-base:latest",
                             ["python", "-c", "import noscripts; print(noscripts.VALUE)"])
    assert (code, output.strip()) == (0, "42")


def test_smoke_test_and_host_network(example_project, docker_client, base_image):
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "smoked",
                       "--smoke-test", "--network", "host")
    assert run.exit_code == 0
    assert "Smoke test: pgtool-version --help" in run.output
    assert "Smoke test: pgtool-report --help" in run.output
    assert docker_client.images.get("pgtool-report:smoked")


def test_dry_run_prints_the_plan_and_builds_nothing(example_project, docker_client,
                                                    base_image):
    images_before = {image.id for image in docker_client.images.list(all=True)}
    volumes_before = {volume.name for volume in docker_client.volumes.list()}
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "dry",
                       "--dry-run")
    assert run.exit_code == 0
    assert "Plan for pgtool 1.0.0" in run.output
    assert "libpq-dev                    [compile platform:dpkg]" in run.output
    assert "  pgtool-report:dry\n    extras: pgtool-report (its name)" in run.output
    assert not docker_client.images.list(name="pgtool-base:dry")
    assert {image.id for image in docker_client.images.list(all=True)} == images_before
    assert {volume.name for volume in docker_client.volumes.list()} == volumes_before
    assert leftover_containers(docker_client) == []


def test_dry_run_as_json_prints_the_plan_on_standard_output(example_project, base_image):
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "dryjson",
                       "--dry-run", "--format", "json", separate=True)
    assert run.exit_code == 0, run.output
    plan = run.report
    assert plan["dry_run"] is True and plan["complete"] is True
    assert plan["project"] == {"name": "pgtool", "version": "1.0.0"}
    assert {(image["name"], image["tag"], tuple(image["extras"]))
            for image in plan["images"]} == {("pgtool-base", "dryjson", ()),
                                             ("pgtool-report", "dryjson", ("pgtool-report",)),
                                             ("pgtool-version", "dryjson", ())}
    assert "libpq-dev" in plan["packages"]["compile"]
    assert "Plan for pgtool" not in run.output  # the text is not printed as well


def test_oci_labels_and_no_build_labels(example_project, docker_client, base_image):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(example_project), *args], check=True,
                       stdout=subprocess.DEVNULL)

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
    git("remote", "add", "origin", "https://example.com/pgtool.git")
    revision = subprocess.run(["git", "-C", str(example_project), "rev-parse", "HEAD"],
                              stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    import os

    from tests.engine.helpers import build_images as run_build
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    run = run_build(str(example_project), "--base-image", base_image, "--tag", "labelled",
                    env=env)
    assert run.exit_code == 0
    base_id = docker_client.images.get(base_image).id
    for name, title in (("pgtool-base", "pgtool"), ("pgtool-version", "pgtool-version"),
                        ("pgtool-report", "pgtool-report")):
        labels = docker_client.images.get(name + ":labelled").labels
        oci = {key[len("org.opencontainers.image."):]: value for key, value in labels.items()
               if key.startswith("org.opencontainers.image.")}
        assert oci == {"title": title, "version": "1.0.0", "revision": revision,
                       "source": "https://example.com/pgtool.git",
                       "created": "2023-11-14T22:13:20Z", "base.name": base_image,
                       "base.digest": base_id}, name
        assert not any(key.startswith("org.pbrx-images.") and key != "org.pbrx-images.test"
                       for key in labels), labels  # (.test comes from the test base image)


def test_json_report_on_stdout(example_project, docker_client, base_image):
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "json",
                       "--format", "json", separate=True)
    assert run.exit_code == 0, run.output
    data = run.report  # nothing but the report on stdout
    assert "==> Wheels" in run.output
    names = {"%s:%s" % (image["name"], image["tag"]): image for image in data["images"]}
    assert set(names) == {"pgtool-base:json", "pgtool-version:json", "pgtool-report:json"}
    for name, image in names.items():
        engine_image = docker_client.images.get(name)
        assert image["id"] == engine_image.id
        assert image["size"] == engine_image.attrs["Size"]
        assert sum(layer["size"] for layer in image["layers"]) == image["size"]
        owners = [item["name"] for layer in image["layers"] for item in layer["distributions"]]
        if name == "pgtool-base:json":
            assert owners[-1] == "pgtool"  # the project's own layer is the top one
        assert "psycopg2" in owners
        assert ("tabulate" in owners) == (name == "pgtool-report:json")
    steps = [t["step"] for t in data["timings"] if not t["step"].startswith("(")]
    assert steps[0].startswith("Inspect base image")
    # and, in parentheses, the work before the first step, start-up first
    before = [t["step"] for t in data["timings"][:data["timings"].index(next(
        t for t in data["timings"] if t["step"] == steps[0]))]]
    assert before[0] == "(start-up: importing build-images)"
    assert "(reading the project)" in before and "(connecting to the engine)" in before


def test_non_root_user(example_project, docker_client, base_image):
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "nonroot",
                       "--user", "app:10001")
    assert run.exit_code == 0
    for name in ("pgtool-base", "pgtool-version", "pgtool-report"):
        assert docker_client.images.get(name + ":nonroot").attrs["Config"]["User"] == "app"
    code, output = run_image(docker_client, "pgtool-report:nonroot")
    assert code == 0 and "psycopg2" in output
    code, output = run_image(docker_client, "pgtool-base:nonroot",
                             ["sh", "-c", "exec 2>&1; id -un; id -u; "
                              "touch /opt/venv/x && echo writable"])
    # one stream: docker copies stdout and stderr apart, so their lines may swap
    assert output.splitlines()[:2] == ["app", "10001"], output
    assert "Permission denied" in output and "writable" not in output
    assert code != 0


def test_invalid_user_is_refused(example_project):
    run = build_images(str(example_project), "--user", "root")
    assert run.exit_code == 1 and "--user 'root' is not NAME[:UID]" in run.output


def test_only_builds_the_base_image_and_the_named_scripts(example_project, docker_client,
                                                          base_image):
    from tests.engine.helpers import remove_images

    remove_images(docker_client, ["pgtool-%s:only" % name for name in ("base", "report",
                                                                       "version")])
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "only",
                       "--only", "pgtool-report", "--format", "json", separate=True)
    assert run.exit_code == 0, run.output
    assert {image["name"] for image in run.report["images"]} == {"pgtool-base",
                                                                 "pgtool-report"}
    assert "pgtool-version is not built" in run.output
    assert docker_client.images.get("pgtool-report:only")
    assert not docker_client.images.list(name="pgtool-version:only")
    # the same again is up to date; all the images is another build
    again = build_images(str(example_project), "--base-image", base_image, "--tag", "only",
                         "--only", "pgtool-report")
    assert again.exit_code == 0 and "Up to date" in again.output
    everything = build_images(str(example_project), "--base-image", base_image, "--tag",
                              "only")
    assert everything.exit_code == 0 and "Up to date" not in everything.output
    assert docker_client.images.get("pgtool-version:only")
    wrong = build_images(str(example_project), "--base-image", base_image, "--tag", "only",
                         "--only", "pgtool-nothing")
    assert wrong.exit_code == 1
    assert wrong.error_line() == (
        "build-images: error: --only names 'pgtool-nothing', which is not a console script "
        "of pgtool (its scripts: pgtool-report, pgtool-version): fix the name.")
    assert "==> " not in wrong.output  # (the metadata is static: before the engine)


def test_labels_go_on_every_image_after_the_oci_labels(example_project, docker_client,
                                                       base_image):
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "labelled",
                       "--label", "org.example.team=infra",
                       "--label", "org.opencontainers.image.vendor=Example",
                       "--label", "org.opencontainers.image.source=https://example.org/x")
    assert run.exit_code == 0, run.output
    for name in ("pgtool-base", "pgtool-report", "pgtool-version"):
        labels = docker_client.images.get("%s:labelled" % name).labels
        assert labels["org.example.team"] == "infra", name
        assert labels["org.opencontainers.image.vendor"] == "Example", name
        assert labels["org.opencontainers.image.source"] == "https://example.org/x", name
        assert labels["org.opencontainers.image.title"] in (name, "pgtool")
    # the example is not a git checkout: no source label of ours to replace, so no note
    assert "replaces the label build-images sets" not in run.output
    run = build_images(str(example_project), "--base-image", base_image, "--tag", "labelled",
                       "--label", "org.opencontainers.image.version=9.9")
    assert run.exit_code == 0, run.output
    assert ("note: --label org.opencontainers.image.version=9.9 replaces the label "
            "build-images sets (1.0.0).") in run.output
    assert docker_client.images.get("pgtool-report:labelled").labels[
        "org.opencontainers.image.version"] == "9.9"


def test_several_tags_every_image_gets_every_one_and_push_pushes_them(
        example_project, docker_client, base_image, registry, tmp_path):
    from tests.engine.helpers import docker_config
    from tests.engine.test_push import remove_tags

    prefix = "%s/pbrx-tags" % registry["address"]
    env = dict(os.environ, DOCKER_CONFIG=str(docker_config(tmp_path / "config", registry)))
    args = (str(example_project), "--base-image", base_image, "--prefix", prefix,
            "-t", "1.0", "--tag", "stable", "--format", "json")
    try:
        run = build_images(*args, "--push", env=env, separate=True)
        assert run.exit_code == 0, run.output
        for image in run.report["images"]:
            assert image["tag"] == "1.0" and image["tags"] == ["1.0", "stable"]
            ids = {docker_client.images.get("%s:%s" % (image["name"], tag)).id
                   for tag in ("1.0", "stable")}
            assert ids == {image["id"]}
            for tag in ("1.0", "stable"):
                assert "==> Push %s:%s" % (image["name"], tag) in run.output
                assert _registry_has(registry, image["name"], tag)
        # a tag of the set moved away: not up to date, and the build puts it back
        docker_client.api.remove_image("%s/pgtool-report:stable" % prefix)
        again = build_images(*args, env=env, separate=True)
        assert again.exit_code == 0 and "Up to date" not in again.output
        assert "pgtool-report:stable is gone" in again.output
        assert docker_client.images.get("%s/pgtool-report:stable" % prefix).id == next(
            image["id"] for image in again.report["images"]
            if image["name"].endswith("/pgtool-report"))
        assert "Up to date" in build_images(*args, env=env, separate=True).output
    finally:
        remove_tags(docker_client, prefix)


def _registry_has(registry, repository, tag):
    import base64
    import urllib.request

    path = repository.split("/", 1)[1]
    secret = base64.b64encode(("%s:%s" % (registry["username"], registry["password"])
                               ).encode()).decode()
    request = urllib.request.Request(
        "http://%s/v2/%s/manifests/%s" % (registry["address"], path, tag), method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json",
                 "Authorization": "Basic " + secret})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status == 200
