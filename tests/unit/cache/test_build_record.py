"""The record of a build and its key: what makes a rebuild a no-op."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pytest

from pbrx_images.cache import build_record, files
from pbrx_images.cache.build_record import (NOT_IN_KEY, Inputs, Record, RecordedImage, RecordStore,
                                            key, option_values, plan_data, plan_from_data, stale)
from pbrx_images.plan import ImagePlan, Plan
from pbrx_images.project.bindep_file import DistroPackages
from pbrx_images.project.settings import Options

OPTIONS = Options(project_dir=Path("/src/app"), base_image="debian:bookworm", prefix="reg/team",
                  tag="t1")
INPUTS = Inputs(
    tool="0.0.1 abc", source_digest="src1", constraints=b"psycopg2==2.9.10\n",
    bindep=("bindep.txt", b"libpq5\n"), base_image="debian:bookworm",
    base_id="sha256:" + "1" * 64, base_digest="sha256:" + "2" * 64,
    options=option_values(OPTIONS), pip_files={"/tmp/pbrx-images-pip/pip.conf": b"[global]\n"},
    pip_environment={"PIP_INDEX_URL": "https://user:token@index.example/simple"},
    proxy_environment={"https_proxy": "http://proxy:3128"}, source_date_epoch=None,
    revision="0123abc", source_url="https://example.com/app.git")

PLAN = Plan("app", "1.0", "debian:bookworm",
            DistroPackages(("platform:dpkg", "platform:debian"), ("libpq5",), ("gcc",),
                           {"libpq5": "", "gcc": "[compile]"}),
            (ImagePlan("reg/team/app-base:t1", None, "base"),
             ImagePlan("reg/team/app-report:t1", "app-report", "report"),
             ImagePlan("reg/team/app-version:t1", "app-version", None,
                       "Dockerfile.app-version")),
            ("a note",))


def _changed(value):
    if isinstance(value, bytes):
        return value + b"x"
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return "set"
    if isinstance(value, tuple):
        return (value[0], value[1] + b"x")
    bytes_values = isinstance(next(iter(value.values())), bytes)
    return dict(value, changed=b"1" if bytes_values else "1")


def test_every_input_changes_the_key():
    keys = {key(INPUTS)}
    for field in dataclasses.fields(Inputs):
        keys.add(key(dataclasses.replace(INPUTS, **{
            field.name: _changed(getattr(INPUTS, field.name))})))
    assert len(keys) == len(dataclasses.fields(Inputs)) + 1


def test_no_bindep_file_and_an_empty_one_differ():
    assert key(dataclasses.replace(INPUTS, bindep=None)) != key(
        dataclasses.replace(INPUTS, bindep=("bindep.txt", b"")))


def test_key_is_stable_and_independent_of_dict_order():
    reordered = dataclasses.replace(
        INPUTS, options=dict(reversed(list(INPUTS.options.items()))))
    assert key(reordered) == key(INPUTS)
    assert key(INPUTS) == key(dataclasses.replace(INPUTS))


def test_options_that_shape_the_images_change_the_key():
    changes = {"project_dir": Path("/src/other"), "base_image": "debian:trixie",
               "prefix": "reg/other", "tag": "t2", "user": "app", "uid": 10001,
               "smoke_test": True, "sbom_dir": Path("/sboms"),
               # a build is up to date only if it wrote the same shared cache
               "cache_to": "registry.example.com/team/cache"}
    for name, value in changes.items():
        options = dataclasses.replace(OPTIONS, **{name: value})
        assert key(dataclasses.replace(INPUTS, options=option_values(options))) != key(INPUTS), \
            name


def test_options_that_do_not_shape_the_images_leave_the_key():
    for name, value in {"no_cache": True, "refresh": True, "debug": True, "dry_run": True,
                        "push": True, "network": "host",
                        "constraints": Path("/elsewhere.txt"),
                        "cache_from": "registry.example.com/team/cache"}.items():
        options = dataclasses.replace(OPTIONS, **{name: value})
        assert option_values(options) == option_values(OPTIONS), name


def test_every_option_is_in_the_key_unless_excluded_by_name():
    """An option added later is in the key unless NOT_IN_KEY says why not."""
    names = {field.name for field in dataclasses.fields(Options)}
    assert set(NOT_IN_KEY) <= names  # no stale exclusions
    assert set(option_values(OPTIONS)) == names - set(NOT_IN_KEY)
    json.dumps(option_values(dataclasses.replace(OPTIONS, sbom_dir=Path("/s"),
                                                 constraints=Path("/c"))))


def test_plan_round_trips_through_json():
    assert plan_from_data(json.loads(json.dumps(plan_data(PLAN)))) == PLAN
    bare = Plan("app", None, "img", DistroPackages(()),
                (ImagePlan("app-base:latest", None, None),))
    assert plan_from_data(json.loads(json.dumps(plan_data(bare)))) == bare
    no_git = dataclasses.replace(bare, git=False)  # (not a git checkout: no git in the builder)
    assert plan_from_data(json.loads(json.dumps(plan_data(no_git)))) == no_git


def _record(record_key: str = "k1") -> Record:
    return Record(record_key, tuple(
        RecordedImage(image.name, "sha256:%064d" % number, "/sboms/%d.cdx.json" % number,
                      "sha256:" + "f" * 64)
        for number, image in enumerate(PLAN.images)), PLAN, 1700000000.0)


def test_put_then_get(tmp_path):
    store = RecordStore(tmp_path / "builds")
    store.put(_record())
    assert store.get("k1") == _record()
    assert store.get("k1").built_at == 1700000000.0
    assert store.get("k2") is None
    assert [path.name for path in (tmp_path / "builds").iterdir()] == ["k1.json"]


def test_the_record_keeps_no_input(tmp_path):
    store = RecordStore(tmp_path)
    store.put(_record(key(INPUTS)))
    text = store.path(key(INPUTS)).read_text()
    for secret in ("token", "proxy", "psycopg2", "0123abc"):
        assert secret not in text


@pytest.mark.parametrize("content", [
    "", "{not json", "[]", "null", '{"recipe": "1"}', "{}",
    # another version of the record format
    json.dumps(dict(build_record.record_data(_record()), recipe="0")),
    # images that are not the plan's
    json.dumps(dict(build_record.record_data(_record()), images=[])),
    # a record of another key (a file copied or renamed)
    json.dumps(build_record.record_data(_record("other"))),
    json.dumps(dict(build_record.record_data(_record()), built_at="yesterday")),
])
def test_a_damaged_record_is_a_miss(tmp_path, content):
    (tmp_path / "k1.json").write_text(content)
    assert RecordStore(tmp_path).get("k1") is None


def test_a_damaged_plan_is_a_miss(tmp_path):
    data = build_record.record_data(_record())
    data["plan"]["images"][0]["name"] = 7
    (tmp_path / "k1.json").write_text(json.dumps(data))
    assert RecordStore(tmp_path).get("k1") is None


def test_a_failed_write_leaves_no_file_and_keeps_the_old_record(tmp_path, monkeypatch):
    store = RecordStore(tmp_path)
    store.put(_record())
    newer = dataclasses.replace(_record(), built_at=1800000000.0)

    def fail(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError):
        store.put(newer)
    assert [path.name for path in tmp_path.iterdir()] == ["k1.json"]
    assert store.get("k1").built_at == 1700000000.0


def test_an_unwritable_directory_raises_oserror(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError):
        RecordStore(tmp_path / "file" / "builds").put(_record())


def test_prune_removes_unused_records_and_old_temporary_files(tmp_path):
    store = RecordStore(tmp_path)
    store.put(_record("old"))
    store.put(_record("new"))
    (tmp_path / ".tmp-abc").write_text("half")
    now = 1_800_000_000
    os.utime(tmp_path / "old.json", (now - 31 * 24 * 3600,) * 2)
    os.utime(tmp_path / "new.json", (now - 3600,) * 2)
    os.utime(tmp_path / ".tmp-abc", (now - 7200,) * 2)
    store.prune(now=now)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new.json"]


def test_get_marks_the_record_used(tmp_path):
    store = RecordStore(tmp_path)
    store.put(_record())
    os.utime(store.path("k1"), (1000, 1000))
    store.get("k1")
    assert store.path("k1").stat().st_mtime > 1000


def _files(record):
    data = b"{}"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    record = dataclasses.replace(record, images=tuple(
        dataclasses.replace(image, sbom_digest=digest) for image in record.images))
    return record, {image.sbom: data for image in record.images}


def test_up_to_date_when_every_name_and_sbom_is_as_recorded():
    record, files = _files(_record())
    ids = {image.name: image.id for image in record.images}
    assert stale(record, ids, files.get) is None


def test_stale_when_an_image_is_gone_or_moved_or_an_sbom_changed():
    record, files = _files(_record())
    ids = {image.name: image.id for image in record.images}
    first, second = record.images[0], record.images[1]
    assert "gone" in stale(record, dict(ids, **{first.name: None}), files.get)
    assert "gone" in stale(record, {}, files.get)
    assert "another image" in stale(record, dict(ids, **{second.name: "sha256:0"}),
                                    files.get)
    assert "SBOM" in stale(record, ids, dict(files, **{second.sbom: None}).get)
    assert "changed" in stale(record, ids, dict(files, **{second.sbom: b"{ }"}).get)


def test_read_file(tmp_path):
    (tmp_path / "a").write_bytes(b"x")
    assert build_record.read_file(str(tmp_path / "a")) == b"x"
    assert build_record.read_file(str(tmp_path / "missing")) is None


def test_tool_identity_follows_the_code(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("A = 1\n")
    first = build_record.tool_identity(package)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert build_record.tool_identity(package) == first
    (package / "a.py").write_text("A = 2\n")
    assert build_record.tool_identity(package) != first
    assert build_record.tool_identity() == build_record.tool_identity()


def test_tool_identity_digests_the_whole_package():
    """Every module of pbrx_images counts, not only those of the package it lives in."""
    import pbrx_images

    whole = Path(pbrx_images.__file__).resolve().parent
    assert build_record.tool_identity() == build_record.tool_identity(whole)


def test_input_digests_leave_out_the_source_and_follow_every_other_input():
    digests = build_record.input_digests(INPUTS)
    assert "source" not in digests
    assert set(digests) == set(build_record.key_data(INPUTS)) - {"source"}
    assert build_record.input_digests(dataclasses.replace(INPUTS, source_digest="src2")) \
        == digests
    for field in dataclasses.fields(Inputs):
        if field.name == "source_digest":
            continue
        changed = build_record.input_digests(dataclasses.replace(INPUTS, **{
            field.name: _changed(getattr(INPUTS, field.name))}))
        assert changed != digests, field.name


def test_stale_when_a_tag_of_the_more_tags_is_gone_or_moved():
    record, files = _files(_record())
    record = dataclasses.replace(record, plan=dataclasses.replace(record.plan,
                                                                  more_tags=("stable",)))
    ids = record.plan.all_names({image.name: image.id for image in record.images})
    assert stale(record, ids, files.get) is None
    second = record.images[1]
    extra = second.name.rpartition(":")[0] + ":stable"
    assert stale(record, dict(ids, **{extra: None}), files.get) == \
        "the image %s is gone" % extra
    assert stale(record, dict(ids, **{extra: "sha256:0"}), files.get) == \
        "%s is now another image" % extra
