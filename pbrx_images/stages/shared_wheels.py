"""The wheel step's side of the shared build cache: what it takes, what it gives.

The builder stage (:mod:`pbrx_images.stages.builder`) keeps the project's
wheel and the locks in the wheel volume under keys that hash the builder
image's name, which hashes the builder's inputs: known before the image
exists.  The shared cache (:mod:`pbrx_images.cache.shared`) keeps them under
the same keys, so a build that finds the project's wheel of its source and
the lock of its requirements there needs no builder image: the pipeline
asks first (:func:`project_wheel`, then the lock), and says what it found
(:func:`describe`); after a build with ``--cache-to`` the builder hands its
lock and wheels over (:func:`keep_lock`).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from pbrx_images.engine import Container
from pbrx_images.errors import BuildError
from pbrx_images.plan.cache_keys import project_wheel_key
from pbrx_images.plan.lock import Lock
from pbrx_images.plan.wheel_volume import lock_record
from pbrx_images.project.metadata import ProjectMetadata
from pbrx_images.project.wheel_metadata import read_wheel
from pbrx_images.ui.output import Reporter

if TYPE_CHECKING:  # (imported only by builds that have one: it imports requests)
    from pbrx_images.cache.shared import SharedCache


def project_wheel(shared: SharedCache, reporter: Reporter, builder_image: str,
                  source_digest: str, build_requires: Sequence[str],
                  backend: tuple[str, Sequence[str]]) -> tuple[str, bytes, ProjectMetadata] | None:
    """The project's wheel of this source from the shared cache: name, bytes, metadata."""
    found = shared.fetch_project_wheel(project_wheel_key(builder_image, source_digest,
                                                         build_requires, backend))
    if found is None:
        return None
    try:
        return found[0], found[1], read_wheel(Path(found[0]), found[1])
    except BuildError as error:  # (its digest was right: a bad wheel was written)
        reporter.note("the shared cache's project wheel %s is ignored: %s" % (found[0], error))
        return None


def describe(shared: SharedCache, project: object | None, lock: object | None) -> str:
    """What the shared cache gave the wheel step, and so whether a builder image is needed."""
    def why(kind: str) -> str:
        missed = [reason for missed_kind, _, reason in shared.tally.misses if missed_kind == kind]
        return missed[-1] if missed else "the shared cache could not be used"
    if project is None:
        return "the project's wheel: %s; the wheels are built" % why("project-wheel")
    if lock is None:
        return ("the project's wheel, but not the lock of its requirements (%s): the "
                "dependencies are resolved and built" % why("lock"))
    return "the project's wheel, the lock and every wheel: no builder image is needed"


def keep_lock(shared: SharedCache, container: Container, run: str, key: str, lock: Lock,
              pip_wheel: str, digests: Mapping[str, str]) -> None:
    """Give the shared cache this lock and its wheels (those of the run directory ``run``
    of ``container``), to write after the build."""
    sizes = {}
    for line in container.run(
            "cd %s && for f in *.whl tools/*.whl; do [ -f \"$f\" ] && echo \"$(sha256sum < "
            "\"$f\" | cut -d' ' -f1) $(stat -c %%s \"$f\") ${f##*/}\"; done; true" % run
    ).splitlines():
        digest, size, name = (line.split(" ", 2) + ["", ""])[:3]
        if digest and size.isdigit():
            sizes[name] = ("sha256:" + digest, int(size))
    if not set(digests) | {pip_wheel} <= set(sizes):
        return  # (a wheel went missing: nothing half is kept)
    shared.keep_lock(key, lock_record(lock, pip_wheel, digests), sizes,
                     lambda name: container.read_file("%s/%s%s" % (
                         run, "tools/" if name == pip_wheel else "", name)))
