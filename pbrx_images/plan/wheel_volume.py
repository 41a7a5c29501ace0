"""The wheel volume's layout, and what one run of the wheel step leaves in it.

Pure code.  The volume (``pbrx-images-wheels-{project}``) is mounted at
:data:`WHEELS` in build containers: the wheel cache at its top, one
directory per run under ``runs/`` (the wheels an install may take, the lock,
the constraints; removed at the end of the run), pip unpacked under
``pip/``.  :class:`WheelBuild` is what the builder stage hands the runtime
stage: the project's metadata read from its wheel, the lock, and the wheels.
The programs that keep the volume are in ``container_tools/wheel_cache.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from pbrx_images.plan.lock import Lock
from pbrx_images.project.metadata import ProjectMetadata

#: Where the wheel volume is mounted in build containers.
WHEELS = "/run/pbrx-images/wheels"


def run_dir(run_id: str) -> str:
    """The directory of one run's wheels, lock and constraints."""
    return "%s/runs/%s" % (WHEELS, run_id)


def pip_directory(pip_wheel: str) -> str:
    """Where the wheel volume holds pip's wheel ``pip_wheel`` unpacked and byte-compiled.

    The runtime stage runs pip from there (``PYTHONPATH``): three times
    quicker to start than from the wheel file, whose modules would be
    compiled on every run.
    """
    return "%s/pip/%s" % (WHEELS, pip_wheel[:-len(".whl")])


def lock_record(lock: Lock, pip_wheel: str, digests: Mapping[str, str]) -> dict[str, Any]:
    """What ``locks/{key}.json`` holds (and the shared cache's lock entry): the lock, its
    wheels' names and digests, pip's wheel; ``wheel_cache.py reuse`` reads it back."""
    return {"lock": list(lock.requirements), "wheels": sorted(digests), "pip": pip_wheel,
            "sha256": dict(digests)}


@dataclass
class WheelBuild:
    """The outcome of the wheel step."""

    metadata: ProjectMetadata  #: read from the project's wheel: the source of truth
    wheel: str  #: file name of the project's wheel in the run directory
    lock: Lock
    pip_wheel: str  #: file name of the pip wheel the runtime stage installs with
    #: file name -> sha256 (hex) of every wheel in the run directory (pip's aside)
    digests: Mapping[str, str] = field(default_factory=dict)
    lock_key: str = ""  #: the hash of what the lock was resolved from (:func:`lock_key`)
