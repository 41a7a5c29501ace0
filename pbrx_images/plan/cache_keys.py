"""The keys the builder's work is kept under: what decides whether earlier work is reused.

Pure code (no Docker).  Each key hashes everything that makes what is kept
under it and a recipe version, bumped when how it is made changes: the
cached builder and runtime-packages images (:func:`cached_image_name`), the
project's kept wheel, the kept build environments and the lock records of
the wheel volume.  Dependencies' own wheels are kept by their name and
version in the volume, and need no key.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Mapping, Sequence

from packaging.utils import canonicalize_name

#: Bump when the builder image recipe changes, so cached ones are not reused.
RECIPE = "2"
BUILD_TOOLS = ("pip", "setuptools", "wheel")
#: Bump when what a lock record holds, or what its key hashes, changes.
LOCK_RECIPE = "lock-2"
#: Bump when how the project's own wheel is built changes (its kept wheel is not reused).
PROJECT_WHEEL_RECIPE = "project-wheel-2"
#: Bump when what goes into a kept build environment changes.
BUILD_ENV_RECIPE = "build-env-1"


def cache_key(*parts: str) -> str:
    """A short hash of everything that determines what is cached under it."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def build_tool_constraints(constraints: bytes) -> bytes:
    """The lines of a constraints file that can change the builder's own tools.

    Those are the lines naming pip, setuptools or wheel, and option lines;
    the rest pins the project's dependencies, which the builder image does
    not hold, so bumping one of those does not make a new builder image.
    """
    kept = []
    for line in constraints.decode("utf-8", "replace").splitlines():
        text = line.split(" #", 1)[0].strip()
        if not text or text.startswith("#"):
            continue
        name = re.match(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", text)
        if text.startswith("-") or name is None or \
                canonicalize_name(name.group(0)) in BUILD_TOOLS:
            kept.append(text)
    return "".join(line + "\n" for line in kept).encode()


def cached_image_name(kind: str, *inputs: str) -> str:
    """The name of a cached intermediate image, from everything that makes it."""
    return "pbrx-images-cache/%s:%s" % (kind, cache_key(RECIPE, kind, *inputs))


def project_wheel_key(builder_image: str, source_digest: str, build_requires: Sequence[str],
                      backend: tuple[str, Sequence[str]]) -> str:
    """The name the project's wheel is kept under: what it is built from, and how."""
    return cache_key(PROJECT_WHEEL_RECIPE, builder_image, source_digest, backend[0],
                     *backend[1], "", *build_requires)


def build_env_key(builder_image: str, requirements: Sequence[str],
                  pip_files: Mapping[str, bytes], pip_environment: Mapping[str, str]) -> str:
    """The name of the kept build environment of ``requirements``."""
    digest = hashlib.sha256(BUILD_ENV_RECIPE.encode())
    for part in [builder_image] + sorted(requirements):
        digest.update(b"\0" + part.encode())
    _hash_pip_settings(digest, pip_files, pip_environment)
    return digest.hexdigest()[:32]


def _hash_pip_settings(digest: Any, pip_files: Mapping[str, bytes],
                       pip_environment: Mapping[str, str]) -> None:
    for path, data in sorted(pip_files.items()):
        digest.update(b"\0" + path.encode() + b"\0" + hashlib.sha256(data).digest())
    for key, value in sorted(pip_environment.items()):
        digest.update(b"\0" + key.encode() + b"=" + value.encode())


def lock_key(builder_image: str, project: str, requirements: Sequence[str],
             extras: Sequence[str], constraints: bytes, pip_files: Mapping[str, bytes],
             pip_environment: Mapping[str, str]) -> str:
    """The hash of everything a resolution depends on but the package index.

    The project's version and code are not in it: a change to the code
    alone keeps the lock, as the no-op fast path keeps the images.
    """
    digest = hashlib.sha256(LOCK_RECIPE.encode())
    for part in ([builder_image, canonicalize_name(project)] + sorted(requirements)
                 + ["extras"] + sorted(extras) + ["constraints"]):
        digest.update(b"\0" + part.encode())
    digest.update(b"\0" + hashlib.sha256(constraints).digest())
    _hash_pip_settings(digest, pip_files, pip_environment)
    return digest.hexdigest()
