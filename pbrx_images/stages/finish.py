"""The end of a build: smoke test, tags (all or nothing), push, superseded images.

Images are loaded under work tags; only once every image is built are they
tagged with their real names (:func:`tag_all`: on a failure part-way, the
names get their previous images back), then pushed with ``--push``.
"""
from __future__ import annotations

import contextlib
import shlex
from typing import Mapping, Sequence

from pbrx_images import engine as engine_module
from pbrx_images.cache.cached_images import CachedImages
from pbrx_images.cache.files import cached_images_dir
from pbrx_images.engine import Engine
from pbrx_images.engine.run import Run
from pbrx_images.errors import BuildError
from pbrx_images.plan import ImagePlan, Plan
from pbrx_images.ui.output import Reporter

SMOKE_TIMEOUT = 60  # seconds a script may take to answer --help


def smoke_test(engine: Engine, run: Run, image: ImagePlan, work_tag: str) -> None:
    """Run the script with --help in a throwaway container of its image."""
    with engine.container(work_tag, run.container_name("smoke")) as container:
        try:
            container.run("timeout %d %s --help >/dev/null"
                          % (SMOKE_TIMEOUT, shlex.quote(image.script or "")))
        except engine_module.CommandFailed as failure:
            last = [line for line in failure.output.splitlines() if line.strip()]
            raise BuildError(
                "The image %s does not run its script: '%s --help' exited with %d (%s); fix "
                "the console script's entry point, or build without --smoke-test."
                % (image.name, image.script, failure.exit_code,
                   last[-1].strip() if last else "no output")) from failure


def smoke_test_all(engine: Engine, reporter: Reporter, run: Run, plan: Plan,
                   work_tags: Mapping[str, str]) -> None:
    """``--smoke-test``: each script's image answers ``--help``, one step each."""
    for image in plan.scripts:
        with reporter.step("Smoke test: %s --help" % image.script):
            smoke_test(engine, run, image, work_tags[image.name])


def tag_all(engine: Engine, built: Mapping[str, str]) -> None:
    """Tag each image ID with its name; on failure, restore the names' previous images."""
    previous = {name: engine.image(name) for name in built}
    done: list[str] = []
    try:
        for name, image_id in built.items():
            engine.tag(image_id, name)
            done.append(name)
    except BaseException:
        for name in done:
            with contextlib.suppress(BuildError):
                old = previous[name]
                if old is None:
                    engine.untag(name)
                else:
                    engine.tag(old.id, name)
        raise


def push_all(engine: Engine, reporter: Reporter, names: list[str]) -> dict[str, str]:
    """Push the tagged images, base image first; their digests by name.

    A failure stops at the first image the registry refuses, with a
    BuildError that says what to do; the local tags stay.
    """
    digests = {}
    for name in names:
        with reporter.step("Push %s" % name):
            pushed = engine.push(name)
            digests[name] = pushed.digest or ""
            reporter.say("    %s, digest %s" % (pushed.summary(), pushed.digest))
    return digests


def remove_superseded(engine: Engine, reporter: Reporter, base_name: str, base_id: str,
                      made: Sequence[str]) -> None:
    """Remove the cached images made from what ``base_name`` was before; remember ``made``.

    One the engine keeps (a container uses it) stays in the record, to be
    removed the next time the name moves.
    """
    records = CachedImages(cached_images_dir())
    kept = []
    for name in records.superseded(base_name, base_id):
        if engine.image(name) is None:
            continue
        engine.untag(name)
        if engine.image(name) is None:
            reporter.say("    removed %s, made from an older %s" % (name, base_name))
        else:
            kept.append(name)
    records.record(base_name, base_id, list(made) + kept)
