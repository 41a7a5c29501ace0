"""Reading layers out of the archives engines' ``docker save`` streams."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from pbrx_images.oci.saved_image import SavedImageError, layer_diff_ids, read_saved_layers


def _layer(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


LAYERS = [_layer("etc/one", b"1" * 5000), _layer("etc/two", b"2"), _layer("big", b"3" * 70000)]
DIFF_IDS = [_digest(layer) for layer in LAYERS]
CONFIG = json.dumps({"rootfs": {"type": "layers", "diff_ids": DIFF_IDS}}).encode()


def _save(members: list[tuple[str, bytes | str]], manifest_last: bool = True) -> bytes:
    """A save archive: (path, content), or (path, "->target") for a symbolic link."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, content in members:
            info = tarfile.TarInfo(path)
            if isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content[2:]
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _chunks(data: bytes, size: int = 777):
    return [data[offset:offset + size] for offset in range(0, len(data), size)]


def _podman_save() -> bytes:
    """As podman 4.3 writes it: ``{diff_id}.tar``, links from ``{id}/layer.tar``."""
    members: list[tuple[str, bytes | str]] = [
        (diff_id[7:] + ".tar", layer) for diff_id, layer in zip(DIFF_IDS, LAYERS)]
    members.append(("abc.json", CONFIG))
    members += [("%d/layer.tar" % number, "->../%s.tar" % diff_id[7:])
                for number, diff_id in enumerate(DIFF_IDS)]
    members.append(("manifest.json", json.dumps([{
        "Config": "abc.json", "RepoTags": ["localhost/x:y"],
        "Layers": [diff_id[7:] + ".tar" for diff_id in DIFF_IDS]}]).encode()))
    return _save(members)


def test_manifest_maps_layer_paths_to_the_configuration_s_diff_ids():
    manifest = json.dumps([{"Config": "./blobs/sha256/c", "RepoTags": None,
                            "Layers": ["blobs/sha256/a", "blobs/sha256/b", "x/layer.tar"]}])
    assert layer_diff_ids(manifest.encode(), {"blobs/sha256/c": CONFIG}.__getitem__) == {
        "blobs/sha256/a": DIFF_IDS[0], "blobs/sha256/b": DIFF_IDS[1],
        "x/layer.tar": DIFF_IDS[2]}


@pytest.mark.parametrize("manifest", [b"{", b"{}", b'[{"Config": "c"}]',
                                      b'[{"Config": "c", "Layers": ["a"]}]',
                                      b'[{"Config": "missing", "Layers": []}]'])
def test_an_unreadable_manifest_is_one_sentence(manifest):
    with pytest.raises(SavedImageError, match="manifest.json cannot be read"):
        layer_diff_ids(manifest, {"c": CONFIG}.__getitem__)


def test_wanted_layers_of_a_podman_save_are_stored_by_diff_id(tmp_path):
    wanted = [DIFF_IDS[0], DIFF_IDS[2]]
    stored = read_saved_layers(_chunks(_podman_save()), wanted, tmp_path,
                               lambda diff_id: tmp_path / (diff_id[7:] + ".tar"))
    assert sorted(stored) == sorted(wanted)
    for diff_id in wanted:
        assert _digest(stored[diff_id].read_bytes()) == diff_id
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        diff_id[7:] + ".tar" for diff_id in wanted)  # no temporary file left


def test_layers_are_found_through_links_and_uncompressed(tmp_path):
    """Docker 25's blobs are named by the compressed digest when compressed."""
    blobs = [gzip.compress(LAYERS[0]), LAYERS[1], gzip.compress(LAYERS[2][:1000])
             + gzip.compress(LAYERS[2][1000:])]  # two gzip members in one
    members: list[tuple[str, bytes | str]] = [
        ("blobs/sha256/" + _digest(blob)[7:], blob) for blob in blobs]
    members.append(("blobs/sha256/config", CONFIG))
    members.append(("old/layer.tar", "->../blobs/sha256/" + _digest(blobs[0])[7:]))
    members.append(("manifest.json", json.dumps([{
        "Config": "blobs/sha256/config",
        "Layers": ["old/layer.tar"] + ["blobs/sha256/" + _digest(blob)[7:]
                                       for blob in blobs[1:]]}]).encode()))
    stored = read_saved_layers(_chunks(_save(members), 1 << 16), DIFF_IDS, tmp_path,
                               lambda diff_id: tmp_path / diff_id[7:])
    assert [stored[diff_id].read_bytes() for diff_id in DIFF_IDS] == LAYERS


def test_a_layer_that_does_not_match_its_diff_id_is_refused(tmp_path):
    members: list[tuple[str, bytes | str]] = [("a.tar", LAYERS[0]), ("b.tar", LAYERS[0]),
                                              ("c.tar", LAYERS[2]), ("config", CONFIG)]
    members.append(("manifest.json", json.dumps([{
        "Config": "config", "Layers": ["a.tar", "b.tar", "c.tar"]}]).encode()))
    with pytest.raises(SavedImageError, match="has another digest"):
        read_saved_layers(_chunks(_save(members)), [DIFF_IDS[1]], tmp_path,
                          lambda diff_id: tmp_path / diff_id[7:])
    assert list(tmp_path.iterdir()) == []


def test_a_wanted_layer_the_image_lacks_is_refused(tmp_path):
    with pytest.raises(SavedImageError, match="without its layer sha256:" + "f" * 64):
        read_saved_layers(_chunks(_podman_save()), [DIFF_IDS[0], "sha256:" + "f" * 64],
                          tmp_path, lambda diff_id: tmp_path / diff_id[7:])


def test_a_save_without_manifest_or_cut_short_is_refused(tmp_path):
    with pytest.raises(SavedImageError, match="without a manifest.json"):
        read_saved_layers([_save([("a.tar", LAYERS[0])])], DIFF_IDS[:1], tmp_path,
                          lambda diff_id: tmp_path / diff_id[7:])
    with pytest.raises(SavedImageError, match="cannot be read"):
        read_saved_layers(_chunks(_podman_save()[:30000]), DIFF_IDS[:1], tmp_path,
                          lambda diff_id: tmp_path / diff_id[7:])
    assert list(tmp_path.iterdir()) == []
