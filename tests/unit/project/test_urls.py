"""Tests for pbrx_images.project.urls."""
from __future__ import annotations

import pytest

from pbrx_images.project.urls import (file_url_to_path, is_loopback_url, is_remote_url, redact,
                                      secrets_in)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pass@host/simple", "https://***@host/simple"),
        ("http://token@host", "http://***@host"),
        ("x https://u:p@ss@host:8080/a?b=c@d y", "x https://***@host:8080/a?b=c@d y"),
        (
            "PIP_INDEX_URL=https://a:b@h/s and http://c:d@i",
            "PIP_INDEX_URL=https://***@h/s and http://***@i",
        ),
        ("socks5h://me:pw@proxy:1080", "socks5h://***@proxy:1080"),
        ("https://host/path@v1", "https://host/path@v1"),
        ("https://host?q=a@b", "https://host?q=a@b"),
        ("no url user@example.org", "no url user@example.org"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("http://127.0.0.1:3128", True), ("localhost:3128", True), ("http://[::1]:8080", True),
    ("http://proxy.example:3128", False), ("http://[unclosed", False),
    ("user:pw@127.0.0.2:3128", True),
])
def test_is_loopback_url(value: str, expected: bool) -> None:
    assert is_loopback_url(value) is expected


@pytest.mark.parametrize(("item", "expected"), [
    ("https://index.example/simple", True), ("FILE:///srv/wheels", False),
    ("/srv/wheels", False), ("git+ssh://host/repo", True),
])
def test_is_remote_url(item: str, expected: bool) -> None:
    assert is_remote_url(item) is expected


@pytest.mark.parametrize(("item", "expected"), [
    ("file:///srv/my%20wheels", "/srv/my wheels"), ("file://localhost/srv/w", "/srv/w"),
    ("file://otherhost/srv/w", "file://otherhost/srv/w"), ("/srv/w", "/srv/w"),
    ("file://[unclosed/x", "file://[unclosed/x"),
])
def test_file_url_to_path(item: str, expected: str) -> None:
    assert file_url_to_path(item) == expected


def test_secrets_in_names_credentials_and_whole_proxy_urls() -> None:
    assert set(secrets_in("https://user:p%40ss@host/simple https://host/plain", False)) == {
        "https://user:p%40ss@host/simple", "p%40ss", "p@ss"}
    assert set(secrets_in("https://token@host/simple", False)) == {
        "https://token@host/simple", "token"}
    assert list(secrets_in("https://host/simple", False)) == []
    # a proxy URL is a secret as a whole, even without credentials
    assert list(secrets_in("proxy.example:3128", True)) == ["proxy.example:3128"]
    assert "pw" in set(secrets_in("me:pw@proxy.example:3128", True))
