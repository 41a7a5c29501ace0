"""Which digest of an image is a registry's (the base.digest label)."""
from __future__ import annotations

from pbrx_images.engine import _registry_digest

ID = "sha256:" + "1" * 64
DIGEST = "sha256:" + "2" * 64


def test_a_registry_digest_is_used():
    assert _registry_digest(["registry.example.com/base@" + DIGEST], ID) == DIGEST


def test_without_a_digest_the_id_is_used():
    assert _registry_digest([], ID) == ID


def test_podmans_localhost_digest_is_no_registrys():
    assert _registry_digest(["localhost/base@" + DIGEST], ID) == ID
    assert _registry_digest(["localhost/base@" + "sha256:" + "3" * 64,
                             "docker.io/library/base@" + DIGEST], ID) == DIGEST
