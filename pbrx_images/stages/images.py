"""The project's images, each loaded under a work tag: ``{project}-base``, then one per script.

The base image is the runtime-packages image plus the project and its
dependencies (:meth:`Runtime.install`, on the container started alongside
the builder).  A script's image is then, by what the project asks:

* a build of its ``Dockerfile.{script}`` ``FROM`` the base image, given its
  SBOM label afterwards (the Dockerfile may change anything);
* the base image plus the distributions of its extra;
* or the base image's layers with the script as ``CMD``: a new
  configuration, no layer.

Nothing here is tagged with a real name: :func:`pbrx_images.stages.finish.tag_all`
does that once every image is built, from what :func:`build_images` returns.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from pbrx_images.engine import Container, Engine, ImageInfo
from pbrx_images.engine.run import Run
from pbrx_images.plan import Plan
from pbrx_images.plan.package_manager import PackageManager
from pbrx_images.plan.runtime_image import base_entrypoint
from pbrx_images.plan.wheel_volume import WHEELS, WheelBuild
from pbrx_images.project.metadata import image_name
from pbrx_images.stages.alongside import Alongside
from pbrx_images.stages.runtime import Runtime
from pbrx_images.stages.sbom import Collection
from pbrx_images.ui.output import Reporter


def runtime_packages_alongside(
        runtime: Runtime, sboms: Collection, run: Run, base: ImageInfo, base_name: str,
        manager: PackageManager, packages: tuple[str, ...],
        kept: contextlib.ExitStack) -> Alongside[tuple[str, Container]]:
    """The runtime-packages image, made on a thread of its own while the builder works.

    It needs only the base image and bindep.  Its result is the image's name
    and a running container of it with the wheel volume mounted read-only
    at ``WHEELS``: the base image's install starts there at once rather than
    after a container start.  ``kept`` holds that container until the caller
    closes it.  (The containers are named here, on the caller's thread.)
    """
    runtime_container, base_container = run.container_name("runtime"), run.container_name("base")

    def work(engine: Engine, reporter: Reporter) -> tuple[str, Container]:
        name = runtime.on(engine, reporter).packages_image(
            base, base_name, manager, packages, runtime_container)
        sboms.read_runtime(name, engine)
        return name, kept.enter_context(engine.container(
            name, base_container, {WHEELS: (run.volume, True)}))
    return Alongside(runtime.engine, work)


@dataclass
class Images:
    """What :func:`build_images` made, by each image's final name, in the plan's order."""

    ids: dict[str, str] = field(default_factory=dict)  #: final name -> image ID
    work_tags: dict[str, str] = field(default_factory=dict)  #: final name -> work tag


@dataclass(frozen=True)
class ImageSettings:
    """The options that shape every image of the build."""

    project_dir: Path  #: where a script's ``Dockerfile.{script}`` is built from
    user: str | None = None  #: ``--user``: the images run as this user
    uid: int | None = None  #: ``--uid``: its UID, when the base image lacks it
    #: ``--build-arg``: of each ``Dockerfile.{script}`` build, beside ``BASE_IMAGE``
    build_args: Mapping[str, str] = field(default_factory=dict)


def build_images(engine: Engine, reporter: Reporter, run: Run, runtime: Runtime,
                 sboms: Collection, plan: Plan, base: ImageInfo, wheels: WheelBuild,
                 runtime_image: str, ready: Container,
                 labels: Mapping[str, Mapping[str, str]], settings: ImageSettings) -> Images:
    """Build every image of ``plan``, one step each, on ``runtime_image``.

    ``ready`` is the running container of ``runtime_image`` (started
    alongside the builder, :func:`runtime_packages_alongside`) that the base
    image's install uses; ``labels`` are each image's OCI labels by final name.
    """
    images = Images()
    with reporter.step("Image %s" % plan.base.name):
        base_work = images.work_tags[plan.base.name] = run.work_tag("base")
        images.ids[plan.base.name] = runtime.install(
            runtime_image, base, plan.base, wheels, base_work, ready.name,
            base_entrypoint(), base.cmd or ("/bin/sh",), labels[plan.base.name],
            settings.user, settings.uid, sboms.collector(plan.base.name),
            ready=ready.on(engine))
    for image in plan.scripts:
        with reporter.step("Image %s" % image.name):
            work = images.work_tags[image.name] = run.work_tag(image_name(image.script or ""))
            if image.dockerfile:
                unlabelled = run.work_tag(image_name(image.script or "") + "-dockerfile")
                engine.build(str(settings.project_dir), image.dockerfile, unlabelled,
                             {**settings.build_args, "BASE_IMAGE": base_work},
                             labels[image.name])
                images.ids[image.name] = sboms.labelled(image.name, unlabelled, work)
            elif image.extra:
                images.ids[image.name] = runtime.install(
                    base_work, base, image, wheels, work, run.container_name("script"),
                    base_entrypoint(), image.cmd, labels[image.name], settings.user,
                    finished=sboms.collector(image.name))
            else:  # the base image's files: its SBOM's contents, under this name
                images.ids[image.name] = runtime.configure(
                    base_work, image, work, image.cmd,
                    {**labels[image.name],
                     **sboms.label(image.name, sboms.contents[plan.base.name])})
    return images
