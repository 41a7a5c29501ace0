"""The layers of an image, read out of what ``docker save`` streams.

Pure code.  Some engines load only complete archives (podman 4 refuses an
archive that names a layer without holding it, even one it already has), so
the layers an archive would leave out are read from the engine's save of an
image that has them.  Save archives differ between engines: Docker 20.10
writes ``{id}/layer.tar``, Docker 25 ``blobs/sha256/{digest}``, podman
``{diff_id}.tar`` (with ``{id}/layer.tar`` symbolic links to it); layers may
be gzip-compressed where the engine keeps them so.  Every save has a
``manifest.json`` whose ``Layers`` name the layer files in the order of the
configuration's ``rootfs.diff_ids``, and that is how a file is known; each is
checked against its diff ID (the sha256 of the uncompressed tar).

The manifest comes last in podman's and Docker's saves, so the stream is read
once: every regular file is uncompressed into a temporary file while its
digest is taken, and kept when it is a wanted layer.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import IO, Any, Callable, Collection, Iterable

from pbrx_images.errors import EngineError
from pbrx_images.oci.tar import chunk_stream, member_path

_CHUNK = 1 << 20
#: Members up to this size are also kept in memory: the manifest and configurations.
_SMALL = 4 << 20
_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"


class SavedImageError(EngineError):
    """The engine's save archive is not what ``docker save`` writes."""


def layer_diff_ids(manifest: bytes, read: Callable[[str], bytes]) -> dict[str, str]:
    """Path of each layer file in a save archive -> its diff ID.

    ``manifest`` is the archive's ``manifest.json``; ``read`` gives the
    content of a member by path (the configurations the manifest names).
    """
    try:
        entries: Any = json.loads(manifest)
        if not isinstance(entries, list):
            raise ValueError("not a list")
        result: dict[str, str] = {}
        for entry in entries:
            config = json.loads(read(member_path(entry["Config"], "/")))
            diff_ids = config["rootfs"]["diff_ids"]
            layers = entry["Layers"]
            if len(layers) != len(diff_ids) or not all(
                    isinstance(item, str) for item in list(layers) + list(diff_ids)):
                raise ValueError("%d layer files for %d diff IDs" % (len(layers), len(diff_ids)))
            for path, diff_id in zip(layers, diff_ids):
                result[member_path(path, "/")] = diff_id
        return result
    except (ValueError, KeyError, TypeError) as error:
        raise SavedImageError("The engine saved an image whose manifest.json cannot be read "
                              "(%s): report this as a bug of build-images." % error) from error


def read_saved_layers(chunks: Iterable[bytes], wanted: Collection[str], directory: Path,
                      destination: Callable[[str], Path]) -> dict[str, Path]:
    """Store each wanted layer of a save archive at ``destination(diff_id)``.

    ``chunks`` is the archive as the engine streams it; members are spooled
    into ``directory`` (on the destinations' file system: they are renamed).
    A layer is stored uncompressed, and only once its content is known to
    match its diff ID as the archive's manifest and configuration give it.
    Raises SavedImageError when a wanted layer is not in the archive or does
    not match.
    """
    stream = chunk_stream(chunks)
    found: dict[str, tuple[str, Path]] = {}  # path -> (digest, spooled file)
    small: dict[str, bytes] = {}
    links: dict[str, str] = {}
    stored: dict[str, Path] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                name = member_path(member.name, "/")
                if member.issym():
                    links[name] = member_path(posixpath.join(posixpath.dirname(name),
                                                             member.linkname), "/")
                elif member.islnk():
                    links[name] = member_path(member.linkname, "/")
                elif member.isfile():
                    handle = archive.extractfile(member)
                    if handle is None:
                        continue
                    if member.size <= _SMALL:
                        small[name] = handle.read()
                        found[name] = _spool(io.BytesIO(small[name]), name, directory)
                    else:
                        found[name] = _spool(handle, name, directory)
        if "manifest.json" not in small:
            raise SavedImageError("The engine saved an image without a manifest.json: "
                                  "report this as a bug of build-images.")

        def resolve(path: str) -> str:
            for _ in range(16):
                if path not in links:
                    break
                path = links[path]
            return path

        def read(path: str) -> bytes:
            path = resolve(path)
            if path not in small:
                raise KeyError(path)
            return small[path]

        paths = layer_diff_ids(small["manifest.json"], read)
        for path, diff_id in paths.items():
            if diff_id not in wanted or diff_id in stored:
                continue
            digest, spooled = found.get(resolve(path), ("", Path()))
            if digest != diff_id:
                raise SavedImageError(
                    "The engine saved layer %s of an image as %s, whose content %s: report "
                    "this as a bug of the engine." % (
                        diff_id, path, "has another digest (%s)" % digest if digest
                        else "is not in the archive"))
            final = destination(diff_id)
            os.replace(spooled, final)
            stored[diff_id] = final
        missing = sorted(set(wanted) - set(stored))
        if missing:
            raise SavedImageError("The engine saved an image without its layer%s %s: report "
                                  "this as a bug of build-images." % (
                                      "s" if len(missing) > 1 else "", ", ".join(missing)))
        return stored
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise SavedImageError("The engine saved an image as an archive that cannot be read "
                              "(%s): check that it still runs, then run build-images again."
                              % error) from error
    finally:
        for _, spooled in found.values():
            if spooled not in stored.values():
                try:
                    os.unlink(spooled)
                except OSError:
                    pass


def _spool(handle: IO[bytes], name: str, directory: Path
           ) -> tuple[str, Path]:
    """Uncompress a member into a temporary file next to the layers; its digest."""
    head = handle.read(_CHUNK)
    if head.startswith(_ZSTD):
        raise SavedImageError("The engine saved a layer (%s) compressed with zstd, which "
                              "build-images cannot read: use an engine whose saves are "
                              "uncompressed or gzip-compressed." % name)
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    gzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if head.startswith(_GZIP) else None
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".tmp-saved-", delete=False) as out:
        try:
            chunk = head
            while chunk:
                while gzip is not None and chunk:
                    data = gzip.decompress(chunk, _CHUNK)
                    chunk = gzip.unconsumed_tail
                    if gzip.eof:  # another gzip member may follow
                        chunk = gzip.unused_data + chunk
                        gzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if chunk else gzip
                    digest.update(data)
                    out.write(data)
                if gzip is None:
                    digest.update(chunk)
                    out.write(chunk)
                chunk = handle.read(_CHUNK)
            if gzip is not None and not gzip.eof:
                raise zlib.error("%s ends in the middle of its gzip stream" % name)
        except BaseException:
            os.unlink(out.name)
            raise
    return "sha256:" + digest.hexdigest(), Path(out.name)
