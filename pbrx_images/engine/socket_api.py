"""The engine's reads over its unix socket, with the standard library alone.

The question a no-op rebuild asks, "are the images of the last build of
these inputs still there?", takes a few reads of the engine's HTTP API
(ping, inspect and history of each image): a few ms each over a local
socket (a build with work also lists build containers and work tags, for
its sweep of killed builds' leftovers), where importing the
Docker SDK took 0.12-0.20 s of the 0.32 s the whole no-op took
(issue 17's measurement; :mod:`pbrx_images.engine._sdk`).  So, for an
engine on a unix socket (the default, ``DOCKER_HOST=unix://...``, and
podman's Docker-compatible socket), :class:`SocketAPI` makes those reads
over a plain socket, one connection per request (so threads may share
it); everything else, and every read of a ``tcp://`` or ``ssh://``
engine, goes through the SDK.

The paths carry no API version: the engine answers in its own, as the SDK
does once it has asked the engine for it (``version=auto``).
"""
from __future__ import annotations

import json
import socket
import urllib.parse
from typing import Any, Mapping

#: The engine's socket when ``DOCKER_HOST`` names none (the SDK's default too).
DEFAULT_SOCKET = "/var/run/docker.sock"


class Refused(Exception):
    """The engine answered a read with an error status other than 404."""

    def __init__(self, status: int, explanation: str) -> None:
        super().__init__("%d %s" % (status, explanation))
        self.status = status
        self.explanation = explanation


def socket_path(address: str) -> str | None:
    """The socket file of a ``DOCKER_HOST`` value, or None when it names no unix socket."""
    address = address.strip()
    if not address or address == "unix://":
        return DEFAULT_SOCKET
    for scheme in ("unix://", "http+unix://"):
        if address.startswith(scheme):
            return address[len(scheme):]
    return None


class SocketAPI:
    """GET requests to the engine at the unix socket ``path``.

    Errors: OSError when the socket is gone or refuses (PermissionError
    included), :class:`Refused` when the engine answers with an error.
    """

    def __init__(self, path: str, timeout: float = 600) -> None:
        self.path = path
        self.timeout = timeout

    def get(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        """The JSON the engine answers ``GET path``; None for a 404."""
        target = path + ("?" + urllib.parse.urlencode(dict(query)) if query else "")
        status, body = _request(self.path, self.timeout, target)
        if status == 404:
            return None
        if status >= 400:
            raise Refused(status, _explanation(body))
        try:
            return json.loads(body) if body.strip() else None
        except ValueError as error:
            if path == "/_ping":
                return body.decode("utf-8", "replace")
            raise ConnectionError("the engine's answer to %s is not JSON" % path) from error

    def ping(self) -> None:
        self.get("/_ping")

    def inspect_image(self, name: str) -> dict[str, Any] | None:
        return self.get("/images/%s/json" % urllib.parse.quote(name, safe="/:"))

    def history(self, name: str) -> list[dict[str, Any]] | None:
        return self.get("/images/%s/history" % urllib.parse.quote(name, safe="/:"))

    def version(self) -> dict[str, Any]:
        return self.get("/version") or {}

    def images(self, filters: Mapping[str, str]) -> list[dict[str, Any]]:
        return self.get("/images/json", {"filters": _filters(filters)}) or []

    def containers(self, filters: Mapping[str, str]) -> list[dict[str, Any]]:
        return self.get("/containers/json", {"all": "1", "filters": _filters(filters)}) or []


def _request(socket_path: str, timeout: float, target: str) -> tuple[int, bytes]:
    """``GET target`` as HTTP/1.0 over the unix socket: the status and the body.

    HTTP/1.0, so that the engine (Go's net/http, for dockerd and podman
    alike) answers with neither keep-alive nor chunks and closes the
    connection at the end of the body: the answer is all there is to read.
    Not :mod:`http.client`, whose import (email's parser, ssl) took 14 ms of
    a no-op's 0.13 s.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(socket_path)
        connection.sendall(("GET %s HTTP/1.0\r\nHost: docker\r\n\r\n" % target).encode())
        received = []
        while True:
            chunk = connection.recv(1 << 16)
            if not chunk:
                break
            received.append(chunk)
    answer = b"".join(received)
    head, separator, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if not separator or len(parts) < 2 or not parts[0].startswith("HTTP/") \
            or not parts[1].isdigit():
        raise ConnectionError("the engine's answer was cut short or is not HTTP")
    headers = {name.strip().lower(): value.strip() for name, _, value in
               (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunked(body)
    elif headers.get("content-length", "").isdigit():
        if len(body) < int(headers["content-length"]):
            raise ConnectionError("the engine's answer was cut short")
        body = body[:int(headers["content-length"])]
    return int(parts[1]), body


def _dechunked(body: bytes) -> bytes:
    """A body sent in chunks (HTTP/1.1's ``Transfer-Encoding: chunked``), joined."""
    chunks: list[bytes] = []
    while True:
        size_line, separator, body = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            raise ConnectionError("the engine's answer was cut short") from None
        if not separator or len(body) < size:
            raise ConnectionError("the engine's answer was cut short")
        if size == 0:
            return b"".join(chunks)
        chunks.append(body[:size])
        body = body[size + 2:]


def _filters(filters: Mapping[str, str]) -> str:
    """Filters as the API takes them (the SDK's ``convert_filters``)."""
    return json.dumps({key: [value] for key, value in filters.items()})


def _explanation(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        found = json.loads(text)
    except ValueError:
        return text
    if isinstance(found, dict) and isinstance(found.get("message"), str):
        return found["message"]
    return text
