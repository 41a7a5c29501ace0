"""OCI labels: creation time, git origin, the label set."""
from __future__ import annotations

import datetime
import shutil
import subprocess

import pytest

from pbrx_images.errors import BuildError
from pbrx_images.project.labels import PREFIX, created, git_origin, git_state, oci_labels


def test_created_honours_source_date_epoch():
    assert created({"SOURCE_DATE_EPOCH": "1700000000"}) == "2023-11-14T22:13:20Z"
    assert created({"SOURCE_DATE_EPOCH": "0"}) == "1970-01-01T00:00:00Z"


def test_created_defaults_to_now_in_utc():
    value = created({})
    assert len(value) == 20 and value.endswith("Z") and value[10] == "T"


@pytest.mark.parametrize("value", ["yesterday", "", "1.5", "99999999999999999999"])
def test_created_rejects_a_bad_source_date_epoch(value):
    with pytest.raises(BuildError, match="SOURCE_DATE_EPOCH"):
        created({"SOURCE_DATE_EPOCH": value})


def test_oci_labels_leave_out_unknown_values():
    labels = oci_labels("foo-api", None, None, None, "2023-11-14T22:13:20Z", "debian:12",
                        "sha256:abc")
    assert labels == {PREFIX + "title": "foo-api", PREFIX + "created": "2023-11-14T22:13:20Z",
                      PREFIX + "base.name": "debian:12", PREFIX + "base.digest": "sha256:abc"}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_origin_of_a_checkout_redacts_credentials_and_writes_nothing(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True,
                              stdout=subprocess.PIPE).stdout.decode().strip()

    git("init", "-q")
    (tmp_path / "f").write_text("x")
    git("add", "f")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
    git("remote", "add", "origin", "https://user:s3cret@example.com/foo.git")
    before = sorted(p.name for p in (tmp_path / ".git").iterdir())
    index = (tmp_path / ".git" / "index").stat().st_mtime_ns
    revision, source = git_origin(tmp_path)
    assert revision == git("rev-parse", "HEAD")
    assert source == "https://***@example.com/foo.git"
    assert sorted(p.name for p in (tmp_path / ".git").iterdir()) == before
    assert (tmp_path / ".git" / "index").stat().st_mtime_ns == index


def test_git_origin_of_a_plain_directory(tmp_path):
    assert git_origin(tmp_path) == (None, None)


def test_git_state_follows_what_a_version_from_git_is_made_of(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c",
                               "user.email=t@example.com", *args], check=True,
                              stdout=subprocess.PIPE).stdout.decode().strip()

    git("init", "-q")
    (tmp_path / "f").write_text("x")
    git("add", "f")
    git("commit", "-qm", "x")
    day = datetime.date(2026, 12, 7)
    clean = git_state(tmp_path, day)
    assert clean == git_state(tmp_path, day)
    assert "dirty" not in clean
    (tmp_path / "f").write_text("y")
    dirty = git_state(tmp_path, day)
    assert dirty != clean and "dirty on 2026-12-07" in dirty
    (tmp_path / "f").write_text("z")  # still dirty: the same answer
    assert git_state(tmp_path, day) == dirty
    assert git_state(tmp_path, datetime.date(2026, 12, 8)) != dirty
    git("commit", "-qam", "y")
    committed = git_state(tmp_path, day)
    assert committed not in (clean, dirty)
    git("tag", "1.0")
    assert git_state(tmp_path, day) != committed
    (tmp_path / "g").write_text("new")
    untracked = git_state(tmp_path, day)
    git("add", "g")
    assert git_state(tmp_path, day) != untracked  # tracked files' names count


def test_git_state_of_a_plain_directory(tmp_path):
    assert git_state(tmp_path) == "no git"


def test_given_labels_come_after_and_over_build_images_own():
    from pbrx_images.project.labels import overridden, with_given

    ours = {"org.opencontainers.image.title": "app", "org.opencontainers.image.version": "1"}
    given = (("org.example.team", "infra"), ("org.opencontainers.image.title", "mine"),
             ("org.opencontainers.image.version", "1"))
    assert with_given(ours, given) == {"org.opencontainers.image.title": "mine",
                                       "org.opencontainers.image.version": "1",
                                       "org.example.team": "infra"}
    assert overridden(ours, given) == {"org.opencontainers.image.title": ("app", "mine")}
