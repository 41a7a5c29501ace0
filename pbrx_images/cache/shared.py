"""The build cache shared through a registry repository (``--cache-from``, ``--cache-to``).

Every CI job starts on a fresh machine, where all the client's caches are
empty.  A registry is the store every CI already has (BuildKit's
``type=registry`` cache and buildpacks' ``--cache-image`` use it the same
way).  Each entry is an OCI artifact in one repository, tagged
``{kind}-{key}``: ``key`` is the hash the local cache keeps the same work
under, so an entry is found exactly when a local cache would have it.  Its
manifest names a configuration blob (what the local cache's index holds,
as JSON) and the blobs of the work itself.

What the cache holds (``KINDS``):

* ``layer``: a distribution's layer tar, keyed as :mod:`pbrx_images.cache.layers`
  keys it (the wheel's digest, the image below, the virtualenv, pip, the
  files' time).  The layers are reproducible, so the tar's digest is the
  layer's diff ID, checked when it is read.
* ``project-wheel``: the project's wheel, keyed as the wheel volume keeps it
  (:func:`~pbrx_images.plan.cache_keys.project_wheel_key`: the builder, the
  source's digest, the build backend and its requirements).
* ``lock``: a lock record as the wheel volume keeps it (the lock, its
  wheels' names and digests, pip's wheel) with every wheel it names, keyed
  by :func:`~pbrx_images.plan.cache_keys.lock_key`.  With both, a build
  needs no builder image at all (:mod:`pbrx_images.stages.builder`).
* ``packages-layer``: the runtime-packages image's one layer (its tar, and
  the history line it has), keyed by the hash of that cached image's name,
  which hashes its inputs (the base image's ID, the packages, the
  virtualenv, the layer's recipe, the files' time).  It is reproducible:
  the tar's digest is the diff ID, checked when read, and the image loaded
  from it on the base image is the one the packages' install makes.

Safety.  Every blob is checked against its digest as it is read, and a layer
against the diff ID its configuration names: an entry that fails is
ignored, with a note, and the work is done as if there were none.  A
registry that cannot be reached is one note, and the build goes on without
it.  ``--cache-from`` alone never writes (pipelines of untrusted changes
read; gate and post pipelines write).  Writers of one repository may run
at once: blobs are addressed by digest, and an entry's manifest is written
last, after its blobs, so a reader never finds an entry whose blobs are
not there yet; two writers of one key write the same bytes, the work being
reproducible.
"""
from __future__ import annotations

import functools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from pbrx_images.cache.files import write_whole
from pbrx_images.cache.layers import CachedLayer, LayerCache, layer_from_json, layer_to_json
from pbrx_images.oci.image_archive import is_digest
from pbrx_images.plan.names import DOCKER_HUB
from pbrx_images.registry.client import (Credentials, Descriptor, Refused, RegistryError,
                                         Repository, Unreachable, Unverifiable, sha256_digest)

T = TypeVar("T")

#: The kinds of entry, with what each holds.
KINDS = {"layer": "a distribution's layer",
         "project-wheel": "the project's wheel, by what it is built from",
         "lock": "a lock and every wheel it names (pip's too), by what it is resolved from",
         "packages-layer": "the runtime-packages image's layer, by what it is made from"}
#: Bump when what an entry holds changes: older entries are then not read.
RECIPE = "1"
ARTIFACT_TYPE = "application/vnd.pbrx-images.cache.v%s" % RECIPE
CONFIG_TYPE = "application/vnd.pbrx-images.cache.%s.v" + RECIPE + "+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
WHEEL_TYPE = "application/vnd.pbrx-images.wheel"
#: The annotation that names a wheel blob's file.
TITLE = "org.opencontainers.image.title"
_WHEEL_NAME = re.compile(r"[A-Za-z0-9_.+!-]+\.whl")
#: Seconds before each new attempt at writing an entry that failed.
WRITE_RETRY_AFTER = (0.3, 1.0)
#: Why an entry was not used, as the report says it.
NO_ENTRY = "no entry for this key"


@dataclass
class Tally:
    """What the shared cache gave, missed and took during one build, for the report."""

    hits: dict[str, int] = field(default_factory=dict)  #: kind -> entries used
    #: (kind, key, why) of each entry that was looked for and not used
    misses: list[tuple[str, str, str]] = field(default_factory=list)
    stored: dict[str, int] = field(default_factory=dict)  #: kind -> entries written
    notes: list[str] = field(default_factory=list)  #: what went wrong, once each

    def summary(self) -> str:
        """``2 layer entries used, 1 missed (no entry for this key), 3 written``."""
        parts = []
        for kind in KINDS:
            used, stored = self.hits.get(kind, 0), self.stored.get(kind, 0)
            missed = [why for missed_kind, _, why in self.misses if missed_kind == kind]
            if not (used or stored or missed):
                continue
            part = "%d %s entries used" % (used, kind)
            if missed:
                reasons = sorted(set(why.partition(":")[0] for why in missed))
                part += ", %d missed (%s)" % (len(missed), "; ".join(reasons))
            if stored:
                part += ", %d written" % stored
            parts.append(part)
        return "; ".join(parts) or "nothing used or written"

    def to_json(self) -> dict[str, Any]:
        return {"hits": dict(self.hits), "stored": dict(self.stored), "notes": list(self.notes),
                "misses": [{"kind": kind, "key": key, "why": why}
                           for kind, key, why in self.misses]}


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """Under the cache's lock: one thread at a time uses its session and its tally."""
    @functools.wraps(method)
    def locked(self: SharedCache, *arguments: Any, **keywords: Any) -> Any:
        with self._lock:
            return method(self, *arguments, **keywords)
    return locked


class SharedCache:
    """Entries of one registry repository: read (``--cache-from``), written (``--cache-to``)."""

    def __init__(self, read_from: str | None, write_to: str | None,
                 credentials: Credentials | None,
                 note: Callable[[str], None] = lambda message: None) -> None:
        self.read_from = read_from
        self.write_to = write_to
        self._note = note
        self.tally = Tally()
        self._reader = _repository(read_from, credentials) if read_from else None
        self._writer = _repository(write_to, credentials) if write_to else None
        self._unreachable: set[str] = set()  # references not tried again this build
        #: the runtime-packages image is made in a thread of its own (one session, one tally)
        self._lock = threading.RLock()
        #: (kind, key) -> what to write after the build
        self._pending: dict[tuple[str, str], tuple[dict[str, Any], list[tuple[
            Descriptor, Callable[[], Any]]]]] = {}

    # ------------------------------------------------------------------
    # Reading

    @_locked
    def _fetch(self, kind: str, key: str,
               read: Callable[[dict[str, Any], list[Descriptor], Repository], T]) -> T | None:
        """What ``read`` makes of the entry ``kind``-``key``; None when it is not usable.

        ``read`` gets the entry's configuration and blob descriptors and the
        repository to read the blobs from, and raises Unverifiable (or
        ValueError) at what does not add up.  A registry that cannot be
        reached or refuses is a note and not asked again; an unusable entry
        is a note and a miss with its reason; neither is an error.
        """
        if self._reader is None or self.read_from in self._unreachable:
            return None
        try:
            manifest = self._reader.manifest(tag(kind, key))
            if manifest is None:
                self.tally.misses.append((kind, key, NO_ENTRY))
                return None
            config, blobs = _parse_manifest(manifest, kind)
            configuration = json.loads(self._reader.blob(config))
            if not isinstance(configuration, dict):
                raise Unverifiable("its configuration is not a JSON object")
            result = read(configuration, blobs, self._reader)
        except (Unreachable, Refused) as error:
            self._gone(self.read_from, error)
            return None
        except (RegistryError, ValueError, OSError) as error:
            self.tally.misses.append((kind, key, "unverifiable: %s" % error))
            self._warn("the shared cache's %s entry %s is ignored: %s"
                       % (kind, key[:16], error))
            return None
        self.tally.hits[kind] = self.tally.hits.get(kind, 0) + 1
        return result

    def fetch_layer(self, key: str, local: LayerCache) -> CachedLayer | None:
        """The layer kept under ``key``, put into the local cache; None if it is not usable."""
        def read(configuration: dict[str, Any], blobs: list[Descriptor],
                 repository: Repository) -> CachedLayer:
            layer = layer_from_json(configuration)
            _layer_tar(blobs, layer.diff_id, repository, local)
            local.put(key, layer)
            return layer
        return self._fetch("layer", key, read)

    def fetch_project_wheel(self, key: str) -> tuple[str, bytes] | None:
        """(file name, bytes) of the project's wheel kept under ``key``, or None."""
        def read(configuration: dict[str, Any], blobs: list[Descriptor],
                 repository: Repository) -> tuple[str, bytes]:
            (name,) = _wheel_names(blobs, [configuration.get("wheel")])
            return name, repository.blob(blobs[0])
        return self._fetch("project-wheel", key, read)

    def fetch_lock(self, key: str) -> tuple[dict[str, Any], dict[str, bytes]] | None:
        """The lock record kept under ``key`` and its wheels by file name (pip's too), or None.

        Each wheel is also checked against the digest the record names for it.
        """
        def read(record: dict[str, Any], blobs: list[Descriptor], repository: Repository
                 ) -> tuple[dict[str, Any], dict[str, bytes]]:
            wheels, pip, digests = record.get("wheels"), record.get("pip"), record.get("sha256")
            if not (isinstance(wheels, list) and isinstance(digests, dict)
                    and isinstance(record.get("lock"), list)):
                raise Unverifiable("its lock record is not one")
            data = {}
            for name, blob in zip(_wheel_names(blobs, list(wheels) + [pip]), blobs):
                if name != pip and blob.digest != "sha256:%s" % digests.get(name):
                    raise Unverifiable("the wheel %s is not the one its lock names" % name)
                data[name] = repository.blob(blob)
            return record, data
        return self._fetch("lock", key, read)

    def fetch_packages_layer(self, key: str, local: LayerCache) -> tuple[str, str] | None:
        """(diff ID, history line) of the runtime-packages layer under ``key``, its tar put
        into the local layer cache; None if the entry is not usable."""
        def read(configuration: dict[str, Any], blobs: list[Descriptor],
                 repository: Repository) -> tuple[str, str]:
            diff_id, created_by = configuration.get("diff_id"), configuration.get("created_by")
            if not (isinstance(diff_id, str) and isinstance(created_by, str)):
                raise Unverifiable("it names no layer")
            _layer_tar(blobs, diff_id, repository, local)
            return diff_id, created_by
        return self._fetch("packages-layer", key, read)

    # ------------------------------------------------------------------
    # Writing: collected during the build, written after its images are tagged

    @_locked
    def keep_layer(self, key: str, layer: CachedLayer, tar: Path) -> None:
        """Write this layer's entry after the build (with ``--cache-to``)."""
        if self._writer is None:
            return
        blob = Descriptor(LAYER_TYPE, layer.diff_id, tar.stat().st_size)
        self._pending[("layer", key)] = (layer_to_json(layer), [(blob, lambda: open(tar, "rb"))])

    @_locked
    def keep_project_wheel(self, key: str, name: str, data: bytes) -> None:
        """Write the project's wheel's entry after the build (with ``--cache-to``)."""
        if self._writer is None:
            return
        blob = Descriptor(WHEEL_TYPE, sha256_digest(data), len(data), {TITLE: name})
        self._pending[("project-wheel", key)] = ({"wheel": name}, [(blob, lambda: data)])

    @_locked
    def keep_lock(self, key: str, record: dict[str, Any], sizes: dict[str, tuple[str, int]],
                  read: Callable[[str], bytes]) -> None:
        """Write a lock's entry after the build: ``record`` as the wheel volume keeps it.

        ``sizes`` gives each wheel's (digest, size); ``read(name)`` its bytes,
        called only for a wheel the repository lacks.
        """
        if self._writer is None:
            return
        blobs: list[tuple[Descriptor, Callable[[], Any]]] = []
        for name in list(record["wheels"]) + [record["pip"]]:
            digest, size = sizes[name]
            blobs.append((Descriptor(WHEEL_TYPE, digest, size, {TITLE: name}),
                          functools.partial(read, name)))
        self._pending[("lock", key)] = (dict(record), blobs)

    @_locked
    def keep_packages_layer(self, key: str, diff_id: str, created_by: str, tar: Path) -> None:
        """Write the runtime-packages layer's entry after the build (with ``--cache-to``)."""
        if self._writer is None:
            return
        blob = Descriptor(LAYER_TYPE, diff_id, tar.stat().st_size)
        self._pending[("packages-layer", key)] = ({"diff_id": diff_id, "created_by": created_by},
                                                  [(blob, lambda: open(tar, "rb"))])

    @_locked
    def write(self) -> None:
        """Write every entry kept, those the repository lacks; a warning note if it fails.

        Never raises: the images are tagged by then, and a cache that could not
        be written costs the next build time, not correctness.
        """
        if self._writer is None or not self._pending:
            return
        for (kind, key), (configuration, blobs) in sorted(self._pending.items()):
            for attempt in range(len(WRITE_RETRY_AFTER) + 1):
                try:
                    written = self._write_entry(kind, key, configuration, blobs)
                    break
                except (RegistryError, OSError) as error:
                    # Writers of the same blob or manifest at once can make docker-registry
                    # answer 500 or DIGEST_INVALID (measured: 3 of 15 rounds of 4 writers):
                    # the entry is tried again, and is then often there already.
                    if attempt == len(WRITE_RETRY_AFTER) or isinstance(error, Refused):
                        self._warn("the shared cache %s was not written (%s); the images are "
                                   "built and tagged, the next build does the work again"
                                   % (self.write_to, error))
                        return
                    time.sleep(WRITE_RETRY_AFTER[attempt])
            if written:
                self.tally.stored[kind] = self.tally.stored.get(kind, 0) + 1

    def _write_entry(self, kind: str, key: str, configuration: dict[str, Any],
                     blobs: list[tuple[Descriptor, Callable[[], Any]]]) -> bool:
        """Write one entry, blobs first; False if the repository has it already."""
        assert self._writer is not None
        if self._writer.manifest(tag(kind, key)) is not None:
            return False  # entries of one key are the same work: written once
        config_bytes = json.dumps(configuration, sort_keys=True, separators=(",", ":")).encode()
        config = Descriptor(CONFIG_TYPE % kind, sha256_digest(config_bytes), len(config_bytes))
        self._writer.put_blob(config.digest, config.size, lambda: config_bytes)
        for blob, opener in blobs:
            self._writer.put_blob(blob.digest, blob.size, opener)
        self._writer.put_manifest(tag(kind, key), manifest_bytes(kind, key, config,
                                                                 [b for b, _ in blobs]))
        return True

    # ------------------------------------------------------------------

    def _gone(self, reference: str | None, error: Exception) -> None:
        assert reference is not None
        self._unreachable.add(reference)
        self._warn("the shared cache %s cannot be used (%s): the build goes on without it"
                   % (reference, error))

    def _warn(self, message: str) -> None:
        self.tally.notes.append(message)
        self._note(message)


def tag(kind: str, key: str) -> str:
    """The tag of an entry: ``layer-{key}`` (at most 128 characters, as tags must be)."""
    return ("%s-%s" % (kind, key))[:128]


def manifest_bytes(kind: str, key: str, config: Descriptor, blobs: list[Descriptor]) -> bytes:
    """An entry's OCI image manifest, the same bytes for the same entry on any machine."""
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": ARTIFACT_TYPE, "config": config.to_json(),
                "layers": [blob.to_json() for blob in blobs],
                "annotations": {"org.opendev.pbrx-images.cache.kind": kind,
                                "org.opendev.pbrx-images.cache.key": key}}
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def _parse_manifest(data: bytes, kind: str) -> tuple[Descriptor, list[Descriptor]]:
    try:
        manifest = json.loads(data)
    except ValueError:
        raise Unverifiable("its manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("artifactType") != ARTIFACT_TYPE:
        raise Unverifiable("its manifest is not a pbrx-images cache entry of this version")
    config = Descriptor.from_json(manifest.get("config"))
    if config.media_type != CONFIG_TYPE % kind:
        raise Unverifiable("it is not a %s entry" % kind)
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise Unverifiable("its manifest lists no blobs")
    return config, [Descriptor.from_json(layer) for layer in layers]


def _layer_tar(blobs: list[Descriptor], diff_id: str, repository: Repository,
               local: LayerCache) -> None:
    """Put the entry's one blob, the layer ``diff_id``, into the local layer cache."""
    if not is_digest(diff_id):
        raise Unverifiable("it names no layer")
    if len(blobs) != 1 or blobs[0].digest != diff_id:
        raise Unverifiable("its blob is not the layer %s" % diff_id)
    if local.existing_tar(diff_id) is None:
        write_whole(local.tar_path(diff_id), repository.blob_chunks(blobs[0]))


def _wheel_names(blobs: list[Descriptor], names: list[Any]) -> list[str]:
    """The file names of an entry's wheel blobs, as its configuration lists them, checked."""
    if len(blobs) != len(names):
        raise Unverifiable("it has %d blobs for %d wheels" % (len(blobs), len(names)))
    for name, blob in zip(names, blobs):
        if not (isinstance(name, str) and _WHEEL_NAME.fullmatch(name)
                and blob.annotations.get(TITLE) == name):
            raise Unverifiable("it names a wheel %r that is not one" % (name,))
    return names


def _repository(reference: str, credentials: Credentials | None) -> Repository:
    host, _, name = reference.partition("/")
    if host == DOCKER_HUB:  # (its API has a host of its own)
        return Repository("registry-1.docker.io", name, lambda _: credentials(
            "https://index.docker.io/v1/") if credentials else None)
    return Repository(host, name, credentials)
