"""The base image probe: its platform, distribution, package manager and packages.

Read once per image ID (kept in :class:`pbrx_images.cache.image_facts.ImageFacts`):
the platform from the engine's inspect, ``/etc/os-release`` from the image,
the package manager and a check that Python and its venv module are there
from one short container; bindep's packages for that platform.
"""
from __future__ import annotations

from dataclasses import dataclass

from pbrx_images import engine as engine_module
from pbrx_images.cache.image_facts import ImageFacts
from pbrx_images.engine import Engine, ImageInfo
from pbrx_images.engine.run import Run
from pbrx_images.errors import BuildError
from pbrx_images.plan import target_platform
from pbrx_images.plan.os_release import parse_os_release
from pbrx_images.plan.package_manager import (DETECT_SCRIPT, MANAGERS, PackageManager,
                                              from_detect_output)
from pbrx_images.project.bindep_file import BindepFile, DistroPackages


@dataclass
class BaseImage:
    """The base image, as bindep and the package manager see it."""

    info: ImageInfo
    packages: DistroPackages
    manager: PackageManager
    description: str  #: e.g. "Debian GNU/Linux 12 (bookworm), apt"


def inspect_base(engine: Engine, run: Run, name: str,
                 bindep: BindepFile, facts: ImageFacts,
                 inspected: ImageInfo | None = None) -> BaseImage:
    """The base image's platform, packages and manager; probed once per image ID.

    ``inspected``: the engine's image ``name`` when the caller just read it.
    """
    base = inspected if inspected is not None else engine.require_image(name)
    base_platform = target_platform.of_image(base.os, base.architecture, base.variant)
    if engine.platform is not None:
        target_platform.check_base(target_platform.parse(engine.platform), base_platform, name)
    known = facts.get("base", base.id)
    if isinstance(known, dict) and isinstance(known.get("os_release"), str) \
            and known.get("manager") in MANAGERS:
        text, manager = known["os_release"], PackageManager(known["manager"])
    else:
        os_release = engine.read_file(base.id, "/etc/os-release",
                                      run.container_name("os-release"))
        if os_release is None:
            os_release = engine.read_file(base.id, "/usr/lib/os-release",
                                          run.container_name("os-release"))
        if os_release is None:
            raise BuildError("The base image %s has no /etc/os-release, so bindep cannot tell "
                             "its platform: use an image of a Linux distribution." % name)
        text = os_release.decode("utf-8", "replace")
        manager = detect_manager(engine, base, name, run)
        facts.put("base", base.id, {"os_release": text, "manager": manager.name})
    packages = bindep.evaluate(text)
    release = parse_os_release(text)
    return BaseImage(base, packages, manager, "%s, %s, %s" % (
        release.get("PRETTY_NAME", release.get("ID", "?")), manager.name, base_platform))


def detect_manager(engine: Engine, image: ImageInfo, image_name_: str, run: Run
                   ) -> PackageManager:
    """The package manager of the base image, and a check that it has Python."""
    with engine.container(image.id, run.container_name("probe")) as container:
        manager = from_detect_output(container.run(DETECT_SCRIPT))
        try:
            container.run("command -v python3")
        except engine_module.CommandFailed:
            raise BuildError("The base image %s has no python3: use an image with python3 "
                             "(and its venv module) installed." % image_name_) from None
        try:
            container.run("python3 -c 'import venv'")
        except engine_module.CommandFailed:
            raise BuildError("The base image %s has python3 without its venv module: use an "
                             "image that has it (on Debian, install python3-venv)."
                             % image_name_) from None
    if manager is None:
        raise BuildError("The base image %s has no package manager build-images knows "
                         "(apt, apk, dnf, microdnf, yum): use an image based on Debian, "
                         "Ubuntu, Alpine or Fedora/RHEL." % image_name_)
    return manager
