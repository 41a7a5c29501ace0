"""Where the client's caches live, and the rules their files follow."""
from __future__ import annotations

import os
import time

import pytest

from pbrx_images.cache import files


def test_every_directory_is_under_the_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "cache" / "pbrx-images"
    assert files.cache_dir() == root
    assert {files.layers_dir(), files.facts_dir(), files.cached_images_dir(),
            files.builds_dir(), files.sbom_dir(), files.logs_dir()} == {
        root / "layers", root / "facts", root / "cached-images", root / "builds",
        root / "sbom", root / "logs"}


def test_without_xdg_cache_home_the_cache_is_in_home(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert files.logs_dir() == tmp_path / "home" / ".cache" / "pbrx-images" / "logs"


def test_an_empty_xdg_cache_home_is_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert files.cache_dir() == tmp_path / ".cache" / "pbrx-images"


def test_write_whole_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "file.json"
    files.write_whole(target, b"one")
    files.write_whole(target, b"two")
    assert target.read_bytes() == b"two"
    assert [path.name for path in target.parent.iterdir()] == ["file.json"]


def test_write_whole_removes_its_temporary_when_it_fails(tmp_path):
    (tmp_path / "target").mkdir()  # a directory: the rename fails
    with pytest.raises(OSError):
        files.write_whole(tmp_path / "target", b"data")
    assert [path.name for path in tmp_path.iterdir()] == ["target"]


def test_mark_used_touches_the_file_and_says_when_it_is_missing(tmp_path):
    path = tmp_path / "entry"
    path.write_bytes(b"x")
    os.utime(path, (0, 0))
    assert files.mark_used(path)
    assert time.time() - path.stat().st_mtime < 60
    assert not files.mark_used(tmp_path / "missing")


def test_prune_keeps_what_was_used_and_removes_old_files_and_temporaries(tmp_path):
    now = 10_000_000.0
    ages = {"old": files.UNUSED_FOR + 1, "recent": files.UNUSED_FOR - 1,
            ".tmp-killed": files.TEMPORARY_FOR + 1, ".tmp-writing": files.TEMPORARY_FOR - 1}
    for name, age in ages.items():
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (now - age,) * 2)
    (tmp_path / "subdirectory").mkdir()
    os.utime(tmp_path / "subdirectory", (0, 0))
    files.prune_files((tmp_path, tmp_path / "not-there"), now=now)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        ".tmp-writing", "recent", "subdirectory"]
