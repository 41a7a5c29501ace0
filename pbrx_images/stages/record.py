"""The build record: the no-op check before a build, the record and result after it.

A build keeps, under a key that hashes all its inputs
(:mod:`pbrx_images.cache.build_record`), the images it made and their SBOMs;
the next build of the same inputs finds them there and, if the engine still
has them as they were, builds nothing (:func:`up_to_date`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from pbrx_images.cache import build_record
from pbrx_images.engine import Engine, ImageInfo
from pbrx_images.plan import Plan
from pbrx_images.project.inputs import BuildInputs
from pbrx_images.project.settings import Options
from pbrx_images.stages import sbom as sbom_module
from pbrx_images.stages.finish import push_all
from pbrx_images.ui.output import Reporter


@dataclass(frozen=True)
class BuiltImage:
    name: str  #: full name with tag
    id: str
    size: int
    layers: tuple[dict[str, object], ...] = ()  #: oldest first, from the image's history
    digest: str | None = None  #: the registry's manifest digest, when pushed
    sbom: str | None = None  #: path of the image's SBOM file
    sbom_digest: str | None = None  #: its sha256, as in the image's label


@dataclass(frozen=True)
class Result:
    plan: Plan
    images: tuple[BuiltImage, ...]
    #: what the shared build cache gave, missed and took (:meth:`Tally.to_json
    #: <pbrx_images.cache.shared.Tally.to_json>`); None for a build without one
    shared_cache: Mapping[str, Any] | None = None


def record_inputs(tool: str, inputs: BuildInputs, options: Options, source_digest: str,
                  origin: tuple[str | None, str | None], base: ImageInfo) -> build_record.Inputs:
    """What the build record keys a build of ``inputs`` on ``base`` by.

    ``tool`` is :func:`build_record.tool_identity`; ``origin`` the git commit
    and remote URL of the labels.
    """
    return build_record.Inputs(
        tool, source_digest, inputs.constraints, inputs.bindep, options.base_image, base.id,
        base.digest, build_record.option_values(options), inputs.pip.files,
        inputs.pip.environment, inputs.proxy_environment, inputs.source_date_epoch, *origin)


def inputs_key(tool: str, inputs: BuildInputs, options: Options, source_digest: str,
               origin: tuple[str | None, str | None], base: ImageInfo) -> str:
    """The build record's key of a build of ``inputs`` on ``base`` (:func:`record_inputs`)."""
    return build_record.key(record_inputs(tool, inputs, options, source_digest, origin, base))


def up_to_date(engine: Engine, reporter: Reporter, options: Options,
               records: build_record.RecordStore, key: str) -> Result | None:
    """The images of the last build of the same inputs, if they are still as it left them.

    Only inspects images and reads the SBOM files: no container runs.
    """
    record = records.get(key)
    if record is None:
        return None
    # every name, -t's more tags too, must still be the recorded image
    names = record.plan.all_names({image.name: image.id for image in record.images})
    infos = {name: engine.image(name) for name in names}
    reason = build_record.stale(record, {name: info.id if info else None
                                         for name, info in infos.items()},
                                build_record.read_file)
    if reason is not None:
        reporter.say("Building again: the last build of the same inputs is no longer "
                     "current (%s)." % reason)
        return None
    reporter.say("Up to date: nothing changed since the build of %s and its images are still "
                 "there; nothing to build (--refresh builds anyway, picking up new releases of "
                 "unpinned dependencies)."
                 % time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.built_at)))
    for note in record.plan.notes:
        reporter.note(note)
    digests = push_all(engine, reporter, list(names)) if options.push else {}
    return result_of(engine, record.plan, record.images, digests, infos)


def result_of(engine: Engine, plan: Plan, images: Sequence[build_record.RecordedImage],
              digests: Mapping[str, str],
              infos: Mapping[str, ImageInfo | None] | None = None,
              shared_cache: Mapping[str, Any] | None = None) -> Result:
    """The report of ``images``, with the engine's size and layers of each."""
    results = []
    for image in images:
        info = infos[image.name] if infos is not None else engine.image(image.id)
        results.append(BuiltImage(image.name, image.id, info.size if info else 0,
                                  tuple(engine.layers(image.id)),
                                  digest=digests.get(image.name), sbom=image.sbom,
                                  sbom_digest=image.sbom_digest))
    return Result(plan, tuple(results), shared_cache)


def record_build(records: build_record.RecordStore, reporter: Reporter, key: str, plan: Plan,
                 built: Mapping[str, str], sbom_paths: Mapping[str, Path],
                 sbom_documents: Mapping[str, bytes]) -> tuple[build_record.RecordedImage, ...]:
    """Keep what the next build of the same inputs needs to do nothing; the images."""
    images = tuple(build_record.RecordedImage(
        image.name, built[image.name], str(sbom_paths[image.name]),
        sbom_module.digest(sbom_documents[image.name])) for image in plan.images)
    try:
        records.put(build_record.Record(key, images, plan, time.time()))
    except OSError as error:
        reporter.note("cannot write the record of this build into %s (%s): the next build "
                      "of the same inputs builds again" % (records.directory,
                                                           error.strerror or error))
    return images
