"""One build, from a project directory to tagged images (``pbrx_images.build``).

:func:`build` is what the ``build-images`` command calls.  It reads and
checks everything it can before it touches the engine, then runs the stages
(:mod:`pbrx_images.stages`: the base image probe, the builder, the runtime
images, the SBOMs, the finish) and tags the images with their real names
only once all of them are built.  Whatever happens, the containers it
started and the run's files in the wheel volume are removed
(:class:`pbrx_images.engine.run.Run`), and so are the work tags of a
failed build.
"""
from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from pbrx_images import engine as engine_module
from pbrx_images import interrupts
from pbrx_images import plan as plan_module
from pbrx_images.cache import build_record, files
from pbrx_images.cache.image_facts import ImageFacts
from pbrx_images.cache.layers import LayerCache
from pbrx_images.engine import Container, ImageInfo
from pbrx_images.engine.run import Run
from pbrx_images.errors import BuildError
from pbrx_images.plan import describe_plan, make_plan
from pbrx_images.plan.names import check_push_target
from pbrx_images.plan.runtime_image import base_entrypoint
from pbrx_images.project import labels as labels_module
from pbrx_images.project.inputs import read_inputs
from pbrx_images.project.metadata import ProjectMetadata, image_name
from pbrx_images.project.settings import Options
from pbrx_images.project.source import archive_source
from pbrx_images.stages import fast_rebuild
from pbrx_images.stages import record as record_module
from pbrx_images.stages import sbom as sbom_module
from pbrx_images.stages import shared_wheels
from pbrx_images.stages.alongside import Alongside
from pbrx_images.stages.base_image import inspect_base
from pbrx_images.stages.builder import Builder
from pbrx_images.stages.finish import push_all, remove_superseded, smoke_test_all, tag_all
from pbrx_images.stages.images import ImageSettings, build_images, runtime_packages_alongside
from pbrx_images.stages.record import Result, record_build, result_of, up_to_date
from pbrx_images.stages.runtime import Runtime
from pbrx_images.ui.output import Reporter, logged


def build(options: Options, reporter: Reporter,
          environ: Mapping[str, str] | None = None, home: Path | None = None) -> Result:
    """Build every image of the project in ``options.project_dir``."""
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    try:
        stem = image_name(options.project_dir.name or "project")
    except BuildError:  # a directory name with no letters or digits
        stem = "project"
    with logged(reporter, stem):
        try:
            return _build(options, reporter, environ, home)
        except BuildError as error:
            if error.log_path is None and reporter.log_path is not None:
                error.log_path = str(reporter.log_path)
            raise


def dry_run(options: Options, reporter: Reporter, environ: Mapping[str, str] | None = None,
            home: Path | None = None) -> list[str]:
    """The plan of a build, as lines of text; the engine only reads the base image."""
    return planned(options, reporter, environ, home).lines


@dataclass(frozen=True)
class Planned:
    """What a dry run found: the plan, and its description for people."""

    plan: plan_module.Plan
    lines: list[str]  #: :func:`~pbrx_images.plan.describe_plan`'s, with the platform and push
    #: False when the console scripts or extras are only known once the wheel is built
    complete: bool
    push_target: str | None  #: the registry ``--push`` pushes to; None without --push


def planned(options: Options, reporter: Reporter, environ: Mapping[str, str] | None = None,
            home: Path | None = None) -> Planned:
    """The plan of a build (``--dry-run``); the engine only reads the base image."""
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    checked = read_inputs(options, reporter, environ, home)
    engine = engine_module.connect(reporter, options.network, options.platform)
    run = Run(engine, checked.work_name)
    try:
        base = inspect_base(engine, run, options.base_image, checked.rules,
                            ImageFacts(files.facts_dir(), not options.no_cache))
    finally:
        run.remove_containers()
    static = checked.static
    metadata = ProjectMetadata(static.name or checked.work_name, static.version,
                               static.console_scripts, static.extras, static.source)
    plan = make_plan(metadata, base.packages, options.base_image, options.prefix, options.tag,
                     checked.dockerfiles, checked.git, options.extras, options.only,
                     options.more_tags)
    complete = static.console_scripts is not None and static.extras is not None
    lines = describe_plan(plan, base.description, base_entrypoint(), base.info.cmd,
                          complete=complete)
    lines.insert(2, "Platform: %s" % (options.platform or "the engine's own (no --platform)"))
    if options.build_args:
        lines.append("Build arguments of Dockerfile.{script} builds: %s" % " ".join(
            "%s=%s" % item for item in options.build_args))
    push_target = check_push_target(plan.base.name) if options.push else None
    if push_target is not None:
        lines.append("Push: every image to %s, once all are built and tagged" % push_target)
    return Planned(plan, lines, complete, push_target)


def _build(options: Options, reporter: Reporter, environ: Mapping[str, str],
           home: Path) -> Result:
    project_dir = options.project_dir
    # Everything that can be checked without the engine comes first.
    with reporter.timed("reading the project"):
        checked = read_inputs(options, reporter, environ, home)
        source = archive_source(project_dir, prefix=".")
        origin = labels_module.git_origin(project_dir)
    static, constraints = checked.static, checked.constraints
    if options.build_args and not checked.dockerfiles:
        reporter.note("The build arguments (--build-arg, build-args) are for "
                      "Dockerfile.{script} builds, and the project has none: they are not "
                      "used.")
    # names of scripts or extras the project's metadata already refutes fail before the engine
    known = ProjectMetadata(static.name or checked.work_name, static.version,
                            static.console_scripts, static.extras, static.source)
    plan_module.check_extras(known, options.extras)
    plan_module.check_only(known, options.only)
    reporter.say("Building images of %s (%s)" % (static.name or project_dir.name, project_dir))
    for directory, why in source.left_out:
        reporter.say("    left out of the source: %s/ (%s)" % (directory, why))

    with reporter.timed("connecting to the engine"):
        engine = engine_module.connect(reporter, options.network, options.platform)
    records = build_record.RecordStore(files.builds_dir())
    record_inputs = functools.partial(record_module.record_inputs, build_record.tool_identity(),
                                      checked, options, source.digest, origin)

    def inputs_key(base: ImageInfo) -> str:
        return build_record.key(record_inputs(base))

    fast_slot = fast_rebuild.slot(records.directory, project_dir)

    # Nothing to do when the last build of the same inputs left its images as they are;
    # after an app change, the fast path patches them when it can prove the result.
    # (A base image the engine does not have yet is pulled by a full build.)
    current_base = engine.image(options.base_image)
    if current_base is not None and not (options.no_cache or options.refresh):
        with reporter.timed("the up-to-date check"):
            current = up_to_date(engine, reporter, options, records, inputs_key(current_base))
        if current is not None:
            return current
    # What killed builds left is swept by a build with work for the engine, not by a no-op.
    with reporter.timed("the sweep of killed builds' containers and work tags"):
        engine.remove_dead_containers()
        for tag in engine.remove_dead_work_tags():
            reporter.say("    removed %s, left by a build that was killed" % tag)
    if current_base is not None and not (options.no_cache or options.refresh):
        if options.cache_to:
            reporter.say("Full build: --cache-to writes every layer to the shared cache.")
        else:
            with reporter.timed("the tree's state, for the fast path"):
                state = fast_rebuild.tree_state(record_inputs(current_base), source,
                                                project_dir)
            current = fast_rebuild.rebuild(engine, reporter, options, checked, records,
                                           fast_slot, state, source, inputs_key(current_base))
            if current is not None:
                return current
    run = Run(engine, checked.work_name)
    facts = ImageFacts(files.facts_dir(), not options.no_cache)
    facts.prune()
    LayerCache(files.layers_dir()).prune()
    shared = None
    if options.cache_from or options.cache_to:  # (imports requests: only when used)
        from pbrx_images.cache.shared import SharedCache
        from pbrx_images.engine.credentials import registry_credentials
        shared = SharedCache(options.cache_from, options.cache_to, registry_credentials,
                             reporter.note)
    wheel_image = None  # the image of the wheel container: the builder's, or the base image
    # The wheel container stays until the end, to remove the run's files from the volume;
    # so does the container started alongside for the base image's install.
    kept = contextlib.ExitStack()
    kept_alongside = contextlib.ExitStack()
    builder: Builder | None = None
    alongside: Alongside[tuple[str, Container]] | None = None
    succeeded = False
    try:
        with reporter.step("Inspect base image %s" % options.base_image):
            inspected = inspect_base(engine, run, options.base_image, checked.rules, facts,
                                     current_base)
            base, packages, manager = inspected.info, inspected.packages, inspected.manager
            reporter.say("    %s; bindep platform: %s" % (inspected.description, " ".join(
                p.replace("platform:", "") for p in packages.platform)))

        builder_packages = plan_module.builder_packages(packages, checked.git)
        sboms = sbom_module.Collection(engine, run.container_name, manager,
                                       sbom_module.timestamp(environ), facts)
        runtime = Runtime(engine, reporter, checked.work_name, checked.proxy_environment,
                          run.volume, run.id, options.no_cache, checked.epoch, facts,
                          options.refresh, shared)
        # Needs only the base image and bindep: made while the builder works.
        engine.ensure_volume(run.volume, {engine_module.LABEL_PROJECT: checked.work_name})
        alongside = runtime_packages_alongside(
            runtime, sboms, run, base, options.base_image, manager,
            plan_module.runtime_packages(packages), kept_alongside)
        builder = Builder(engine, reporter, checked.work_name, checked.pip.files,
                          checked.pip.environment, options.no_cache, options.refresh, facts,
                          shared if options.cache_to else None)
        # The plan is made once, from the wheel's metadata: the source of truth.
        plan = shared_wheel = shared_lock = None
        builder_name = builder.image_name(base, manager, builder_packages, constraints)
        if shared is not None and shared.read_from and not options.no_cache:
            with reporter.step("Wheels from the shared cache %s" % shared.read_from):
                shared_wheel = shared_wheels.project_wheel(
                    shared, reporter, builder_name, source.digest, checked.build_requires,
                    checked.backend)
                if shared_wheel is not None:
                    plan = make_plan(shared_wheel[2], packages, options.base_image,
                                     options.prefix, options.tag, checked.dockerfiles,
                                     checked.git, options.extras, options.only,
                                     options.more_tags)
                    shared_lock = None if options.refresh else shared.fetch_lock(
                        builder.lock_key(builder_name, shared_wheel[2], plan.extras,
                                         constraints))
                reporter.say("    " + shared_wheels.describe(shared, shared_wheel, shared_lock))
        if shared_lock is not None:  # every wheel is there: no builder image is needed
            builder_image, wheel_image = builder_name, base.id
        else:
            with reporter.step("Builder image (%s)" % " ".join(builder_packages)):
                builder_image = wheel_image = builder.image(
                    base, options.base_image, manager, builder_packages, constraints,
                    run.container_name("builder"))

        with reporter.step("Wheels of the project and its dependencies"):
            project_wheel = builder.project_wheel(
                builder_image, run.volume, run.id, source.data, source.digest, constraints,
                run.container_name("wheels"), kept, checked.build_requires, checked.backend,
                shared_wheel[:2] if shared_wheel else None, wheel_image)
            plan = plan or make_plan(project_wheel.metadata, packages, options.base_image,
                                     options.prefix, options.tag, checked.dockerfiles,
                                     checked.git, options.extras, options.only,
                                     options.more_tags)
            wheels = builder.dependency_wheels(project_wheel, plan.extras, shared_lock)
            reporter.say("    %s %s, %d dependencies, extras: %s" % (
                plan.project, plan.version or "", len(wheels.lock.requirements),
                ", ".join(plan.extras) or "none"))
        for note in plan.notes:
            reporter.note(note)

        with reporter.step("Runtime packages image (%s)" % " ".join(plan.runtime_packages)):
            runtime_image, ready = alongside.result(reporter)
            reporter.say("    made alongside the builder, in %.1fs" % alongside.seconds)
            remove_superseded(engine, reporter, options.base_image, base.id,
                              (builder_image, runtime_image) if wheel_image == builder_image
                              else (runtime_image,))

        ours = {image.name: labels_module.oci_labels(
            image.script or plan.project, plan.version, *origin, checked.created,
            options.base_image, base.digest) for image in plan.images}
        labels = {name: labels_module.with_given(image_labels, options.labels)
                  for name, image_labels in ours.items()}
        for key, (value, given) in labels_module.overridden(
                ours[plan.base.name], options.labels).items():
            reporter.note("--label %s=%s replaces the label build-images sets (%s)."
                          % (key, given, value))
        images = build_images(engine, reporter, run, runtime, sboms, plan, base, wheels,
                              runtime_image, ready, labels,
                              ImageSettings(project_dir, options.user, options.uid,
                                            dict(options.build_args)))
        if options.smoke_test:
            smoke_test_all(engine, reporter, run, plan, images.work_tags)

        sbom_dir = options.sbom_dir or files.sbom_dir()
        with reporter.step("SBOMs (%s) into %s" % (sbom_module.FORMAT, sbom_dir)):
            sbom_paths = sbom_module.write(sbom_dir, sboms.documents)
        # All or nothing: a signal waits until every tag is set, and a failure
        # part-way puts the previous tags back.
        with interrupts.deferred():
            with reporter.step("Tag images"):
                tag_all(engine, plan.all_names(images.ids))
            succeeded = True
        recorded = record_build(records, reporter, inputs_key(base), plan, images.ids,
                                sbom_paths, sboms.documents)
        fast_rebuild.keep(fast_slot, fast_rebuild.tree_state(record_inputs(base), source,
                                                             project_dir),
                          runtime, plan, images.ids, inputs_key(base), reporter)
        if shared is not None and options.cache_to:
            with reporter.step("Write the shared cache %s" % options.cache_to):
                shared.write()
        if shared is not None:
            reporter.say("    shared cache: %s" % shared.tally.summary())
        digests = push_all(engine, reporter, list(plan.all_names(images.ids))) \
            if options.push else {}
        return result_of(engine, plan, recorded, digests,
                         shared_cache=shared.tally.to_json() if shared is not None else None)
    finally:
        with interrupts.deferred():
            wheel_container = builder.wheel_container if builder is not None else None
            if wheel_image is not None and wheel_container is not None:
                # idle since the wheel step ended: it removes the run's files at once
                run.remove_run_files(wheel_image, wheel_container)
            run.remove_containers()
            if alongside is not None:  # (what it runs is gone: it ends soon)
                alongside.stop()
                with contextlib.suppress(BuildError):  # (removed below, if it can be)
                    kept_alongside.close()
                run.remove_containers()
            run.drop_work_tags()
            if wheel_image is not None and wheel_container is None:
                run.remove_run_files(wheel_image)
            kept.close()
        if not succeeded:
            reporter.say("Build failed; no image was tagged.")
