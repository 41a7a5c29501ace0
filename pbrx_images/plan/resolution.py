"""Which wheels pip installs into an image, and when that answer can be kept.

The runtime stage asks pip in a container of the image below
(``pip install --dry-run --report``) which of the run's wheels an image
adds.  The answer depends only on the lock (every version pinned) and what
its key hashes (the project's requirements and extras, constraints, pip
settings, the builder), on the pip that runs, on the image's extra, and on
the virtualenv it starts from: the image that virtualenv grew from and the
distributions installed on it since.  The project's own version and code
are none of these, so after a code change the answer of the last build is
reused (:func:`key`, :func:`to_json`, :func:`from_json`) and no container
starts to ask pip again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import urllib.parse
from typing import Any, Mapping

from packaging.utils import canonicalize_name

from pbrx_images.errors import BuildError
from pbrx_images.plan.wheel_volume import WheelBuild

#: Bump when what a kept resolution holds, or what its key hashes, changes.
RECIPE = "resolution-1"


@dataclasses.dataclass(frozen=True)
class Wanted:
    """A distribution pip would install into an image, from the run's wheels."""

    path: str  #: its wheel, in the run's directory
    sha256: str  #: the wheel's
    name: str  #: as its metadata spells it
    version: str


def from_report(report: Mapping[str, Any], wheels: WheelBuild) -> dict[str, Wanted]:
    """Canonical name -> what pip's installation report says it would install."""
    wanted = {}
    for item in report.get("install") or ():
        metadata = item["metadata"]
        name = str(canonicalize_name(metadata["name"]))
        url = (item.get("download_info") or {}).get("url") or ""
        parsed = urllib.parse.urlsplit(url)
        path = urllib.parse.unquote(parsed.path)
        digest = wheels.digests.get(path.rpartition("/")[2])
        if parsed.scheme != "file" or digest is None:
            raise BuildError("pip would install %s from %s, not from the run's wheels: "
                             "report this as a bug of build-images." % (name, url))
        wanted[name] = Wanted(path, digest, metadata["name"], metadata["version"])
    return wanted


def key(wheels: WheelBuild, extra: str | None, venv_image: str,
        installed: Mapping[str, tuple[str, str]]) -> str:
    """The hash of what decides pip's answer for an image.

    ``installed`` maps canonical names to (name, version) of what images of
    this build added to ``venv_image``'s virtualenv below this one; the
    project's own entry is left out of the hash.
    """
    project = canonicalize_name(wheels.metadata.name or "")
    parts = {
        "recipe": RECIPE,
        "lock_key": wheels.lock_key,
        "lock": list(wheels.lock.requirements),
        "pip": wheels.pip_wheel,
        "extra": extra or "",
        "venv_image": venv_image,
        "installed": sorted([name, version] for canonical, (name, version)
                            in installed.items() if canonical != project),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def to_json(wanted: Mapping[str, Wanted], wheels: WheelBuild) -> dict[str, Any]:
    """What to keep of ``wanted``: wheel file names; the project's wheel as such."""
    kept = {}
    for name, found in wanted.items():
        wheel = found.path.rpartition("/")[2]
        kept[name] = {"project": True} if wheel == wheels.wheel else \
            {"wheel": wheel, "name": found.name, "version": found.version}
    return {"wanted": kept}


def from_json(data: Any, wheels: WheelBuild, run: str) -> dict[str, Wanted] | None:
    """A kept resolution for this run, or None when it names a wheel the run lacks."""
    try:
        wanted = {}
        for name, item in data["wanted"].items():
            if item.get("project"):
                wheel, spelled, version = (wheels.wheel, wheels.metadata.name,
                                           wheels.metadata.version)
            else:
                wheel, spelled, version = item["wheel"], item["name"], item["version"]
            digest = wheels.digests.get(wheel)
            if digest is None or not spelled or not version:
                return None
            wanted[str(name)] = Wanted("%s/%s" % (run, wheel), digest, str(spelled),
                                       str(version))
        return wanted
    except (KeyError, TypeError, AttributeError):
        return None
