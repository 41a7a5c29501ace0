"""Loading images into the engine: ``docker load`` of archives the client wrote.

The archive names every layer of an image but holds only the new ones, as
Docker's load allows for layers it has; an engine that needs complete
archives (podman) gets the others too, from the client's layer cache or the
engine's own save of an image that has them.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Mapping, Sequence

from pbrx_images.cache.layers import LayerCache
from pbrx_images.engine import Engine
from pbrx_images.errors import EngineError
from pbrx_images.oci.image_archive import ArchivedImage, archive
from pbrx_images.oci.saved_image import read_saved_layers
from pbrx_images.ui.output import Reporter


def load_archive(engine: Engine, cache: LayerCache, reporter: Reporter,
                 images: Sequence[ArchivedImage], files: Mapping[str, Path], source: str,
                 what: str) -> None:
    """Load ``images``, sending the layer files ``files`` (diff ID -> tar).

    Layers of the images that ``files`` lacks are left out of the archive,
    as Docker's load allows for layers it has, unless the engine needs
    complete archives (podman): then they are added, from the layer cache or
    the engine's save of ``source``, an image that has them all (see
    :func:`left_out_layers`).  An engine not known to need them that refuses
    an archive with layers left out is sent a complete one, once.
    """
    left_out = list(dict.fromkeys(diff_id for image in images for diff_id in image.diff_ids
                                  if diff_id not in files))
    if left_out and engine.needs_complete_archives:
        _load_files(engine, images, dict(files, **left_out_layers(
            engine, cache, reporter, source, left_out)), what)
        return
    try:
        _load_files(engine, images, files, what)
    except EngineError as refused:
        if not left_out:
            raise
        reporter.say("    the engine refused an archive without the layers it has (%s); "
                     "sending them too" % (str(refused).splitlines() or [""])[0])
        complete = dict(files, **left_out_layers(engine, cache, reporter, source, left_out))
        _load_files(engine, images, complete, what)
        engine.needs_complete_archives = True


def left_out_layers(engine: Engine, cache: LayerCache, reporter: Reporter, source: str,
                    diff_ids: Sequence[str]) -> dict[str, Path]:
    """The tar of each layer ``diff_ids`` of the image ``source``, for a complete archive.

    From the client's layer cache when it has them (by diff ID); the others
    are read from the engine's save of ``source`` (checked against their
    diff IDs, uncompressed) and kept in the cache for later builds.
    """
    found: dict[str, Path] = {}
    missing = []
    for diff_id in diff_ids:
        tar = cache.existing_tar(diff_id)
        if tar is not None:
            found[diff_id] = tar
        else:
            missing.append(diff_id)
    if missing:
        reporter.say("    reading %d layer%s of %s from the engine, which loads only complete "
                     "archives" % (len(missing), "" if len(missing) == 1 else "s",
                                   source[:19]))
        cache.directory.mkdir(parents=True, exist_ok=True)
        found.update(read_saved_layers(engine.save(source), missing, cache.directory,
                                       cache.tar_path))
    return found


def _load_files(engine: Engine, images: Sequence[ArchivedImage], files: Mapping[str, Path],
                what: str) -> None:
    with contextlib.ExitStack() as stack:
        engine.load(archive(images, {diff_id: stack.enter_context(open(path, "rb"))
                                     for diff_id, path in files.items()}), what)
