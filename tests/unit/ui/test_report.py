"""The JSON report of a build."""
from __future__ import annotations

import json


from pbrx_images.plan import make_plan
from pbrx_images.project.bindep_file import DistroPackages
from pbrx_images.project.metadata import ProjectMetadata
from pbrx_images.stages.record import BuiltImage, Result
from pbrx_images.ui.report import report, to_json


def _result():
    packages = DistroPackages(platform=("platform:dpkg",), runtime=("libpq5",),
                              compile=("gcc",))
    plan = make_plan(ProjectMetadata("foo", "1.0", ("foo-api",), ("foo-api",), "wheel"),
                     packages, "debian:12", "reg:5000/team", "v1")
    layer = {"created_by": "pbrx-images: x", "comment": "", "size": 10}
    return Result(plan, (BuiltImage("reg:5000/team/foo-base:v1", "sha256:1", 100, (layer,)),
                         BuiltImage("reg:5000/team/foo-api:v1", "sha256:2", 120, (),
                                    sbom="/sboms/reg_5000_team_foo-api_v1.cdx.json",
                                    sbom_digest="sha256:abc")))


def test_report_lists_images_packages_and_timings():
    data = report(_result(), [("Wheels", 12.34567)])
    assert data["version"] == 1
    assert data["project"] == {"name": "foo", "version": "1.0"}
    assert data["images"][0] == {"name": "reg:5000/team/foo-base", "tag": "v1",
                                 "tags": ["v1"], "id": "sha256:1", "size": 100, "digest": None,
                                 "script": None, "extra": None,
                                 "layers": [{"created_by": "pbrx-images: x", "comment": "",
                                             "size": 10, "distributions": []}],
                                 "sbom": None}
    assert data["images"][1]["script"] == "foo-api"
    assert data["images"][1]["extra"] == "foo-api"
    assert data["images"][1]["sbom"] == {"path": "/sboms/reg_5000_team_foo-api_v1.cdx.json",
                                         "digest": "sha256:abc",
                                         "format": "CycloneDX 1.5 JSON"}
    assert data["packages"]["compile"] == ["gcc"]
    assert data["packages"]["runtime_image"] == ["libpq5", "dumb-init"]
    assert data["timings"] == [{"step": "Wheels", "seconds": 12.346}]


def test_report_gives_the_digest_of_a_pushed_image():
    result = _result()
    pushed = Result(result.plan, tuple(
        BuiltImage(image.name, image.id, image.size, image.layers, digest="sha256:%d" % number)
        for number, image in enumerate(result.images)))
    assert [image["digest"] for image in report(pushed, [])["images"]] == [
        "sha256:0", "sha256:1"]


def test_to_json_round_trips():
    assert json.loads(to_json(_result(), []))["images"][1]["tag"] == "v1"


def test_the_plan_of_a_dry_run_as_json():
    from pbrx_images.plan import ExtrasFor
    from pbrx_images.ui.report import plan_report

    packages = DistroPackages(platform=("platform:dpkg",), runtime=("libpq5",),
                              compile=("gcc",))
    plan = make_plan(ProjectMetadata("foo", "1.0", ("foo-api", "food"), ("foo-api", "d", "c"),
                                     "wheel"), packages, "debian:12", "reg:5000/team", "v1",
                     extras_for=[ExtrasFor("food", ("d", "c"), "--extra food=d,c")])
    data = json.loads(json.dumps(plan_report(plan, True, "reg:5000", (("A", "1"),))))
    assert data["dry_run"] is True and data["complete"] is True
    assert data["project"] == {"name": "foo", "version": "1.0"}
    assert [(image["name"], image["tag"], image["script"], image["extras"],
             image["extras_from"]) for image in data["images"]] == [
        ("reg:5000/team/foo-base", "v1", None, [], None),
        ("reg:5000/team/foo-api", "v1", "foo-api", ["foo-api"], "its name"),
        ("reg:5000/team/food", "v1", "food", ["d", "c"], "--extra food=d,c")]
    assert data["packages"]["compile"] == ["gcc"] and data["push_to"] == "reg:5000"
    assert data["build_args"] == {"A": "1"}
    assert all(image["tags"] == ["v1"] for image in data["images"])
    assert "timings" not in data and "id" not in data["images"][0]
