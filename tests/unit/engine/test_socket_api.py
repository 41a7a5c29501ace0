"""engine.socket_api: the engine's reads over a unix socket, against a server of the test's."""
from __future__ import annotations

import http.server
import json
import socketserver
import subprocess
import sys
import threading
import urllib.parse

import pytest

from pbrx_images.engine.calls import engine_errors
from pbrx_images.engine.socket_api import (DEFAULT_SOCKET, Refused, SocketAPI, _dechunked,
                                           socket_path)
from pbrx_images.errors import EngineError
from tests.conftest import ROOT


@pytest.mark.parametrize("address, path", [
    ("", DEFAULT_SOCKET),
    ("unix://", DEFAULT_SOCKET),
    ("unix:///var/run/docker.sock", "/var/run/docker.sock"),
    ("unix:///run/user/1000/podman/podman.sock", "/run/user/1000/podman/podman.sock"),
    ("http+unix:///tmp/engine.sock", "/tmp/engine.sock"),
    ("tcp://127.0.0.1:2375", None),
    ("ssh://root@host", None),
])
def test_which_addresses_are_unix_sockets(address, path):
    assert socket_path(address) == path


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}
    seen: list[str] = []

    def do_GET(self):
        self.seen.append(self.path)
        status, body = self.routes.get(urllib.parse.urlsplit(self.path).path,
                                       (404, b'{"message": "page not found"}'))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass


@pytest.fixture
def engine(tmp_path):
    routes = {
        "/_ping": (200, b"OK"),
        "/images/pgtool-base:latest/json": (200, json.dumps({"Id": "sha256:ab"}).encode()),
        "/images/registry.example/team/app:1/history": (200, b'[{"Size": 3}]'),
        "/images/json": (200, b'[{"RepoTags": ["pbrx-images-work/x:1"]}]'),
        "/containers/json": (200, b"[]"),
        "/images/broken:1/json": (500, b'{"message": "layer store is corrupt"}'),
    }
    handler = type("Handler", (_Handler,), {"routes": routes, "seen": []})
    path = tmp_path / "engine.sock"
    server = _Server(str(path), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SocketAPI(str(path), timeout=10), handler.seen
    server.shutdown()
    server.server_close()


def test_reads_give_the_engines_json(engine):
    api, seen = engine
    api.ping()
    assert api.inspect_image("pgtool-base:latest") == {"Id": "sha256:ab"}
    assert api.history("registry.example/team/app:1") == [{"Size": 3}]
    assert api.images({"reference": "pbrx-images-work/*"}) == [
        {"RepoTags": ["pbrx-images-work/x:1"]}]
    assert api.containers({"name": "^/pbrx-images-"}) == []
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(seen[-1]).query)
    assert query == {"all": ["1"], "filters": ['{"name": ["^/pbrx-images-"]}']}


def test_a_missing_image_is_none(engine):
    api, _ = engine
    assert api.inspect_image("nothing:here") is None


def test_an_error_status_is_refused_and_says_the_engines_words(engine):
    api, _ = engine
    with pytest.raises(Refused) as refused:
        api.inspect_image("broken:1")
    assert (refused.value.status, refused.value.explanation) == (500, "layer store is corrupt")
    with pytest.raises(EngineError, match=r"^The Docker engine refused to inspect image "
                       r"broken:1: layer store is corrupt\.$"):
        with engine_errors("inspect image broken:1"):
            api.inspect_image("broken:1")


def test_a_socket_with_no_engine_is_a_lost_engine(tmp_path):
    api = SocketAPI(str(tmp_path / "none.sock"), timeout=5)
    with pytest.raises(EngineError, match="^Lost the Docker engine while trying to list "
                       "images"):
        with engine_errors("list images"):
            api.images({})


def test_a_body_in_chunks_is_joined_and_a_cut_one_is_a_lost_connection():
    assert _dechunked(b"4\r\n[1, \r\n2;x=y\r\n2]\r\n0\r\n\r\n") == b"[1, 2]"
    with pytest.raises(ConnectionError, match="cut short"):
        _dechunked(b"10\r\n[1, 2]")


def test_an_answer_that_stops_early_is_a_lost_connection(tmp_path):
    import socket

    path = tmp_path / "cut.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)

        def answer():
            connection, _ = server.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n[1, 2")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(ConnectionError, match="cut short"):
            SocketAPI(str(path), timeout=10).get("/images/json")
        thread.join(10)


def test_the_command_and_the_pipeline_do_not_import_the_sdk():
    # a no-op rebuild needs only the reads above; the SDK costs 0.12-0.20 s to import
    code = ("import sys, pbrx_images.cli, pbrx_images.pipeline; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('docker', 'requests', 'urllib3', 'paramiko') and "
            "type(sys.modules[m]).__name__ != '_LazyModule'))")
    found = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, check=True)
    assert found.stdout.strip() == "[]"
