"""Each image's SBOM: written to --sbom-dir, its digest in the image's label.

The example (pgtool, renamed pgtool-sbom) is built with a
Dockerfile.pgtool-version, so the three ways an image is made are covered:
the base image (installed, committed), pgtool-report (its extra installed on
the base) and pgtool-version (from a Dockerfile, then labelled).  A second
build of the same project, after the images are removed, must give
byte-identical SBOMs and the same labels.
"""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.engine.helpers import build_report, remove_images, run_image

pytestmark = pytest.mark.engine

PREFIX = "pbrx-sbom-test"
TAG = "sbom"
#: The example renamed, so that its wheel volume is this test's own (other
#: tests remove pbrx-images-wheels-pgtool, and the containers using it).
PROJECT = "pgtool-sbom"
NAMES = (PROJECT + "-base", "pgtool-version", "pgtool-report")
IMAGES = ["%s/%s:%s" % (PREFIX, name, TAG) for name in NAMES]
LABEL = "io.pbrx-images.sbom.digest"
EPOCH = "1700000000"


def _build(project, base_image, sbom_dir, environ):
    run, report = build_report(str(project), "--base-image", base_image, "--prefix", PREFIX,
                               "--tag", TAG, "--sbom-dir", str(sbom_dir), env=environ)
    assert run.exit_code == 0
    return report


@pytest.fixture(scope="module")
def built(tmp_path_factory, docker_client, base_image):
    """Build three times, each time into a fresh SBOM directory and without the images.

    The first two without SOURCE_DATE_EPOCH (reproducible even so), the
    third with it.
    """
    from tests.conftest import ROOT
    import shutil

    project = tmp_path_factory.mktemp("sbom") / "pgtool"
    shutil.copytree(ROOT / "examples" / "pgtool", project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('name = "pgtool"',
                                                       'name = "%s"' % PROJECT))
    # Its own Python distribution (a bare dist-info): its SBOM must be its own.
    (project / "Dockerfile.pgtool-version").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        "RUN d=$(python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')"
        "/only_dockerfile-1.0.dist-info && mkdir $d && printf 'Metadata-Version: 2.1\\n"
        "Name: only_dockerfile\\nVersion: 1.0\\n' > $d/METADATA\n"
        "CMD [\"pgtool-version\"]\n")
    results = []
    environ = {key: value for key, value in os.environ.items()
               if key != "SOURCE_DATE_EPOCH"}
    for attempt, epoch in (("first", None), ("second", None), ("epoch", EPOCH)):
        remove_images(docker_client, IMAGES)
        sbom_dir = tmp_path_factory.mktemp("sbom-" + attempt)
        report = _build(project, base_image, sbom_dir,
                        dict(environ, SOURCE_DATE_EPOCH=epoch) if epoch else environ)
        files = {path.name: path.read_bytes() for path in sbom_dir.iterdir()}
        labels = {name: docker_client.images.get(name).labels for name in IMAGES}
        results.append({"dir": sbom_dir, "report": report, "files": files, "labels": labels})
    yield results
    remove_images(docker_client, IMAGES)


def _components(document, purl_type):
    return {component["name"]: component for component in document["components"]
            if component.get("purl", "").startswith("pkg:%s/" % purl_type)}


def _in_image(client, image, command):
    code, output = run_image(client, image, ["-c", command], entrypoint=["sh"])
    assert code == 0, output
    return output.strip()


def test_one_sbom_per_image_named_in_the_report(built):
    first = built[0]
    assert sorted(first["files"]) == sorted(
        "%s_%s_%s.cdx.json" % (PREFIX, name, TAG) for name in NAMES)
    for image in first["report"]["images"]:
        sbom = image["sbom"]
        assert sbom["format"] == "CycloneDX 1.5 JSON"
        path = first["dir"] / os.path.basename(sbom["path"])
        assert sbom["path"] == str(path)
        assert sbom["digest"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_label_is_the_sha256_of_the_file(built):
    first = built[0]
    for name in IMAGES:
        data = first["files"][name.replace("/", "_").replace(":", "_") + ".cdx.json"]
        assert first["labels"][name][LABEL] == "sha256:" + hashlib.sha256(data).hexdigest()
        document = json.loads(data)
        assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.5"
        component = document["metadata"]["component"]
        assert component["name"] == name.rpartition(":")[0].rsplit("/", 1)[-1]
        assert "timestamp" not in document["metadata"]


def test_packages_and_distributions_match_the_images(built, docker_client):
    first = built[0]
    for name in IMAGES:
        document = json.loads(first["files"][name.replace("/", "_").replace(":", "_")
                                             + ".cdx.json"])
        debs = _components(document, "deb")
        pypi = _components(document, "pypi")
        libpq5 = _in_image(docker_client, name, "dpkg-query -W -f='${Version}' libpq5")
        arch = _in_image(docker_client, name, "dpkg --print-architecture")
        assert debs["libpq5"]["version"] == libpq5
        assert debs["libpq5"]["purl"] == "pkg:deb/debian/libpq5@%s?arch=%s&distro=debian-12" % (
            libpq5.replace("+", "%2B"), arch)
        installed = _in_image(docker_client, name,
                              "dpkg-query -W -f='${db:Status-Abbrev}\\n' | grep -c '^.i'")
        assert len(debs) == int(installed)
        psycopg2 = _in_image(docker_client, name, "python -c 'import psycopg2; "
                             "print(psycopg2.__version__.split()[0])'")
        assert pypi["psycopg2"]["version"] == psycopg2
        assert pypi["psycopg2"]["purl"] == "pkg:pypi/psycopg2@" + psycopg2
        assert PROJECT in pypi
        # exactly what the image's virtualenv holds (the SBOM's list comes from pip)
        listed = _in_image(docker_client, name, "python -I -c 'from importlib import metadata; "
                           "print(sorted({(d.metadata[\"Name\"], d.version) "
                           "for d in metadata.distributions()}))'")
        assert listed == str(sorted((component["name"], component["version"])
                                    for component in pypi.values())), name
        assert ("tabulate" in pypi) == name.endswith("pgtool-report:" + TAG)
        assert ("only_dockerfile" in pypi) == name.endswith("pgtool-version:" + TAG)


def test_rebuild_gives_identical_sboms_and_labels(built):
    first, second, _ = built
    assert first["files"] == second["files"]
    for name in IMAGES:
        assert first["labels"][name][LABEL] == second["labels"][name][LABEL]


def test_source_date_epoch_sets_the_timestamp_and_only_it_changes(built):
    first, _, epoch = built
    assert sorted(epoch["files"]) == sorted(first["files"])
    for file_name, data in epoch["files"].items():
        document = json.loads(data)
        assert document["metadata"].pop("timestamp") == "2023-11-14T22:13:20Z"
        expected = json.loads(first["files"][file_name])
        assert document.pop("serialNumber") != expected.pop("serialNumber")
        assert document == expected
