"""Running build-images as a user would, and looking at what it left."""
from __future__ import annotations

import contextlib
import io
import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import docker.errors
import pytest

from tests.conftest import in_ci

#: Debian's docker-registry (the distribution registry), which tools/test-all installs.
REGISTRY = Path("/usr/bin/docker-registry")
REGISTRY_USERNAME = "pbrx-uploader"


@dataclass
class Run:
    exit_code: int
    output: str  #: what people see: stdout and stderr together, or stderr alone (separate)
    stdout: str = ""  #: standard output, when it was kept apart (the JSON report)

    @property
    def report(self) -> dict:
        """The ``--format json`` report on standard output."""
        return json.loads(self.stdout)

    def error_line(self) -> str:
        """The one ``build-images: error:`` line of a failed build."""
        lines = [line for line in self.output.splitlines()
                 if line.startswith("build-images: error: ")]
        assert len(lines) == 1, self.output
        return lines[0]


#: ``python -c`` code that runs the command, then says which modules of the Docker SDK
#: (and its HTTP libraries) it imported, in a last line of standard error.
WITH_IMPORTS = """\
import runpy, sys
sys.argv[0] = "build-images"
try:
    runpy.run_module("pbrx_images.cli", run_name="__main__")
finally:
    sys.stderr.write("imported: %s\\n" % " ".join(sorted(
        name for name, module in sys.modules.items()
        if name.partition(".")[0] in ("docker", "requests", "urllib3", "paramiko")
        and type(module).__name__ != "_LazyModule")))
"""


def build_images(*args: str, cwd: Path | None = None, timeout: int = 1800,
                 env: dict | None = None, separate: bool = False,
                 command: Sequence[str] = ("-m", "pbrx_images.cli")) -> Run:
    """Run the ``build-images`` command in a child process, with no standard input.

    With ``separate``, standard output (where ``--format json`` writes the
    report) is kept apart from standard error (the output for people).
    ``command`` is how Python is told to run it (e.g. ``("-c", WITH_IMPORTS)``).
    """
    completed = subprocess.run(
        [sys.executable, *command, *args], cwd=cwd, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if separate else subprocess.STDOUT, timeout=timeout)
    if separate:
        run = Run(completed.returncode, completed.stderr.decode("utf-8", "replace"),
                  completed.stdout.decode("utf-8", "replace"))
    else:
        run = Run(completed.returncode, completed.stdout.decode("utf-8", "replace"))
    sys.stdout.write(run.output)  # shown by pytest when a test fails
    return run


def build_report(*args: str, env: dict | None = None, timeout: int = 1800,
                 command: Sequence[str] = ("-m", "pbrx_images.cli")) -> tuple[Run, dict]:
    """``build-images --format json ARGS``: the run (its output is standard error, for
    people) and the report on standard output ({} when the build failed)."""
    run = build_images("--format", "json", *args, env=env, timeout=timeout, separate=True,
                       command=command)
    return run, run.report if run.exit_code == 0 else {}


@contextlib.contextmanager
def labelled_base(client, base_image: str, prefix: str, label: str) -> Iterator[tuple[str, str]]:
    """A copy of ``base_image`` under a label of its own (a new ID): (its tag, the label's value).

    The cached runtime and builder images a build makes on it inherit the
    label (their keys hash the copy's ID), which is how a test finds them;
    every image with the label is removed at the end.
    """
    run_label = secrets.token_hex(6)
    tag = "%s/base:%s" % (prefix, run_label)
    dockerfile = "FROM %s\nLABEL %s=%s\n" % (base_image, label, run_label)
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    try:
        yield tag, run_label
    finally:
        for image in client.images.list(filters={"label": "%s=%s" % (label, run_label)}):
            for name in image.tags:
                client.images.remove(name, force=True)


def remove_images(client, names, force: bool = False) -> None:
    """Remove the images (or tags) ``names``: a test's clean-up, so one that is missing,
    or that the engine keeps (a container uses it), is left as it is."""
    for name in names:
        try:
            client.images.remove(name, force=force)
        except docker.errors.APIError:
            pass


def run_image(client, image: str, command=None, entrypoint=None) -> tuple[int, str]:
    """Run a throwaway container; its exit code and output."""
    container = client.containers.create(image, command, entrypoint=entrypoint)
    try:
        container.start()
        result = container.wait(timeout=300)
        return result["StatusCode"], container.logs().decode("utf-8", "replace")
    finally:
        container.remove(force=True)


def in_wheel_volume(client, image: str, volume: str, script: str,
                    writable: bool = False) -> str:
    """The output of ``sh -c script`` in a throwaway container of ``image``, the
    wheel volume ``volume`` mounted at /w (read-only unless ``writable``)."""
    return client.containers.run(
        image, ["sh", "-c", script], remove=True,
        volumes={volume: {"bind": "/w", "mode": "rw" if writable else "ro"}}).decode()


def leftover_containers(client) -> list[str]:
    """Containers build-images made (all are named pbrx-images-...) that still exist."""
    names = [name.lstrip("/") for container in client.api.containers(all=True)
             for name in container.get("Names") or ()]  # one call: no race with removals
    return [name for name in names if name.startswith("pbrx-images-")]


def work_tags(client) -> list[str]:
    return [tag for image in client.images.list() for tag in image.tags
            if tag.startswith("pbrx-images-work/")]


def has_traceback(output: str) -> bool:
    """True if build-images itself printed a traceback (output it quotes is indented)."""
    return any(line.startswith("Traceback (most recent call last)")
               for line in output.splitlines())


def derived_image(client, base: str, name: str, script: str) -> str:
    """``base`` changed by a shell script, committed as ``name`` (made once)."""
    try:
        client.images.get(name)
        return name
    except Exception:
        pass
    container = client.containers.create(base, ["sh", "-c", script])
    try:
        container.start()
        assert container.wait(timeout=300)["StatusCode"] == 0, container.logs()
        repository, _, tag = name.rpartition(":")
        container.commit(repository, tag)
    finally:
        container.remove(force=True)
    return name


def image_bytes_contain(client, image: str, needles: list[str]) -> list[str]:
    """Which of ``needles`` occur anywhere in the saved image (layers and config)."""
    encoded = [needle.encode() for needle in needles]
    longest = max(len(needle) for needle in encoded)
    found: set[bytes] = set()
    tail = b""
    for chunk in client.images.get(image).save(chunk_size=1 << 20):
        window = tail + chunk
        found.update(needle for needle in encoded if needle in window)
        tail = window[-longest:]
    return sorted(needle.decode() for needle in found)


def remove_volume(client, name: str) -> None:
    """Remove a volume (and any stopped container still holding it), if it exists."""
    for container in client.containers.list(all=True, filters={"volume": name}):
        container.remove(force=True)
    try:
        client.volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


def missing(message: str) -> None:
    """Skip for want of a tool, but fail in CI, where tools/test-all installs it."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def write_python_project(root: Path, name: str, files: Mapping[str, str], *,
                         version: str = "0.1", dependencies: Sequence[str] | None = None,
                         scripts: Mapping[str, str] | None = None,
                         extras: Mapping[str, Sequence[str]] | None = None) -> Path:
    """A setuptools project in ``root``: ``files`` (paths in it -> text) and pyproject.toml.

    Its ``[project]`` has ``name``, ``version`` and, unless None,
    ``dependencies``; ``scripts`` (name -> entry point) become
    ``[project.scripts]``, ``extras`` (name -> requirements)
    ``[project.optional-dependencies]``.  Files may be written again (a
    changed project).
    """
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    pyproject = ('[build-system]\nrequires = ["setuptools>=61"]\n'
                 'build-backend = "setuptools.build_meta"\n\n'
                 '[project]\nname = "%s"\nversion = "%s"\n' % (name, version))
    if dependencies is not None:
        pyproject += "dependencies = [%s]\n" % ", ".join('"%s"' % item for item in dependencies)
    if scripts:
        pyproject += "\n[project.scripts]\n" + "".join(
            '%s = "%s"\n' % item for item in scripts.items())
    if extras:
        pyproject += "\n[project.optional-dependencies]\n" + "".join(
            '%s = [%s]\n' % (extra, ", ".join('"%s"' % item for item in requirements))
            for extra, requirements in extras.items())
    (root / "pyproject.toml").write_text(pyproject)
    return root


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_registry(directory: Path) -> Iterator[dict]:
    """A docker-registry on a free loopback port with htpasswd: one user, a random password.

    Yields ``address`` (``127.0.0.1:PORT``, which the engine may reach over
    plain HTTP: 127.0.0.0/8 is an insecure registry by default),
    ``username``, ``password`` and ``storage`` (the registry's blob store).
    """
    if not REGISTRY.exists():
        missing("%s is missing: install Debian's docker-registry (tools/test-all does)"
                % REGISTRY)
    import bcrypt

    password = "pw-" + secrets.token_hex(16)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6)).decode()
    (directory / "htpasswd").write_text("%s:%s\n" % (REGISTRY_USERNAME, hashed))
    port = free_port()
    storage = directory / "storage"
    config = {"version": 0.1, "log": {"level": "warn"},
              "storage": {"filesystem": {"rootdirectory": str(storage)}},
              "http": {"addr": "127.0.0.1:%d" % port, "secret": secrets.token_hex(16)},
              "auth": {"htpasswd": {"realm": "pbrx-images-test",
                                    "path": str(directory / "htpasswd")}}}
    (directory / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = open(directory / "registry.log", "wb")
    process = subprocess.Popen([str(REGISTRY), "serve", str(directory / "config.yml")],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    address = "127.0.0.1:%d" % port
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen("http://%s/v2/" % address, timeout=2)
                pytest.fail("the registry does not ask for credentials")
            except urllib.error.HTTPError as error:
                if error.code == 401:
                    break
                raise
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("docker-registry did not start: %s"
                                % (directory / "registry.log").read_text())
                time.sleep(0.2)
        yield {"address": address, "username": REGISTRY_USERNAME, "password": password,
               "storage": storage}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def registry_get(registry: dict, path: str) -> dict:
    """A GET of the registry's API as its user, decoded from JSON."""
    request = urllib.request.Request("http://%s%s" % (registry["address"], path))
    token = b64encode(("%s:%s" % (registry["username"], registry["password"])).encode())
    request.add_header("Authorization", "Basic " + token.decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def docker_config(directory: Path, registry: dict | None = None) -> Path:
    """A Docker client configuration directory (for DOCKER_CONFIG), logged in to ``registry``.

    What ``docker login`` writes: ``auths`` with base64 ``user:password``.
    Without ``registry``, one logged in nowhere.
    """
    directory.mkdir(parents=True, exist_ok=True)
    auths = {}
    if registry is not None:
        token = b64encode(("%s:%s" % (registry["username"], registry["password"])).encode())
        auths[registry["address"]] = {"auth": token.decode()}
    (directory / "config.json").write_text(json.dumps({"auths": auths}))
    return directory
