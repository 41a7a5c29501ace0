"""The client's cache of distribution layers, so unchanged ones are not rebuilt.

A distribution's layer depends only on its wheel, the virtualenv it goes
into (the image that made it: path and Python) and the pip that installs it,
and on the fixed mtime.  Each layer is kept under
``~/.cache/pbrx-images/layers`` (``$XDG_CACHE_HOME``) as ``{digest}.tar``,
and an index entry ``index/{key}.json`` names it by the hash of those inputs,
with what the layer holds.  Files are written whole and renamed into place,
so concurrent builds never read half of one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from pbrx_images.oci.tar import Signature
from pbrx_images.ui.output import cache_dir

#: Bump when what goes into a distribution's layer changes.
RECIPE = "1"
#: Layers and index entries unused for this long (seconds) are removed.
UNUSED_FOR = 30 * 24 * 3600


def default_layer_dir() -> Path:
    """``$XDG_CACHE_HOME/pbrx-images/layers``."""
    return cache_dir() / "layers"


def layer_key(wheel_sha256: str, venv_image: str, venv: str, pip: str, epoch: int) -> str:
    """The cache key of one distribution's layer."""
    return hashlib.sha256("\0".join((RECIPE, wheel_sha256, venv_image, venv, pip, str(epoch))
                                    ).encode()).hexdigest()


@dataclass(frozen=True)
class CachedLayer:
    """One distribution's layer in the cache."""

    diff_id: str
    name: str  #: canonical distribution name
    description: str  #: "name version"
    size: int  #: bytes of its files
    kind: str  #: "dependency" or "project"
    files: Mapping[str, Signature]  #: path -> signature (layer.Entry)


class LayerCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def tar_path(self, diff_id: str) -> Path:
        return self.directory / (diff_id.partition(":")[2] + ".tar")

    def existing_tar(self, diff_id: str) -> Path | None:
        """The cached tar of the layer ``diff_id``, marked used, or None."""
        tar = self.tar_path(diff_id)
        try:
            os.utime(tar)  # used: kept by prune()
        except OSError:
            return None
        return tar

    def get(self, key: str) -> CachedLayer | None:
        """The layer cached under ``key`` when its index entry and tar are both there."""
        try:
            with open(self.directory / "index" / (key + ".json"), encoding="utf-8") as handle:
                data: Any = json.load(handle)
            layer = CachedLayer(data["diff_id"], data["name"], data["description"],
                                int(data["size"]), data["kind"],
                                {path: tuple(signature)  # type: ignore[misc]
                                 for path, signature in data["files"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if self.existing_tar(layer.diff_id) is None:
            return None
        try:
            os.utime(self.directory / "index" / (key + ".json"))  # used: kept by prune()
        except OSError:
            return None
        return layer

    def prune(self, max_age: float = UNUSED_FOR, now: float | None = None) -> None:
        """Remove what was not used for ``max_age`` seconds, and leftover temporary files."""
        prune_files((self.directory, self.directory / "index"), max_age, now)

    def put(self, key: str, layer: CachedLayer) -> None:
        data = {"diff_id": layer.diff_id, "name": layer.name, "description": layer.description,
                "size": layer.size, "kind": layer.kind,
                "files": {path: list(signature) for path, signature in layer.files.items()}}
        write_whole(self.directory / "index" / (key + ".json"), json.dumps(data).encode())


def write_whole(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a temporary file, renamed into place.

    Concurrent builds never read half a file; a temporary file left by a
    failure is removed (one left by a killed build, by :func:`prune_files`).
    OSError if it cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def prune_files(directories: Iterable[Path], max_age: float, now: float | None = None) -> None:
    """Remove the files of ``directories`` not touched for ``max_age`` seconds.

    Temporary files (``.tmp-*``, left by a killed build) go after an hour.
    A directory that cannot be read, or a file that cannot be removed, is
    left as it is: pruning never fails a build.
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
                        3600 if path.name.startswith(".tmp-") else max_age):
                    path.unlink()
            except OSError:
                pass
