"""Registries in image names, and the engine's push stream."""
from __future__ import annotations

import pytest

from pbrx_images.engine.registry import STAY_TAGGED, PushStream, push_failure
from pbrx_images.errors import BuildError
from pbrx_images.plan.names import check_push_target, registry_of


@pytest.mark.parametrize("name, registry", [
    ("pgtool-base:latest", None),
    ("team/pgtool-base:latest", None),
    ("team/sub/pgtool-base:v1", None),
    ("library/python:3.11", None),
    ("127.0.0.1:5000/team/pgtool-base:latest", "127.0.0.1:5000"),
    ("registry.example.com/pgtool-base:latest", "registry.example.com"),
    ("registry.example.com:443/a/b/c:t", "registry.example.com:443"),
    ("localhost/pgtool-base:latest", "localhost"),
    ("localhost:5000/pgtool-base:latest", "localhost:5000"),
    ("myhost:5000/x:latest", "myhost:5000"),
    ("docker.io/team/pgtool-base:latest", "docker.io"),
    ("index.docker.io/team/pgtool-base:latest", "docker.io"),
    ("quay.io/team/x:latest", "quay.io"),
    ("[::1]:5000/x:latest", "[::1]:5000"),
])
def test_registry_of_reads_names_as_docker_does(name, registry):
    assert registry_of(name) == registry


@pytest.mark.parametrize("name", ["x:latest", "team/x:latest", "localhostx/x:latest"])
def test_push_to_docker_hub_without_saying_so_is_refused(name):
    with pytest.raises(BuildError) as raised:
        check_push_target(name)
    message = str(raised.value)
    assert name in message and "Docker Hub" in message and "docker.io/NAMESPACE" in message


@pytest.mark.parametrize("name, registry", [
    ("docker.io/team/x:latest", "docker.io"),
    ("127.0.0.1:5000/team/x:latest", "127.0.0.1:5000"),
])
def test_push_target_with_a_registry(name, registry):
    assert check_push_target(name) == registry


# What dockerd 20.10 sends while pushing an image (decoded), abridged.
SUCCESS = [
    {"status": "The push refers to repository [127.0.0.1:5000/team/app-base]"},
    {"status": "Preparing", "progressDetail": {}, "id": "aaa111"},
    {"status": "Preparing", "progressDetail": {}, "id": "bbb222"},
    {"status": "Preparing", "progressDetail": {}, "id": "ccc333"},
    {"status": "Waiting", "progressDetail": {}, "id": "ccc333"},
    {"status": "Pushing", "progressDetail": {"current": 512, "total": 4096},
     "progress": "[=>   ]", "id": "aaa111"},
    {"status": "Layer already exists", "progressDetail": {}, "id": "bbb222"},
    {"status": "Mounted from team/other", "progressDetail": {}, "id": "ccc333"},
    {"status": "Pushed", "progressDetail": {}, "id": "aaa111"},
    {"status": "latest: digest: sha256:" + "d" * 64 + " size: 1234"},
    {"progressDetail": {}, "aux": {"Tag": "latest", "Digest": "sha256:" + "d" * 64,
                                   "Size": 1234}},
]


def test_push_stream_gives_digest_and_layer_counts():
    stream = PushStream("127.0.0.1:5000/team/app-base:latest")
    lines = [stream.feed(chunk) for chunk in SUCCESS]
    assert stream.error is None
    assert stream.digest == "sha256:" + "d" * 64
    assert stream.pushed == ["aaa111"]
    assert sorted(stream.already_there) == ["bbb222", "ccc333"]
    assert stream.summary() == "1 layer uploaded, 2 already in the registry"
    logged = [line for line in lines if line]
    assert "aaa111: Pushed" in logged and "bbb222: Layer already exists" in logged
    assert not any("Pushing" in line or "Preparing" in line for line in logged)


def test_push_stream_error():
    stream = PushStream("127.0.0.1:5000/team/app-base:latest")
    for chunk in SUCCESS[:3]:
        stream.feed(chunk)
    line = stream.feed({"errorDetail": {"message": "no basic auth credentials"},
                        "error": "no basic auth credentials"})
    assert stream.error == "no basic auth credentials"
    assert line == "error: no basic auth credentials"
    assert stream.digest is None


def test_push_stream_error_without_detail():
    stream = PushStream("x")
    stream.feed({"error": "denied: requested access to the resource is denied"})
    assert stream.error == "denied: requested access to the resource is denied"


NAME = "127.0.0.1:5000/team/app-base:latest"


@pytest.mark.parametrize("error, expected", [
    ("no basic auth credentials", "run 'docker login 127.0.0.1:5000'"),
    ("unauthorized: authentication required", "run 'docker login 127.0.0.1:5000'"),
    ("denied: requested access to the resource is denied",
     "may not push to 127.0.0.1:5000/team/app-base"),
    ('Get "https://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused',
     "cannot reach the registry 127.0.0.1:5000"),
    ('Get "https://reg.invalid/v2/": dial tcp: lookup reg.invalid: no such host',
     "cannot reach the registry 127.0.0.1:5000"),
    ('Get "https://127.0.0.1:5000/v2/": http: server gave HTTP response to HTTPS client',
     "insecure-registries"),
    ("x509: certificate signed by unknown authority", "/etc/docker/certs.d/127.0.0.1:5000/"),
    ("name unknown: repository name not known to registry",
     "does not accept the repository 127.0.0.1:5000/team/app-base"),
    ("something new", "fix what the registry says"),
])
def test_push_failure_says_what_to_do(error, expected):
    message = str(push_failure(NAME, error))
    assert message.startswith("Pushing %s to 127.0.0.1:5000 failed (%s): "
                              % (NAME, error.rstrip(".")))
    assert expected in message
    assert message.endswith(STAY_TAGGED + ".")
    assert message.count("\n") == 0


def test_push_failure_to_docker_hub_names_it():
    message = str(push_failure("docker.io/team/x:latest", "denied: requested access"))
    assert "to docker.io failed" in message and "docker login docker.io" in message
