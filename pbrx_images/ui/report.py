"""The final report of a build as JSON (``build-images --format json``).

CI consumes it from standard output; everything for people then goes to
standard error.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from pbrx_images.plan import Plan
from pbrx_images.plan.runtime_image import layer_distributions
from pbrx_images.stages import sbom as sbom_module
from pbrx_images.stages.record import Result

FORMAT_VERSION = 1


def report(result: Result, timings: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """Images (name, tag, id, size, layers, SBOM), packages, extras and step timings.

    An image's ``digest`` is the registry's manifest digest when ``--push``
    pushed it (pull it as ``name@digest``), else null.
    """
    plan = result.plan
    images = []
    for built in result.images:
        repository, _, tag = built.name.rpartition(":")
        planned = next(image for image in plan.images if image.name == built.name)
        images.append({
            "name": repository, "tag": tag,
            "tags": [name.rpartition(":")[2] for name in plan.names(planned)],
            "id": built.id, "size": built.size,
            "digest": built.digest,
            "script": planned.script, "extra": planned.extra,
            "layers": [dict(layer, distributions=layer_distributions(layer))
                       for layer in built.layers],
            "sbom": {"path": built.sbom, "digest": built.sbom_digest,
                     "format": sbom_module.FORMAT} if built.sbom else None,
        })
    return {
        "version": FORMAT_VERSION,
        "project": {"name": plan.project, "version": plan.version},
        "base_image": plan.base_image,
        "platform": list(plan.packages.platform),
        "packages": _packages(plan),
        "images": images,
        "shared_cache": dict(result.shared_cache) if result.shared_cache is not None else None,
        "timings": [{"step": step, "seconds": round(seconds, 3)} for step, seconds in timings],
    }


def _packages(plan: Plan) -> dict[str, list[str]]:
    return {"compile": list(plan.packages.compile), "runtime": list(plan.packages.runtime),
            "builder": list(plan.builder_packages),
            "runtime_image": list(plan.runtime_packages)}


def to_json(result: Result, timings: Sequence[tuple[str, float]]) -> str:
    return json.dumps(report(result, timings), indent=2, sort_keys=False)


def plan_report(plan: Plan, complete: bool, push_target: str | None,
                build_args: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """The plan of a dry run (``--dry-run --format json``), in the report's shape.

    No IDs, sizes, layers or timings: nothing is built.  ``complete`` is
    false when the backend decides the scripts or extras (more images or
    extras may come); ``extras`` lists each image's, ``extras_from`` says
    where they came from.
    """
    return {
        "version": FORMAT_VERSION,
        "dry_run": True,
        "project": {"name": plan.project, "version": plan.version},
        "base_image": plan.base_image,
        "platform": list(plan.packages.platform),
        "packages": _packages(plan),
        "images": [{
            "name": image.name.rpartition(":")[0], "tag": image.name.rpartition(":")[2],
            "tags": [name.rpartition(":")[2] for name in plan.names(image)],
            "script": image.script, "extra": image.extra,
            "extras": image.extra.split(",") if image.extra else [],
            "extras_from": image.extra_from or None,
            "dockerfile": image.dockerfile,
        } for image in plan.images],
        "complete": complete,
        "build_args": dict(build_args),
        "push_to": push_target,
        "notes": list(plan.notes),
    }
