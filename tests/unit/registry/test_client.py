"""The pure parts of the registry client (the rest is tested against a real registry:
tests/engine/test_shared_cache.py)."""
from __future__ import annotations

import pytest

from pbrx_images.registry.client import Descriptor, Repository, Unverifiable, is_loopback

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True),
    ("127.1.2.3", True), ("[::1]:5000", True), ("::1", True),
    ("registry.example.com", False), ("10.0.0.1:5000", False), ("localhost.example.com", False),
])
def test_loopback_registries_are_spoken_to_over_http(host, loopback):
    assert is_loopback(host) is loopback
    assert Repository(host, "team/cache").base.startswith("http://" if loopback else "https://")


def test_a_descriptor_round_trips_through_json():
    descriptor = Descriptor("application/x", DIGEST, 12, {"a": "b"})
    assert Descriptor.from_json(descriptor.to_json()) == descriptor
    assert "annotations" not in Descriptor("application/x", DIGEST, 1).to_json()


@pytest.mark.parametrize("data", [
    None, [], {"digest": DIGEST, "size": 1}, {"digest": "sha256:short", "size": 1,
                                              "mediaType": "x"},
    {"digest": DIGEST, "size": -1, "mediaType": "x"}, {"digest": DIGEST, "size": "1",
                                                       "mediaType": "x"},
    {"digest": "md5:" + "a" * 32, "size": 1, "mediaType": "x"},
    {"digest": DIGEST, "size": 1, "mediaType": "x", "annotations": "x"},
])
def test_a_descriptor_that_is_not_one_is_unverifiable(data):
    with pytest.raises(Unverifiable):
        Descriptor.from_json(data)
