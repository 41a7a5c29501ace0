"""An image as ``docker load`` takes it: configuration, layers, ``manifest.json``.

Pure code.  :func:`image_config` makes the configuration of an image that
adds layers (or only settings) on top of a parent the engine has, as
canonical JSON, so its sha256 (the image ID) depends only on its content.
:func:`archive` streams a tar in the layout ``docker save`` of Docker 25
writes (``blobs/sha256/...`` and ``manifest.json``).  Layers the engine
already has are named in the manifest but left out of the archive: when a
layer's chain ID exists, ``docker load`` does not read its file (moby's
``image/tarexport/load.go``; checked on dockerd 20.10).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import re
import tarfile
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

#: Settings of an image's ``config`` an image configuration may carry.
CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir",
               "Labels", "StopSignal", "Healthcheck", "OnBuild", "Shell", "ArgsEscaped")
_BLOCK = 512
_CHUNK = 1 << 20
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def rfc3339(epoch: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def is_digest(value: object) -> bool:
    """``sha256:`` and 64 lower-case hex digits: a diff ID or blob digest, safe in a path."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain ID of each layer (the OCI image spec's ChainID)."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            chains.append("sha256:" + hashlib.sha256(
                ("%s %s" % (chains[-1], diff_id)).encode()).hexdigest())
    return chains


def parent_history(history: Sequence[Mapping[str, Any]], layer_count: int
                   ) -> list[dict[str, Any]]:
    """The configuration ``history`` of an image, from the engine's history API.

    ``history`` is what ``GET /images/{name}/history`` returns (newest
    first).  The API does not say which entries made a layer: those with a
    size did; of the others, the ones that are not ``#(nop)`` instructions
    are taken, oldest first, until there are as many as the image has layers.
    """
    entries = list(reversed(history))
    made_layer = [bool(entry.get("Size")) for entry in entries]
    for want_nop in (False, True):
        for number, entry in enumerate(entries):
            if sum(made_layer) >= layer_count:
                break
            if not made_layer[number] and ("#(nop)" in (entry.get("CreatedBy") or "")
                                           ) == want_nop:
                made_layer[number] = True
    for number in reversed(range(len(entries))):
        if sum(made_layer) <= layer_count:
            break
        made_layer[number] = False
    result = []
    for entry, layer in zip(entries, made_layer):
        item: dict[str, Any] = {"created": rfc3339(int(entry.get("Created") or 0))}
        if entry.get("CreatedBy"):
            item["created_by"] = entry["CreatedBy"]
        if entry.get("Comment"):
            item["comment"] = entry["Comment"]
        if not layer:
            item["empty_layer"] = True
        result.append(item)
    return result


@dataclass(frozen=True)
class NewLayer:
    diff_id: str  #: sha256 of the uncompressed tar
    created_by: str  #: what ``docker history`` shows for it
    kind: str = ""  #: layer.LayerPlan.kind ("dependency", "project", ...), in its comment


def image_config(parent: Mapping[str, Any], history: Sequence[Mapping[str, Any]],
                 layers: Sequence[NewLayer], settings: Mapping[str, Any], created: str,
                 comment: str) -> bytes:
    """The configuration of ``parent`` (the engine's inspect output) plus ``layers``.

    ``settings`` replace keys of the parent's ``config`` (None removes one);
    ``history`` is the parent's, as :func:`parent_history` gives it.  An
    image with no new layer gets one ``empty_layer`` history entry.
    """
    config = {key: value for key, value in (parent.get("Config") or {}).items()
              if key in CONFIG_KEYS and value not in (None, "", [], {})}
    for key, value in settings.items():
        if value in (None, "", [], {}):
            config.pop(key, None)
        else:
            config[key] = value
    diff_ids = list((parent.get("RootFS") or {}).get("Layers") or ())
    entries = [dict(item) for item in history]
    for layer in layers:
        diff_ids.append(layer.diff_id)
        entries.append({"created": created, "created_by": layer.created_by,
                        "comment": "%s %s" % (comment, layer.kind) if layer.kind else comment})
    if not layers:
        entries.append({"created": created, "created_by": comment, "empty_layer": True})
    document: dict[str, Any] = {
        "architecture": parent.get("Architecture") or "amd64",
        "os": parent.get("Os") or "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": entries,
    }
    if parent.get("Variant"):
        document["variant"] = parent["Variant"]
    return canonical_json(document)


def blob_path(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return "blobs/%s/%s" % (algorithm, hexdigest)


@dataclass(frozen=True)
class ArchivedImage:
    config: bytes
    tags: tuple[str, ...]

    @property
    def id(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()

    @property
    def diff_ids(self) -> list[str]:
        return list(json.loads(self.config)["rootfs"]["diff_ids"])


def manifest(images: Sequence[ArchivedImage]) -> bytes:
    """``manifest.json``: each image's config, tags and layers by blob path."""
    return json.dumps([{"Config": blob_path(image.id), "RepoTags": list(image.tags),
                        "Layers": [blob_path(diff_id) for diff_id in image.diff_ids]}
                       for image in images], separators=(",", ":")).encode()


def archive(images: Sequence[ArchivedImage], layer_files: Mapping[str, IO[bytes]]
            ) -> Iterator[bytes]:
    """The tar ``docker load`` takes, in chunks; only ``layer_files`` are included.

    ``layer_files`` maps a diff ID to an open file with that layer's tar.
    """
    members: list[tuple[str, int, Iterable[bytes]]] = []
    for diff_id in sorted(layer_files):
        handle = layer_files[diff_id]
        handle.seek(0, 2)
        size = handle.tell()
        members.append((blob_path(diff_id), size, _chunks(handle)))
    for image in images:
        members.append((blob_path(image.id), len(image.config), [image.config]))
    data = manifest(images)
    members.append(("manifest.json", len(data), [data]))
    directories = sorted({"blobs", "blobs/sha256"})
    for directory in directories:
        info = tarfile.TarInfo(directory)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        yield info.tobuf(tarfile.USTAR_FORMAT)
    for name, size, chunks in members:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        yield info.tobuf(tarfile.USTAR_FORMAT)
        written = 0
        for chunk in chunks:
            written += len(chunk)
            yield chunk
        if written != size:
            raise ValueError("%s changed while it was being sent" % name)
        if size % _BLOCK:
            yield b"\0" * (_BLOCK - size % _BLOCK)
    yield b"\0" * (2 * _BLOCK)


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    handle.seek(0)
    while True:
        chunk = handle.read(_CHUNK)
        if not chunk:
            return
        yield chunk
