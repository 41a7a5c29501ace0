"""The record of a successful build, so that a rebuild of unchanged inputs does nothing.

After a build has tagged its images, the client keeps a record of it under
``~/.cache/pbrx-images/builds`` (``$XDG_CACHE_HOME``): ``{key}.json`` with
each image's name, ID and SBOM (path and digest), and the plan the JSON
report needs.  The key hashes every input of the build (:class:`Inputs`):
build-images' own code, the source tree, the constraints, the bindep file,
the base image's ID, the options that change the images, the pip
configuration and proxies given to the containers and ``SOURCE_DATE_EPOCH``.

A later build with the same key whose images still carry their names on the
engine, with the same IDs, and whose SBOM files are still there unchanged,
has nothing to do.  What pip would resolve today is not an input: a new
release of an unpinned dependency is picked up only when an input changes,
or with ``--refresh`` or ``--no-cache`` (as docker build's layer cache does).

Only hashes of the inputs are kept, never the inputs: the pip configuration
may hold tokens.  Records are written whole and renamed into place; one
that cannot be read is a miss.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from pbrx_images.cache.files import UNUSED_FOR, mark_used, prune_files, write_whole
from pbrx_images.plan import ImagePlan, Plan
from pbrx_images.project.bindep_file import DistroPackages
from pbrx_images.project.settings import Options

#: Bump when what a record holds, or what the key covers, changes.
RECIPE = "1"
#: Options that never change the images (or force a full build themselves), with why.
#: Every other field of :class:`Options` is part of the key, so an option added
#: later is covered unless it is listed here.
NOT_IN_KEY = {
    "no_cache": "always a full build",
    "refresh": "always a full build",
    "dry_run": "builds nothing",
    "debug": "output only",
    "push": "done after the build, on the fast path too",
    "network": "where the build containers reach the network, not what they make",
    "constraints": "its path: the file's content is in the key instead",
    "pyproject": "the file as read: it is in the source tree's hash",
    "cache_from": "where earlier work may come from: the same images either way",
    # (cache_to is in the key: a build is up to date when it wrote the same shared cache,
    # so adding --cache-to to a build that was up to date builds, and writes the cache)
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tool_identity(package_dir: Path | None = None) -> str:
    """build-images' version and a digest of its code.

    The code counts, not only the version: an installation from a checkout
    keeps its version while its code changes, and changed code may make
    other images.
    """
    package_dir = package_dir or Path(__file__).resolve().parents[1]  # pbrx_images/
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or path.suffix == ".pyc":
            continue
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    try:
        version = importlib.metadata.version("pbrx-images")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return "%s %s" % (version, digest.hexdigest())


def option_values(options: Options) -> dict[str, Any]:
    """The options that shape the images, by name, as JSON values."""
    values: dict[str, Any] = {}
    for option in dataclasses.fields(options):
        if option.name in NOT_IN_KEY:
            continue
        value = getattr(options, option.name)
        if option.name == "extras":  # (where a mapping was given does not shape the images)
            value = [[mapping.script, list(mapping.extras)] for mapping in value]
        values[option.name] = str(value) if isinstance(value, Path) else value
    return values


@dataclass(frozen=True)
class Inputs:
    """Everything a build's images are made from."""

    tool: str  #: :func:`tool_identity`
    source_digest: str  #: :func:`pbrx_images.project.source.archive_source`'s digest
    constraints: bytes
    bindep: tuple[str, bytes] | None  #: the bindep file's name and content
    base_image: str  #: as given (it is in the images' labels)
    base_id: str
    base_digest: str  #: the registry digest in the labels (the ID when there is none)
    options: Mapping[str, Any]  #: :func:`option_values`
    pip_files: Mapping[str, bytes]  #: files the pip configuration puts in the containers
    pip_environment: Mapping[str, str]
    proxy_environment: Mapping[str, str]  #: proxies given to the runtime containers
    source_date_epoch: str | None  #: as set in the environment
    revision: str | None  #: git commit and origin (labels)
    source_url: str | None


def key_data(inputs: Inputs) -> dict[str, Any]:
    """Every input by name as JSON values, files by their own sha256 (what :func:`key` hashes)."""
    return {
        "recipe": RECIPE,
        "tool": inputs.tool,
        "source": inputs.source_digest,
        "constraints": _sha256(inputs.constraints),
        "bindep": None if inputs.bindep is None else [inputs.bindep[0],
                                                      _sha256(inputs.bindep[1])],
        "base": [inputs.base_image, inputs.base_id, inputs.base_digest],
        "options": dict(inputs.options),
        "pip_files": {path: _sha256(data) for path, data in inputs.pip_files.items()},
        "pip_environment": dict(inputs.pip_environment),
        "proxy_environment": dict(inputs.proxy_environment),
        "source_date_epoch": inputs.source_date_epoch,
        "git": [inputs.revision, inputs.source_url],
    }


def _digest_of(value: Any) -> str:
    return _sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())


def key(inputs: Inputs) -> str:
    """The record's key: a sha256 of every input (files by their own sha256)."""
    return _digest_of(key_data(inputs))


def input_digests(inputs: Inputs) -> dict[str, str]:
    """A sha256 of each input but the source tree, by its name in :func:`key_data`.

    What the fast path of an app change compares
    (:func:`pbrx_images.plan.fast_path.decide`): the source tree it compares
    file by file.
    """
    return {name: _digest_of(value) for name, value in key_data(inputs).items()
            if name != "source"}


@dataclass(frozen=True)
class RecordedImage:
    """One image as the build left it."""

    name: str  #: full name with tag
    id: str
    sbom: str | None = None  #: path of its SBOM file
    sbom_digest: str | None = None  #: ``sha256:{hex}`` of that file


@dataclass(frozen=True)
class Record:
    """A successful build: its images and its plan."""

    key: str
    images: tuple[RecordedImage, ...]
    plan: Plan
    built_at: float = field(default=0.0, compare=False)  #: seconds since 1970


def plan_data(plan: Plan) -> dict[str, Any]:
    """A plan as JSON values (:func:`plan_from_data` reads them back)."""
    packages = plan.packages
    return {
        "project": plan.project, "version": plan.version, "base_image": plan.base_image,
        "packages": {"platform": list(packages.platform), "runtime": list(packages.runtime),
                     "compile": list(packages.compile),
                     "selected_by": dict(packages.selected_by)},
        "images": [{"name": image.name, "script": image.script, "extra": image.extra,
                    "dockerfile": image.dockerfile} for image in plan.images],
        "notes": list(plan.notes),
        "git": plan.git,
        "more_tags": list(plan.more_tags),
    }


def plan_from_data(data: Mapping[str, Any]) -> Plan:
    """The plan :func:`plan_data` wrote; KeyError, TypeError or ValueError if it is not one."""
    packages = data["packages"]
    images = tuple(ImagePlan(_text(image["name"]), _optional(image["script"]),
                             _optional(image["extra"]), _optional(image["dockerfile"]))
                   for image in data["images"])
    if not images:
        raise ValueError("a plan has at least its base image")
    return Plan(
        _text(data["project"]), _optional(data["version"]), _text(data["base_image"]),
        DistroPackages(_texts(packages["platform"]), _texts(packages["runtime"]),
                       _texts(packages["compile"]),
                       {_text(name): _text(selector)
                        for name, selector in dict(packages["selected_by"]).items()}),
        images, _texts(data["notes"]), bool(data.get("git", True)),
        _texts(data.get("more_tags", [])))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string: %r" % (value,))
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else _text(value)


def _texts(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise TypeError("not a list: %r" % (values,))
    return tuple(_text(value) for value in values)


def record_data(record: Record) -> dict[str, Any]:
    return {
        "recipe": RECIPE, "key": record.key, "built_at": record.built_at,
        "images": [{"name": image.name, "id": image.id, "sbom": image.sbom,
                    "sbom_digest": image.sbom_digest} for image in record.images],
        "plan": plan_data(record.plan),
    }


def record_from_data(data: Any) -> Record:
    """The record :func:`record_data` wrote; KeyError, TypeError or ValueError if not one."""
    if data.get("recipe") != RECIPE:
        raise ValueError("a record of another version of build-images")
    images = tuple(RecordedImage(_text(image["name"]), _text(image["id"]),
                                 _optional(image["sbom"]), _optional(image["sbom_digest"]))
                   for image in data["images"])
    plan = plan_from_data(data["plan"])
    if [image.name for image in images] != [image.name for image in plan.images]:
        raise ValueError("the images are not the plan's")
    return Record(_text(data["key"]), images, plan, float(data["built_at"]))


def stale(record: Record, image_ids: Mapping[str, str | None],
          read_file: Callable[[str], bytes | None]) -> str | None:
    """Why the images of ``record`` are not as the build left them, or None if they are.

    ``image_ids`` has the ID each name points at on the engine now (None:
    no such image), every tag of the plan's included (``-t a -t b``);
    ``read_file`` reads a file (None: it cannot).
    """
    recorded = record.plan.all_names({image.name: image.id for image in record.images})
    for name, image_id in recorded.items():
        current = image_ids.get(name)
        if current is None:
            return "the image %s is gone" % name
        if current != image_id:
            return "%s is now another image" % name
    for image in record.images:
        if image.sbom is None:
            continue
        data = read_file(image.sbom)
        if data is None:
            return "the SBOM %s is gone" % image.sbom
        if "sha256:" + _sha256(data) != image.sbom_digest:
            return "the SBOM %s was changed" % image.sbom
    return None


def read_file(path: str) -> bytes | None:
    """A file's content, or None if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


class RecordStore:
    """Records of builds, one file per key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key: str) -> Path:
        return self.directory / (key + ".json")

    def get(self, key: str) -> Record | None:
        """The record under ``key``; None when there is none or it cannot be read."""
        path = self.path(key)
        try:
            with open(path, encoding="utf-8") as handle:
                record = record_from_data(json.load(handle))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if record.key != key:
            return None
        mark_used(path)
        return record

    def put(self, record: Record) -> None:
        """Write the record whole or not at all (then prune); OSError if it cannot."""
        write_whole(self.path(record.key),
                    json.dumps(record_data(record), indent=1, sort_keys=True).encode())
        self.prune()

    def prune(self, max_age: float = UNUSED_FOR, now: float | None = None) -> None:
        """Remove records not used for ``max_age`` seconds, and temporary files left behind."""
        prune_files((self.directory,), max_age, now)
