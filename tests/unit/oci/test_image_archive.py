"""Image configurations and the archive docker load takes."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile

from pbrx_images.oci.image_archive import (ArchivedImage, NewLayer, archive, chain_ids,
                                           image_config, parent_history)

PARENT = {
    "Id": "sha256:parent",
    "Architecture": "amd64", "Os": "linux",
    "Config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/bin/sh"], "Labels": {"a": "b"},
               "Hostname": "abc123", "Image": "sha256:old", "Entrypoint": None},
    "RootFS": {"Type": "layers", "Layers": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]},
}


def test_chain_ids_follow_the_oci_definition():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(
        ("%s %s" % (a, b)).encode()).hexdigest()]


def test_parent_history_marks_as_many_layers_as_the_image_has():
    history = [  # newest first, as the API gives it
        {"Created": 30, "CreatedBy": "/bin/sh -c #(nop)  CMD [\"sh\"]", "Size": 0},
        {"Created": 20, "CreatedBy": "", "Size": 0, "Comment": "committed"},
        {"Created": 10, "CreatedBy": "/bin/sh -c apt-get install", "Size": 100},
    ]
    entries = parent_history(history, 2)
    assert [entry.get("empty_layer", False) for entry in entries] == [False, False, True]
    assert entries[0]["created"] == "1970-01-01T00:00:10Z"
    assert entries[1]["comment"] == "committed"


def test_image_config_is_canonical_and_keeps_only_image_settings():
    layer = NewLayer("sha256:" + "3" * 64, "pbrx-images: foo 1.0")
    config = image_config(PARENT, [{"created": "x"}, {"created": "y"}], [layer],
                          {"Cmd": ["foo"], "Labels": {"a": "b", "c": "d"}},
                          "1970-01-01T00:00:00Z", "pbrx-images")
    assert config == image_config(PARENT, [{"created": "x"}, {"created": "y"}], [layer],
                                  {"Labels": {"c": "d", "a": "b"}, "Cmd": ["foo"]},
                                  "1970-01-01T00:00:00Z", "pbrx-images")
    document = json.loads(config)
    assert document["config"] == {"Env": ["PATH=/usr/bin"], "Cmd": ["foo"],
                                  "Labels": {"a": "b", "c": "d"}}
    assert document["rootfs"]["diff_ids"] == PARENT["RootFS"]["Layers"] + [layer.diff_id]
    assert len([h for h in document["history"] if not h.get("empty_layer")]) == 3
    assert b" " not in config.replace(b"pbrx-images: foo 1.0", b"")


def test_config_only_image_gets_an_empty_layer_history_entry():
    document = json.loads(image_config(PARENT, [{}, {}], [], {"Cmd": ["x"]}, "t", "CMD x"))
    assert document["history"][-1] == {"created": "t", "created_by": "CMD x",
                                       "empty_layer": True}
    assert document["rootfs"]["diff_ids"] == PARENT["RootFS"]["Layers"]


def test_archive_is_a_tar_with_manifest_and_only_the_given_layers():
    layer_data = b"layer tar bytes" * 100
    new = "sha256:" + hashlib.sha256(layer_data).hexdigest()
    config = image_config(PARENT, [{}, {}], [NewLayer(new, "x")], {}, "t", "c")
    image = ArchivedImage(config, ("work/foo:1",))
    data = b"".join(archive([image], {new: io.BytesIO(layer_data)}))
    assert len(data) % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
        assert tar.extractfile("blobs/sha256/" + new[7:]).read() == layer_data
        assert tar.extractfile(manifest[0]["Config"]).read() == config
    assert manifest == [{"Config": "blobs/sha256/" + image.id[7:], "RepoTags": ["work/foo:1"],
                         "Layers": ["blobs/sha256/" + "1" * 64, "blobs/sha256/" + "2" * 64,
                                    "blobs/sha256/" + new[7:]]}]
    # the parent's layers are named, not included
    assert "blobs/sha256/" + "1" * 64 not in names
    assert image.id == "sha256:" + hashlib.sha256(config).hexdigest()
