"""Where the client keeps files between builds, and how each one is written, used and pruned.

Everything lives under ``$XDG_CACHE_HOME/pbrx-images`` (``~/.cache`` when
it is unset), never in the project:

==================  ==========================================================
``layers/``         each distribution's layer tar, by its inputs' key
                    (:mod:`pbrx_images.cache.layers`)
``facts/``          what read-only probes found in images, by image ID, and
                    pip's answers (:mod:`pbrx_images.cache.image_facts`)
``cached-images/``  the cached builder and runtime images made from each base
                    image name (:mod:`pbrx_images.cache.cached_images`)
``builds/``         the inputs of each project's last build, for the no-op
                    check (:mod:`pbrx_images.cache.build_record`)
``sbom/``           the images' SBOMs, unless ``--sbom-dir`` says elsewhere
``logs/``           one full log per build
==================  ==========================================================

The rules every cache here follows: a file is written whole and renamed
into place (:func:`write_whole`), so concurrent builds never read half of
one; reading a file marks it used (:func:`mark_used`); what was not used
for :data:`UNUSED_FOR` is removed (:func:`prune_files`); and a cache that
cannot be read or written is a miss, never a failed build.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Iterable

#: Cache files unused for this long (seconds) are removed.
UNUSED_FOR = 30 * 24 * 3600
#: Temporary files (``.tmp-*``) are left by a killed build: removed after this long.
TEMPORARY_FOR = 3600


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pbrx-images``: the client's logs and caches (never the project)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "pbrx-images"


def layers_dir() -> Path:
    """``$XDG_CACHE_HOME/pbrx-images/layers``."""
    return cache_dir() / "layers"


def facts_dir() -> Path:
    """``$XDG_CACHE_HOME/pbrx-images/facts``."""
    return cache_dir() / "facts"


def cached_images_dir() -> Path:
    """``$XDG_CACHE_HOME/pbrx-images/cached-images``."""
    return cache_dir() / "cached-images"


def builds_dir() -> Path:
    """``$XDG_CACHE_HOME/pbrx-images/builds``."""
    return cache_dir() / "builds"


def sbom_dir() -> Path:
    """``$XDG_CACHE_HOME/pbrx-images/sbom``."""
    return cache_dir() / "sbom"


def logs_dir() -> Path:
    """``$XDG_CACHE_HOME/pbrx-images/logs``."""
    return cache_dir() / "logs"


def write_whole(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write ``path`` whole or not at all: a temporary file, renamed into place.

    ``data`` is the bytes, or chunks of them (a download, checked as it
    comes: an error from the iteration leaves ``path`` as it was).
    Concurrent builds never read half a file; a temporary file left by a
    failure is removed (one left by a killed build, by :func:`prune_files`).
    OSError if it cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in (data,) if isinstance(data, bytes) else data:
                out.write(chunk)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def mark_used(path: Path) -> bool:
    """Touch ``path`` so that :func:`prune_files` keeps it; False if it is not there."""
    try:
        os.utime(path)
    except OSError:
        return False
    return True


def prune_files(directories: Iterable[Path], max_age: float = UNUSED_FOR,
                now: float | None = None) -> None:
    """Remove the files of ``directories`` not touched for ``max_age`` seconds.

    Temporary files (``.tmp-*``) go after :data:`TEMPORARY_FOR`.  A
    directory that cannot be read, or a file that cannot be removed, is left
    as it is: pruning never fails a build.
    """
    now = time.time() if now is None else now
    for directory in directories:
        try:
            paths = list(directory.iterdir())
        except OSError:
            continue
        for path in paths:
            try:
                if path.is_file() and now - path.stat().st_mtime > (
                        TEMPORARY_FOR if path.name.startswith(".tmp-") else max_age):
                    path.unlink()
            except OSError:
                pass
