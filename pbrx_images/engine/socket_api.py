"""The engine's reads over its unix socket, with the standard library alone.

The question a no-op rebuild asks, "are the images of the last build of
these inputs still there?", takes a few reads of the engine's HTTP API
(ping, inspect and history of each image, the lists of build containers
and work tags): about 1 ms each over a local socket, where importing the
Docker SDK took 0.12-0.20 s of the 0.32 s the whole no-op took
(issue 17's measurement; :mod:`pbrx_images.engine._sdk`).  So, for an
engine on a unix socket (the default, ``DOCKER_HOST=unix://...``, and
podman's Docker-compatible socket), :class:`SocketAPI` makes those reads
with :mod:`http.client`, one connection per request (so threads may share
it); everything else, and every read of a ``tcp://`` or ``ssh://`` engine,
goes through the SDK.

The paths carry no API version: the engine answers in its own, as the SDK
does once it has asked the engine for it (``version=auto``).
"""
from __future__ import annotations

import http.client
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


class _Connection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        try:
            self.sock.connect(self.path)
        except OSError:
            self.sock.close()
            raise


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
        connection = _Connection(self.path, self.timeout)
        try:
            connection.request("GET", target, headers={"Host": "docker"})
            response = connection.getresponse()
            body = response.read()
        except http.client.HTTPException as error:
            raise ConnectionError("the engine's answer was cut short (%s)" % error) from error
        finally:
            connection.close()
        if response.status == 404:
            return None
        if response.status >= 400:
            raise Refused(response.status, _explanation(body))
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
