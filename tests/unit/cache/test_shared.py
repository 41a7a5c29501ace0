"""The pure parts of the shared build cache: references, entry manifests, the tally."""
from __future__ import annotations

import json

import pytest

from pbrx_images.cache import shared
from pbrx_images.errors import BuildError
from pbrx_images.plan.names import check_cache_reference
from pbrx_images.registry.client import Descriptor, Unverifiable

CONFIG = Descriptor(shared.CONFIG_TYPE % "layer", "sha256:" + "1" * 64, 10)
BLOB = Descriptor(shared.LAYER_TYPE, "sha256:" + "2" * 64, 2048)


@pytest.mark.parametrize("reference", ["registry.example.com/team/app-cache",
                                       "127.0.0.1:5000/cache", "localhost/a/b/c",
                                       "docker.io/team/cache"])
def test_a_registry_repository_is_a_reference(reference):
    assert check_cache_reference(reference, "--cache-from") == reference


@pytest.mark.parametrize("reference, problem", [
    ("team/cache", "is not a registry repository"),  # Docker Hub without saying so
    ("cache", "is not a registry repository"),
    ("127.0.0.1:5000", "is not a registry repository"),
    ("Registry.example.com/UPPER", "is not a registry repository"),
    ("registry.example.com/team/cache:latest", "names a tag or digest"),
    ("registry.example.com/team/cache@sha256:" + "a" * 64, "names a tag or digest"),
])
def test_anything_else_is_refused_with_an_example(reference, problem):
    with pytest.raises(BuildError, match=problem) as error:
        check_cache_reference(reference, "--cache-to")
    assert str(error.value).startswith("--cache-to %r" % reference)
    assert "registry.example.com/team/app-cache" in str(error.value)


def test_an_entry_manifest_is_the_same_bytes_on_any_machine():
    one = shared.manifest_bytes("layer", "k" * 64, CONFIG, [BLOB])
    assert one == shared.manifest_bytes("layer", "k" * 64, CONFIG, [BLOB])
    manifest = json.loads(one)
    assert manifest["artifactType"] == shared.ARTIFACT_TYPE
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert shared._parse_manifest(one, "layer") == (CONFIG, [BLOB])


def test_a_manifest_of_another_kind_or_tool_is_unverifiable():
    one = shared.manifest_bytes("layer", "k" * 64, CONFIG, [BLOB])
    with pytest.raises(Unverifiable, match="not a wheel entry"):
        shared._parse_manifest(one, "wheel")
    other = json.loads(one)
    other["artifactType"] = "application/vnd.example.other"
    with pytest.raises(Unverifiable, match="not a pbrx-images cache entry"):
        shared._parse_manifest(json.dumps(other).encode(), "layer")
    with pytest.raises(Unverifiable, match="not JSON"):
        shared._parse_manifest(b"\x00", "layer")


def test_tags_are_kind_and_key_within_the_128_characters_of_a_tag():
    assert shared.tag("layer", "a" * 64) == "layer-" + "a" * 64
    assert len(shared.tag("layer", "a" * 200)) == 128


def test_the_tally_says_what_was_used_missed_and_written():
    tally = shared.Tally()
    assert tally.summary() == "nothing used or written"
    tally.hits["layer"] = 2
    tally.misses += [("layer", "k1", shared.NO_ENTRY), ("layer", "k2", "unverifiable: bad")]
    tally.stored["layer"] = 3
    assert tally.summary() == ("2 layer entries used, 2 missed (no entry for this key; "
                               "unverifiable), 3 written")
    assert tally.to_json()["misses"][1] == {"kind": "layer", "key": "k2",
                                            "why": "unverifiable: bad"}


def test_a_build_without_cache_to_writes_nothing(tmp_path):
    cache = shared.SharedCache("127.0.0.1:1/team/cache", None, None)
    tar = tmp_path / "layer.tar"
    tar.write_bytes(b"x")
    from pbrx_images.cache.layers import CachedLayer
    cache.keep_layer("k", CachedLayer("sha256:" + "0" * 64, "a", "a 1", 1, "dependency", {}),
                     tar)
    cache.write()  # nothing kept, nothing sent: no registry is reached
    assert cache.tally.stored == {} and cache.tally.notes == []
