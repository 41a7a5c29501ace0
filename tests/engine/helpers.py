"""Running build-images as a user would, and looking at what it left."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import docker.errors


@dataclass
class Run:
    exit_code: int
    output: str  # stdout and stderr together


def build_images(*args: str, cwd: Path | None = None, timeout: int = 1800,
                 env: dict | None = None) -> Run:
    """Run the ``build-images`` command in a child process."""
    completed = subprocess.run(
        [sys.executable, "-m", "pbrx_images.cli", *args], cwd=cwd, env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    output = completed.stdout.decode("utf-8", "replace")
    sys.stdout.write(output)  # shown by pytest when a test fails
    return Run(completed.returncode, output)


def run_image(client, image: str, command=None, entrypoint=None) -> tuple[int, str]:
    """Run a throwaway container; its exit code and output."""
    container = client.containers.create(image, command, entrypoint=entrypoint)
    try:
        container.start()
        result = container.wait(timeout=300)
        return result["StatusCode"], container.logs().decode("utf-8", "replace")
    finally:
        container.remove(force=True)


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
