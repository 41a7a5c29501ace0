"""What read-only probes found in an image, kept on the client by image ID.

An image ID is the digest of the image's configuration, which names every
layer by the digest of its files: the same ID is the same files, so what a
probe read in a container of it (the base image's os-release and package
manager, the runtime-packages image's SBOM contents and virtualenv) holds as
long as the ID does.  pip's answer to which wheels an image gets is kept the
same way, by the hash of what decides it (:mod:`pbrx_images.plan.resolution`), and
so are the rules bindep parsed from a bindep file, by the hash of its text
and bindep's version (parsing compiles bindep's grammar, a quarter second).
Kept as ``~/.cache/pbrx-images/facts/{kind}-{recipe}-{id}.json``
(``$XDG_CACHE_HOME``), so that a rebuild on the same images starts no
container to learn them again.  Only what a successful probe found is kept;
files are written, used and pruned by the rules of :mod:`pbrx_images.cache.files`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pbrx_images.cache.files import UNUSED_FOR, mark_used, prune_files, write_whole

#: Bump when what a probe records changes.
RECIPE = "1"


class ImageFacts:
    def __init__(self, directory: Path, enabled: bool = True) -> None:
        self.directory = directory
        #: False (``--no-cache``): every probe runs again; what it finds is still kept
        self.enabled = enabled

    def _path(self, kind: str, image_id: str) -> Path:
        return self.directory / ("%s-%s-%s.json" % (kind, RECIPE, image_id.partition(":")[2]
                                                    or image_id))

    def get(self, kind: str, image_id: str) -> Any:
        """What the probe ``kind`` found in the image ``image_id`` (or under a hash), or None."""
        if not self.enabled:
            return None
        path = self._path(kind, image_id)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        mark_used(path)
        return data

    def put(self, kind: str, image_id: str, data: Any) -> None:
        """Keep ``data`` (JSON-serialisable); a cache that cannot be written is skipped."""
        try:
            write_whole(self._path(kind, image_id), json.dumps(data, sort_keys=True).encode())
        except OSError:
            pass

    def prune(self, max_age: float = UNUSED_FOR, now: float | None = None) -> None:
        prune_files((self.directory,), max_age, now)
