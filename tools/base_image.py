#!/usr/bin/env python3
"""Make a local Debian base image with Python, without any registry.

Nothing can be pulled on machines without registry access, so the engine tests
and the bundled example build their images on a base image made here:
``debootstrap --variant=minbase`` into a temporary directory, imported through
the Docker SDK, then ``python3 python3-venv ca-certificates`` installed in a
container and committed.

The tag names the inputs (suite, variant, packages, recipe version) through a
hash, so a base image made from other inputs is never reused by mistake; an
image with the right tag is reused as it is.

Usage: ``python3 tools/base_image.py`` prints the tag (building it if missing).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import docker

SUITE = "bookworm"
VARIANT = "minbase"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
RECIPE = "2"  # bump when the steps below change
REPOSITORY = "pbrx-images-test/debian-%s-python3" % SUITE


def tag() -> str:
    """The full image name whose tag encodes every input of the image."""
    inputs = "\n".join([SUITE, VARIANT, MIRROR, " ".join(PACKAGES), RECIPE])
    return "%s:%s" % (REPOSITORY, hashlib.sha256(inputs.encode()).hexdigest()[:12])


def _log(message: str) -> None:
    print("base image: " + message, file=sys.stderr, flush=True)


def _require_debootstrap() -> str:
    path = shutil.which("debootstrap")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        _log("installing debootstrap")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True, env=env)
        path = shutil.which("debootstrap")
    if not path:
        raise SystemExit("debootstrap is needed to make the local base image: "
                         "install it (apt-get install debootstrap) and try again.")
    return path


def _import_rootfs(client: docker.DockerClient, name: str) -> None:
    debootstrap = _require_debootstrap()
    workdir = tempfile.mkdtemp(prefix="pbrx-images-rootfs-")
    try:
        rootfs = os.path.join(workdir, "rootfs")
        _log("debootstrap --variant=%s %s (about a minute)" % (VARIANT, SUITE))
        subprocess.run([debootstrap, "--variant=" + VARIANT, SUITE, rootfs, MIRROR],
                       check=True, stdout=subprocess.DEVNULL)
        # debootstrap leaves the .debs it installed and the package lists behind.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            subprocess.run(["find", os.path.join(rootfs, leftover), "-type", "f",
                            "!", "-name", "lock", "-delete"], check=True)
        archive = os.path.join(workdir, "rootfs.tar")
        subprocess.run(["tar", "-C", rootfs, "--numeric-owner", "-cf", archive, "."],
                       check=True)
        _log("importing the root file system as %s" % name)
        repository, _, image_tag = name.rpartition(":")
        client.api.import_image_from_file(archive, repository=repository, tag=image_tag)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def ensure(client: docker.DockerClient | None = None) -> str:
    """Return the tag of the local base image, making it first if it is missing."""
    client = client or docker.from_env()
    name = tag()
    try:
        client.images.get(name)
        return name
    except docker.errors.ImageNotFound:
        pass
    rootfs_name = name.replace("-python3:", "-rootfs:")
    try:
        client.images.get(rootfs_name)
    except docker.errors.ImageNotFound:
        _import_rootfs(client, rootfs_name)
    _log("installing %s" % " ".join(PACKAGES))
    container = client.containers.create(
        rootfs_name,
        ["/bin/sh", "-c",
         "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
         "--no-install-recommends %s >/dev/null && apt-get clean && "
         "rm -rf /var/lib/apt/lists/*" % " ".join(PACKAGES)],
        labels={"org.pbrx-images.test": "base-image"})
    try:
        container.start()
        result = container.wait()
        if result.get("StatusCode") != 0:
            output = container.logs().decode(errors="replace")
            raise SystemExit("installing Python into the base image failed:\n" + output)
        repository, _, image_tag = name.rpartition(":")
        container.commit(repository=repository, tag=image_tag,
                         changes=['CMD ["/bin/bash"]'])
    finally:
        container.remove(force=True)
    return name


if __name__ == "__main__":
    print(ensure())
