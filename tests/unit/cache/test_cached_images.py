"""Tests for pbrx_images.cache.cached_images (no engine)."""
from __future__ import annotations

from pbrx_images.cache.cached_images import CachedImages


def test_nothing_is_superseded_before_a_record(tmp_path):
    assert CachedImages(tmp_path).superseded("python:3.11", "sha256:a") == []


def test_a_moved_base_name_supersedes_what_was_made_from_its_old_image(tmp_path):
    records = CachedImages(tmp_path / "records")
    records.record("python:3.11", "sha256:a", ["cache/builder:1", "cache/runtime:1"])
    records.record("python:3.11", "sha256:a", ["cache/builder:2"])  # same image: gains
    assert records.superseded("python:3.11", "sha256:a") == []
    assert records.superseded("python:3.11", "sha256:b") == \
        ["cache/builder:1", "cache/builder:2", "cache/runtime:1"]
    records.record("python:3.11", "sha256:b", ["cache/builder:3"])  # replaces
    assert records.superseded("python:3.11", "sha256:c") == ["cache/builder:3"]
    assert records.superseded("python:3.12", "sha256:c") == []


def test_an_image_another_base_name_records_is_kept(tmp_path):
    """Two names may be one image: what one of them still has is not removed."""
    records = CachedImages(tmp_path)
    records.record("python:3.11-slim", "sha256:a", ["cache/builder:1", "cache/runtime:1"])
    records.record("python:3.11-slim-bookworm", "sha256:a", ["cache/builder:1"])
    assert records.superseded("python:3.11-slim", "sha256:b") == ["cache/runtime:1"]


def test_a_broken_record_is_no_record(tmp_path):
    records = CachedImages(tmp_path)
    records.record("python:3.11", "sha256:a", ["cache/builder:1"])
    (path,) = tmp_path.glob("*.json")
    for text in ("{", "[]", '{"base_name": "python:3.11", "base_id": "sha256:a"}',
                 '{"base_name": "python:3.11", "base_id": "sha256:a", "images": [1]}'):
        path.write_text(text)
        assert records.superseded("python:3.11", "sha256:b") == []
        records.record("python:3.11", "sha256:a", ["cache/builder:2"])
        assert records.superseded("python:3.11", "sha256:b") == ["cache/builder:2"]


def test_a_record_that_cannot_be_written_is_skipped(tmp_path):
    (tmp_path / "file").write_text("")
    records = CachedImages(tmp_path / "file" / "records")
    records.record("python:3.11", "sha256:a", ["cache/builder:1"])
    assert records.superseded("python:3.11", "sha256:b") == []
