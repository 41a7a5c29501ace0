"""URLs in the settings a build forwards: credentials hidden, secrets found, places told.

Pure code.  :func:`redact` hides the credentials of every URL in a text
before it is logged or labelled; :func:`secrets_in` names the strings of an
option value that must never be written into an image; the rest tells
where a URL points (another machine, the host's disk, the host's loopback),
which decides whether a build container can use it.
"""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import unquote, urlsplit

URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# The user information of a URL: from "scheme://" up to the last "@" before
# the host ends (at "/", "?", "#" or whitespace).
_URL_CREDENTIALS = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@")


def redact(text: str) -> str:
    """Hide the credentials of every URL in ``text``.

    ``scheme://user:password@host`` and ``scheme://token@host`` both become
    ``scheme://***@host``.  Proxy settings written without a scheme
    (``user:password@host:port``) are not recognised.
    """
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def is_remote_url(item: str) -> bool:
    """True for a URL with a scheme other than ``file``."""
    return bool(URL_SCHEME.match(item)) and not item.lower().startswith("file:")


def file_url_to_path(item: str) -> str:
    """Return the path of a ``file:`` URL, or ``item`` itself if it is a path."""
    if not item.lower().startswith("file:"):
        return item
    try:
        parts = urlsplit(item)
    except ValueError:  # e.g. an unclosed "[": reading it fails with a note
        return item
    if parts.netloc not in ("", "localhost"):
        return item  # a file on another machine: reading it fails with a note
    return unquote(parts.path)


def is_loopback_url(value: str) -> bool:
    url = value if URL_SCHEME.match(value) else f"http://{value}"
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _netloc(url: str) -> str:
    """The ``user@host:port`` part of a URL with a scheme.

    Unlike ``urlsplit(url).netloc`` this never raises ValueError (for an
    unclosed "[", or characters that change under NFKC normalization), so
    the credentials of a URL pip may still accept are found.
    """
    return re.split(r"[/?#]", url.split("://", 1)[1], maxsplit=1)[0]


def secrets_in(value: str, is_proxy: bool) -> Iterable[str]:
    """Yield the secrets in an option value: URL credentials, proxy URLs."""
    for item in value.split():
        if is_proxy:
            yield item
            url = item if URL_SCHEME.match(item) else f"http://{item}"
        elif URL_SCHEME.match(item):
            url = item
        else:
            continue
        netloc = _netloc(url)
        if "@" not in netloc:
            continue
        user, colon, password = netloc.rpartition("@")[0].partition(":")
        secret = password if colon else user
        if secret:
            yield item
            yield secret
            yield unquote(secret)
