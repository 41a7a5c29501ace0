"""The client's cache of distribution layers."""
from __future__ import annotations

import hashlib

import pytest

from pbrx_images.cache.layers import CachedLayer, LayerCache, layer_key

LAYER = CachedLayer("sha256:" + "a" * 64, "foo", "foo 1.0", 12, "dependency",
                    {"opt/venv/x.py": ("file", 0o644, "", "abc")})


def test_put_then_get_needs_the_tar(tmp_path):
    cache = LayerCache(tmp_path)
    cache.put("k", LAYER)
    assert cache.get("k") is None  # no tar yet
    cache.tar_path(LAYER.diff_id).write_bytes(b"tar")
    assert cache.get("k") == LAYER
    assert cache.get("other") is None


def test_a_damaged_index_entry_is_a_miss(tmp_path):
    cache = LayerCache(tmp_path)
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "k.json").write_text("{not json")
    assert cache.get("k") is None


def test_every_input_changes_the_key():
    base = ("wheelsha", "sha256:img", "/opt/venv", "pip-24.whl", 0)
    keys = {layer_key(*base)}
    for number in range(len(base)):
        changed = list(base)
        changed[number] = changed[number] + 1 if isinstance(changed[number], int) \
            else changed[number] + "x"
        keys.add(layer_key(*changed))
    assert len(keys) == len(base) + 1


def test_prune_removes_what_was_not_used(tmp_path):
    import os
    import time

    cache = LayerCache(tmp_path)
    cache.put("old", LAYER)
    cache.tar_path(LAYER.diff_id).write_bytes(b"tar")
    stale = tmp_path / ".tmp-killed"
    stale.write_bytes(b"half")
    long_ago = time.time() - 90 * 24 * 3600
    for path in (stale, cache.tar_path(LAYER.diff_id), tmp_path / "index" / "old.json"):
        os.utime(path, (long_ago, long_ago))
    cache.prune(max_age=3600)
    assert list(tmp_path.iterdir()) == [tmp_path / "index"]
    assert list((tmp_path / "index").iterdir()) == []


def test_get_marks_the_layer_as_used(tmp_path):
    import os

    cache = LayerCache(tmp_path)
    cache.put("k", LAYER)
    cache.tar_path(LAYER.diff_id).write_bytes(b"tar")
    os.utime(cache.tar_path(LAYER.diff_id), (0, 0))
    assert cache.get("k") == LAYER
    cache.prune(max_age=3600)
    assert cache.get("k") == LAYER


def test_write_tar_names_the_tar_by_its_digest_and_leaves_nothing_on_failure(tmp_path):
    cache = LayerCache(tmp_path / "layers")

    def write(out):
        out.write(b"layer bytes")
        return "sha256:" + hashlib.sha256(b"layer bytes").hexdigest()

    diff_id, path = cache.write_tar(write)
    assert path == cache.tar_path(diff_id) and path.read_bytes() == b"layer bytes"

    def fail(out):
        out.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        cache.write_tar(fail)
    assert sorted(p.name for p in cache.directory.iterdir()) == [path.name]
