"""The client's cache of distribution layers, so unchanged ones are not rebuilt.

A distribution's layer depends only on its wheel, the virtualenv it goes
into (the image that made it: path and Python) and the pip that installs it,
and on the fixed mtime.  Each layer is kept under
``~/.cache/pbrx-images/layers`` (``$XDG_CACHE_HOME``) as ``{digest}.tar``,
and an index entry ``index/{key}.json`` names it by the hash of those inputs,
with what the layer holds.  Files are written, used and pruned by the rules
of :mod:`pbrx_images.cache.files`.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Mapping

from pbrx_images.cache.files import UNUSED_FOR, mark_used, prune_files, write_whole
from pbrx_images.oci.image_archive import is_digest
from pbrx_images.oci.tar import Signature

#: Bump when what goes into a distribution's layer changes.
RECIPE = "1"


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
        return tar if mark_used(tar) else None

    def write_tar(self, write: Callable[[IO[bytes]], str]) -> tuple[str, Path]:
        """A new layer's tar, written by ``write`` (which returns its diff ID), and its path.

        Written to a temporary file of the cache, then renamed to its name:
        a layer's tar is there whole, or not at all.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.directory, prefix=".tmp-",
                                         delete=False) as out:
            try:
                diff_id = write(out)
            except BaseException:
                os.unlink(out.name)
                raise
        final = self.tar_path(diff_id)
        os.replace(out.name, final)
        return diff_id, final

    def get(self, key: str) -> CachedLayer | None:
        """The layer cached under ``key`` when its index entry and tar are both there."""
        try:
            with open(self.directory / "index" / (key + ".json"), encoding="utf-8") as handle:
                layer = layer_from_json(json.load(handle))
        except (OSError, ValueError):
            return None
        if self.existing_tar(layer.diff_id) is None:
            return None
        if not mark_used(self.directory / "index" / (key + ".json")):
            return None
        return layer

    def prune(self, max_age: float = UNUSED_FOR, now: float | None = None) -> None:
        """Remove what was not used for ``max_age`` seconds, and leftover temporary files."""
        prune_files((self.directory, self.directory / "index"), max_age, now)

    def put(self, key: str, layer: CachedLayer) -> None:
        write_whole(self.directory / "index" / (key + ".json"),
                    json.dumps(layer_to_json(layer)).encode())


def layer_to_json(layer: CachedLayer) -> dict[str, Any]:
    """What an index entry holds (and a shared cache entry's configuration)."""
    return {"diff_id": layer.diff_id, "name": layer.name, "description": layer.description,
            "size": layer.size, "kind": layer.kind,
            "files": {path: list(signature) for path, signature in layer.files.items()}}


def layer_from_json(data: Any) -> CachedLayer:
    """The layer an index entry describes; ValueError if it is not one."""
    try:
        diff_id = data["diff_id"]
        if not is_digest(diff_id):
            raise ValueError("not a diff ID: %r" % (diff_id,))
        return CachedLayer(diff_id, str(data["name"]), str(data["description"]),
                           int(data["size"]), str(data["kind"]),
                           {str(path): tuple(signature)  # type: ignore[misc]
                            for path, signature in data["files"].items()})
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError("not a layer's index entry (%s)" % error) from None
