"""The Zuul jobs build-images and build-images-upload, run by ansible-playbook.

Each job's playbooks run for real against localhost and the real engine, with
what a Zuul executor would give them faked (see tests/zuul_jobs.py): the
pre-run playbook installs build-images from this checkout into a virtualenv,
the build job builds the bundled example, the upload job pushes it to a
Debian ``docker-registry`` on a loopback port with htpasswd authentication
(the ``registry`` fixture of tests/engine/conftest.py), and the images are
pulled back from there.  Nothing can be pulled from the
internet, so the jobs get the local base image as ``build_images_base_image``.
"""
from __future__ import annotations

import hashlib
import secrets
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.engine.helpers import REGISTRY_USERNAME as USERNAME
from tests.engine.helpers import missing, registry_get, remove_images, run_image
from tests.zuul_jobs import ANSIBLE_PLAYBOOK, PBRX_IMAGES, JobDir, project_entry

pytestmark = pytest.mark.engine

SCRIPTS = ("pgtool-version", "pgtool-report")


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory) -> JobDir:
    if not ANSIBLE_PLAYBOOK.exists():
        missing("%s is missing: install the test extra ('.[test]')" % ANSIBLE_PLAYBOOK)
    return JobDir(tmp_path_factory.mktemp("zuul-job"))


@pytest.fixture(scope="module")
def project(job_dir) -> dict:
    """The project under test (zuul.project): a copy of the bundled example."""
    src_dir = job_dir.work / "src" / "review.example.org" / "demo" / "pgtool"
    shutil.copytree(ROOT / "examples" / "pgtool", src_dir)
    return project_entry("demo/pgtool", src_dir)


@pytest.fixture(scope="module")
def installed(job_dir, project, docker_client) -> dict:
    """The jobs' pre-run playbook has run; the variables every run passes.

    The SBOMs go into the job directory rather than the default, under the
    home directory (tests/unit/test_zuul_config.py checks the default).
    """
    venv = job_dir.path / "build-images-venv"
    run = job_dir.run("build-images/pre.yaml", "build-images",
                      job_dir.zuul_vars(project, "build-images", change="4242"),
                      {"ensure_build_images_venv": str(venv)})
    assert run.exit_code == 0
    assert (venv / "bin" / "build-images").exists()
    return {"ensure_build_images_venv": str(venv),
            "build_images_sbom_dir": str(job_dir.path / "zuul-output" / "artifacts" / "sbom")}


def expected_names(prefix: str) -> set[str]:
    return {"%s/%s" % (prefix, name) for name in ("pgtool-base",) + SCRIPTS}


def docker_configs(job_dir: JobDir) -> list[str]:
    return [path.name for path in job_dir.tmp.glob("build-images-docker-*")]


def test_build_job_builds_and_returns_the_images(
        job_dir, project, installed, base_image, docker_client):
    prefix, tag = "pbrx-zuul-test", "zuul1"
    remove_images(docker_client, ["%s:%s" % (name, tag) for name in expected_names(prefix)])
    run = job_dir.run("build-images/run.yaml", "build-images",
                      job_dir.zuul_vars(project, "build-images", change="4242"),
                      dict(installed, build_images_base_image=base_image,
                           build_images_prefix=prefix, build_images_tag=tag,
                           build_images_extra_args="--smoke-test"),
                      verbosity=1)
    assert run.exit_code == 0
    images = run.returned["data"]["build_images"]
    assert {image["name"] for image in images} == expected_names(prefix)
    for image in images:
        assert image["tag"] == tag
        engine = docker_client.images.get("%s:%s" % (image["name"], tag))
        assert image["id"] == engine.id
        assert image["size"] == engine.attrs["Size"]
        assert "%s:%s" % (image["name"], tag) in run.output  # build-images' table
        assert image["id"] in run.output  # the role printed the list
        sbom = Path(image["sbom"]["path"])  # written where fetch-output collects it
        assert sbom.parent == Path(installed["build_images_sbom_dir"])
        assert image["sbom"]["digest"] == "sha256:" + hashlib.sha256(
            sbom.read_bytes()).hexdigest()
    code, output = run_image(docker_client, "%s/pgtool-version:%s" % (prefix, tag))
    assert code == 0 and "psycopg2 2." in output, output


def test_build_job_fails_with_build_images_own_message(job_dir, project, installed,
                                                       base_image):
    """A failed build fails the job, with what build-images said; nothing is returned."""
    run = job_dir.run("build-images/run.yaml", "build-images",
                      job_dir.zuul_vars(project, "build-images", change="4242"),
                      dict(installed, build_images_base_image=base_image,
                           build_images_constraints="no-such-constraints.txt"))
    assert run.exit_code != 0
    assert "no-such-constraints.txt" in run.output
    assert "build-images: error:" in run.output
    assert run.returned == {}


def test_check_job_builds_the_bundled_example(job_dir, installed, base_image, docker_client):
    """This project's own check job: zuul_work_dir is examples/pgtool of the checkout."""
    prefix = "pbrx-zuul-example"
    run = job_dir.run("build-images/run.yaml", "pbrx-images-build-example",
                      job_dir.zuul_vars(PBRX_IMAGES, "pbrx-images-build-example",
                                        change="4242"),
                      dict(installed, build_images_base_image=base_image,
                           build_images_prefix=prefix),
                      verbosity=1)
    assert run.exit_code == 0
    images = run.returned["data"]["build_images"]
    assert {image["name"] for image in images} == expected_names(prefix)
    assert {image["tag"] for image in images} == {"latest"}
    assert "--smoke-test" in run.output  # the job's extra argument reached the command


def upload(job_dir, project, installed, base_image, registry, password, zuul_extra,
           secret_extra=None):
    prefix = registry["address"] + "/pbrx-zuul"
    credentials = {"registry": registry["address"], "username": registry["username"],
                   "password": password}
    credentials.update(secret_extra or {})
    return job_dir.run("build-images/upload.yaml", "build-images-upload",
                       job_dir.zuul_vars(project, "build-images-upload", **zuul_extra),
                       dict(installed, build_images_base_image=base_image,
                            build_images_prefix=prefix),
                       secrets={"build_images_registry_credentials": credentials},
                       verbosity=3)


def test_upload_job_pushes_images_that_pull_back(job_dir, project, installed, base_image,
                                                 registry, docker_client):
    prefix = registry["address"] + "/pbrx-zuul"
    tag = "change_4242"  # the job's tag for a change
    remove_images(docker_client, ["%s:%s" % (name, tag) for name in expected_names(prefix)])
    run = upload(job_dir, project, installed, base_image, registry, registry["password"],
                 {"change": "4242"})
    assert run.exit_code == 0
    assert registry["password"] not in run.output
    assert docker_configs(job_dir) == []  # logged out, configuration removed
    docker_config = Path.home() / ".docker" / "config.json"
    if docker_config.exists():
        assert registry["address"] not in docker_config.read_text()

    built = {image["name"]: image for image in run.returned["data"]["build_images"]}
    pushed = {image["name"]: image for image in run.returned["data"]["build_images_uploaded"]}
    assert set(pushed) == set(built) == expected_names(prefix)
    artifacts = run.returned["data"]["zuul"]["artifacts"]
    assert sorted(artifact["url"] for artifact in artifacts) == sorted(
        "docker://%s:%s" % (name, tag) for name in pushed)
    catalog = registry_get(registry, "/v2/_catalog")["repositories"]
    for name, image in pushed.items():
        assert image["tag"] == tag and image["id"] == built[name]["id"]
        assert image["digest"].startswith("sha256:")
        assert "==> Push %s:%s" % (name, tag) in run.output  # build-images --push pushed it
        assert image["digest"] == built[name]["digest"]
        repository = name.split("/", 1)[1]
        assert repository in catalog
        assert tag in registry_get(registry, "/v2/%s/tags/list" % repository)["tags"]

    references = ["%s:%s" % (name, tag) for name in pushed]
    remove_images(docker_client, references)
    auth = {"username": registry["username"], "password": registry["password"]}
    try:
        for name, image in pushed.items():
            pulled = docker_client.images.pull(name, tag=tag, auth_config=auth)
            assert pulled.id == image["id"]
            assert "%s@%s" % (name, image["digest"]) in pulled.attrs["RepoDigests"]
        code, output = run_image(docker_client, "%s/pgtool-version:%s" % (prefix, tag))
        assert code == 0 and "psycopg2 2." in output, output
    finally:  # the registry's port changes from run to run: leave no tags of it
        remove_images(docker_client, references)


def test_upload_job_with_a_wrong_password_fails_before_building(
        job_dir, project, installed, base_image, registry):
    wrong = "wrong-" + secrets.token_hex(16)
    run = upload(job_dir, project, installed, base_image, registry, wrong, {"change": "4243"})
    assert run.exit_code != 0
    assert "docker login to %s as %s failed" % (registry["address"], USERNAME) in run.output
    assert wrong not in run.output and registry["password"] not in run.output
    assert "Build the images of" not in run.output
    assert docker_configs(job_dir) == []


def test_upload_job_without_a_secret_says_what_is_missing(job_dir, project, installed,
                                                          base_image):
    run = job_dir.run("build-images/upload.yaml", "build-images-upload",
                      job_dir.zuul_vars(project, "build-images-upload", change="4244"),
                      dict(installed, build_images_base_image=base_image,
                           build_images_prefix="127.0.0.1:1/pbrx-zuul"))
    assert run.exit_code != 0
    assert "build_images_registry_credentials must be a secret" in run.output
    assert "Build the images of" not in run.output


def test_build_job_reads_the_shared_cache_in_check_and_writes_it_in_gate(
        job_dir, project, installed, base_image, registry, docker_client, tmp_path):
    """build_images_cache: --cache-from in every pipeline, --cache-to only in gate."""
    import urllib.error

    from tests.engine.helpers import docker_config

    repository = "pbrx-zuul-cache/pgtool"
    config = docker_config(tmp_path / "docker", registry)
    runs, tags = {}, {}
    for pipeline in ("check", "gate"):
        runs[pipeline] = job_dir.run(
            "build-images/run.yaml", "build-images",
            job_dir.zuul_vars(project, "build-images", change="4242", pipeline=pipeline),
            dict(installed, build_images_base_image=base_image,
                 build_images_prefix="pbrx-zuul-cache", build_images_tag="cache-" + pipeline,
                 build_images_cache="%s/%s" % (registry["address"], repository),
                 build_images_docker_config=str(config)), verbosity=1)
        assert runs[pipeline].exit_code == 0
        try:
            tags[pipeline] = registry_get(registry, "/v2/%s/tags/list" % repository)["tags"]
        except urllib.error.HTTPError as error:
            assert error.code == 404  # no such repository: nothing was written
            tags[pipeline] = []
    remove_images(docker_client, ["%s:cache-%s" % (name, pipeline)
                                  for name in expected_names("pbrx-zuul-cache")
                                  for pipeline in runs])
    assert "--cache-from" in runs["check"].output
    assert "--cache-to" not in runs["check"].output and tags["check"] == []
    assert "--cache-to" in runs["gate"].output
    assert {tag.partition("-")[0] for tag in tags["gate"]} >= {"layer", "project", "lock"}
