"""Which cached builder and runtime-package images were made from which base image.

Their names hash the base image's ID (:func:`pbrx_images.plan.cache_keys.cached_image_name`),
so once a base image name (``--base-image``) points at a new image, say after
``docker pull``, the ones made from the old image are never used again: they
would stay for ever, hundreds of MB each, and keep the old base image's
layers.  The client remembers, for each base image name, the ID it last had
and the cached images made from it (``~/.cache/pbrx-images/cached-images``,
``$XDG_CACHE_HOME``, never pruned: a record is a few lines); a build that
finds the name on another ID removes those (:meth:`CachedImages.superseded`).

Only what this client made or used is known: cached images of other
clients, or of builds before this record existed, stay until removed by
hand (see the README).  An image that another base image name still
records is kept, since two names may be one image.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

from pbrx_images.cache.files import write_whole


class CachedImages:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, base_name: str) -> Path:
        return self.directory / (hashlib.sha256(base_name.encode()).hexdigest()[:32] + ".json")

    def _read(self, path: Path) -> tuple[str, str, list[str]] | None:
        """(base name, base ID, image names) of the record at ``path``, if it is one."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            name, image_id, images = data["base_name"], data["base_id"], data["images"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not (isinstance(name, str) and isinstance(image_id, str) and isinstance(images, list)
                and all(isinstance(image, str) for image in images)):
            return None
        return name, image_id, images

    def superseded(self, base_name: str, base_id: str) -> list[str]:
        """The cached images made from what ``base_name`` named before it named ``base_id``.

        Those that the record of another base image name lists are left out.
        """
        own = self._path(base_name)
        record = self._read(own)
        if record is None or record[0] != base_name or record[1] == base_id:
            return []
        elsewhere: set[str] = set()
        for path in self.directory.glob("*.json"):  # (none when it cannot be read)
            other = self._read(path) if path != own else None
            if other is not None:
                elsewhere.update(other[2])
        return [image for image in record[2] if image not in elsewhere]

    def record(self, base_name: str, base_id: str, images: Iterable[str]) -> None:
        """``base_name`` is ``base_id``, and ``images`` were made from it (or used).

        A record of another ID is replaced; one of the same ID gains the
        images.  A record that cannot be written is skipped.
        """
        record = self._read(self._path(base_name))
        known = record[2] if record is not None and record[:2] == (base_name, base_id) else []
        data = {"base_name": base_name, "base_id": base_id,
                "images": sorted(set(known) | set(images))}
        try:
            write_whole(self._path(base_name), json.dumps(data, sort_keys=True).encode())
        except OSError:
            pass
