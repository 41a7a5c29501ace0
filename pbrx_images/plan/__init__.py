"""The plan of a build: which images, with which packages and extras.

Pure code: project metadata + evaluated bindep + options in, a :class:`Plan`
out.  No Docker here; the pipeline executes a plan, tests check it.  Beside
the plan itself, what it is made of:

* ``package_manager``: apt, apk, dnf, microdnf, yum: their commands;
* ``os_release``: the target image's /etc/os-release;
* ``target_platform``: the OCI platform of the base image;
* ``lock``: the pinned requirements of a build, from pip's report;
* ``resolution``: which wheels an image's install takes, per distribution.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Collection, Mapping, Sequence

from pbrx_images.errors import BuildError
from pbrx_images.plan.names import check_prefix, check_tag, full_name
from pbrx_images.plan.package_manager import INIT_PACKAGE
from pbrx_images.project.bindep_file import DistroPackages
from pbrx_images.project.metadata import ProjectMetadata, find_extra, image_name

#: Where the runtime images keep the project's virtualenv (on PATH).
VENV = "/opt/venv"
#: What the builder of a git checkout needs beyond bindep's packages (pbr and
#: setuptools-scm read versions from git); elsewhere git could read nothing.
BUILDER_EXTRA_PACKAGES = ("git",)


#: The name ``--extra`` and ``[tool.build-images.extras]`` give the base image.
BASE_EXTRAS_KEY = "base"


@dataclass(frozen=True)
class ExtrasFor:
    """Extras the user gives one image (``--extra SCRIPT=EXTRA[,EXTRA...]`` or a setting).

    The default, when no such mapping names an image, is pbrx's convention:
    the extra named as the script (``{project}_base`` for the base image).
    """

    script: str  #: the console script, or :data:`BASE_EXTRAS_KEY` for the base image
    extras: tuple[str, ...]
    given_in: str  #: where, for messages: ``--extra food=d``, ``[tool.build-images.extras]``


@dataclass(frozen=True)
class ImagePlan:
    """One image the build produces."""

    name: str  #: full name with tag, e.g. ``registry/org/foo-api:latest``
    script: str | None  #: the console script; None for the base image
    #: the extras installed in this image, spelled by the project and joined as in a
    #: requirement (``d``, ``cli,d``); None for none
    extra: str | None
    dockerfile: str | None = None  #: ``Dockerfile.{script}`` that replaces the default
    #: where the extras came from, for the dry run (``--extra food=d``, "its name")
    extra_from: str = field(default="", compare=False)

    @property
    def cmd(self) -> tuple[str, ...] | None:
        return (self.script,) if self.script else None


@dataclass(frozen=True)
class Plan:
    """Everything the engine layer needs to build a project's images."""

    project: str
    version: str | None
    base_image: str
    packages: DistroPackages
    images: tuple[ImagePlan, ...]
    notes: tuple[str, ...] = field(default=())
    git: bool = True  #: the project is a git checkout: the builder gets git
    #: tags every image gets besides its name's (``-t a -t b``: ``b``)
    more_tags: tuple[str, ...] = ()

    @property
    def base(self) -> ImagePlan:
        return self.images[0]

    def names(self, image: ImagePlan) -> tuple[str, ...]:
        """Every name of ``image``: its own, then one per tag of :attr:`more_tags`."""
        repository = image.name.rpartition(":")[0]
        return (image.name,) + tuple("%s:%s" % (repository, tag) for tag in self.more_tags)

    def all_names(self, ids: Mapping[str, str]) -> dict[str, str]:
        """Every name of every image -> its ID, from ``ids`` by :attr:`ImagePlan.name`."""
        return {name: ids[image.name] for image in self.images for name in self.names(image)}

    @property
    def scripts(self) -> tuple[ImagePlan, ...]:
        return self.images[1:]

    @property
    def builder_packages(self) -> tuple[str, ...]:
        return builder_packages(self.packages, self.git)

    @property
    def runtime_packages(self) -> tuple[str, ...]:
        return runtime_packages(self.packages)

    @property
    def extras(self) -> tuple[str, ...]:
        """Every extra some image installs: wheels are built for all of them."""
        return _unique(tuple(extra for image in self.images if image.extra
                             for extra in image.extra.split(",")))


def builder_packages(packages: DistroPackages, git: bool) -> tuple[str, ...]:
    """The builder image's packages: bindep's compile and runtime ones, git for a checkout.

    They depend on bindep and the base image only, not on the project's
    metadata: the builder image is made before the project's wheel is built.
    """
    return _unique(packages.builder + (BUILDER_EXTRA_PACKAGES if git else ()))


def runtime_packages(packages: DistroPackages) -> tuple[str, ...]:
    """The runtime-packages image's packages: bindep's runtime ones and the init."""
    return _unique(packages.runtime + (INIT_PACKAGE,))


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def make_plan(metadata: ProjectMetadata, packages: DistroPackages, base_image: str,
              prefix: str | None = None, tag: str = "latest",
              dockerfiles: Collection[str] = (), git: bool = True,
              extras_for: Sequence[ExtrasFor] = (), only: Collection[str] = (),
              more_tags: Sequence[str] = ()) -> Plan:
    """The images to build for a project whose metadata is complete.

    ``dockerfiles`` lists the ``Dockerfile.{script}`` files found in the
    project root; ``git`` says whether the project is a git checkout;
    ``extras_for`` maps images to extras of other names (the last for an
    image wins); ``only`` (``--only``), when given, names the console
    scripts whose images are built, besides the base image; ``more_tags``
    are tags every image gets besides ``tag``.
    """
    if not metadata.name:
        raise BuildError("The project's metadata has no name: set one in pyproject.toml "
                         "([project] name) or setup.cfg ([metadata] name).")
    tag = check_tag(tag)
    more_tags = tuple(dict.fromkeys(check_tag(more) for more in more_tags if more != tag))
    prefix = check_prefix(prefix)
    extras = metadata.extras or ()
    scripts = metadata.console_scripts or ()
    given = check_extras(metadata, extras_for)
    notes = []
    if only:
        check_only(metadata, only)
        left_out = [script for script in scripts if script not in only]
        scripts = tuple(script for script in scripts if script in only)
        if left_out:
            notes.append("Only %s of the console scripts (--only): %s %s not built."
                         % (", ".join(scripts), ", ".join(left_out),
                            "is" if len(left_out) == 1 else "are"))
    known = metadata.extras is not None
    base_extra, base_from = _image_extras(given.get(BASE_EXTRAS_KEY), extras,
                                          metadata.name + "_base", "the base image", known)
    images = [ImagePlan(full_name(prefix, image_name(metadata.name) + "-base", tag),
                        None, base_extra, extra_from=base_from)]
    seen = {images[0].name: "the base image"}
    for script in scripts:
        dockerfile = "Dockerfile." + script
        extra, extra_from = _image_extras(given.get(script), extras, script,
                                          _image_words(script), known)
        image = ImagePlan(full_name(prefix, image_name(script), tag), script, extra,
                          dockerfile if dockerfile in dockerfiles else None,
                          extra_from=extra_from)
        if image.name in seen:
            raise BuildError("The console script %r and %s would both be the image %s: rename "
                             "one of them." % (script, seen[image.name], image.name))
        seen[image.name] = "the console script %r" % script
        images.append(image)
    if not scripts and not only:
        notes.append("The project has no console scripts, so only the base image is built.")
    return Plan(project=metadata.name, version=metadata.version, base_image=base_image,
                packages=packages, images=tuple(images), notes=tuple(notes), git=git,
                more_tags=more_tags)


def check_extras(metadata: ProjectMetadata, extras_for: Sequence[ExtrasFor]
                 ) -> dict[str, ExtrasFor]:
    """The mappings by image; BuildError for a script or an extra the project lacks.

    What the metadata does not know yet (scripts or extras a backend decides
    when it builds the wheel) is not checked: :func:`make_plan` checks it
    with the wheel's metadata.
    """
    given = {mapping.script: mapping for mapping in extras_for}
    scripts = metadata.console_scripts or ()
    unknown = [name for name in given if name != BASE_EXTRAS_KEY and name not in scripts]
    if unknown and metadata.console_scripts is not None:
        mapping = given[unknown[0]]
        raise BuildError(
            "%s names %r, which is not a console script of %s (its scripts: %s; %r is the "
            "base image): fix the name."
            % (mapping.given_in, mapping.script, metadata.name,
               ", ".join(sorted(scripts)) or "none", BASE_EXTRAS_KEY))
    if metadata.extras is not None:
        for name, mapping in given.items():
            _image_extras(mapping, metadata.extras, name, _image_words(name))
    return given


def check_only(metadata: ProjectMetadata, only: Collection[str]) -> None:
    """BuildError when ``--only`` names a script the project lacks (once its scripts are known)."""
    scripts = metadata.console_scripts or ()
    missing = [name for name in only if name not in scripts]
    if missing and metadata.console_scripts is not None:
        raise BuildError("--only names %s, which %s not a console script of %s (its "
                         "scripts: %s): fix the name." % (
                             ", ".join(repr(name) for name in missing),
                             "is" if len(missing) == 1 else "are", metadata.name,
                             ", ".join(sorted(scripts)) or "none"))


def _image_words(name: str) -> str:
    return "the base image" if name == BASE_EXTRAS_KEY else "the script %r" % name


def _image_extras(mapping: ExtrasFor | None, extras: Sequence[str], default: str,
                  image: str, known: bool = True) -> tuple[str | None, str]:
    """An image's extras as a requirement spells them, and where they came from.

    Without a mapping, the extra named ``default`` if the project has one.
    A mapped extra the project does not define is an error that lists the
    project's extras (unless they are not ``known`` yet: taken as given).
    """
    if mapping is None:
        found = find_extra(extras, default)
        return found, ("its name" if found else "")
    spelled = []
    for wanted in mapping.extras:
        found = find_extra(extras, wanted) if known else wanted
        if found is None:
            raise BuildError("%s gives %s the extra %r, which the project does not define "
                             "(its extras: %s): fix the mapping."
                             % (mapping.given_in, image, wanted,
                                ", ".join(sorted(extras)) or "none"))
        spelled.append(found)
    return ",".join(_unique(tuple(spelled))) or None, mapping.given_in


def describe_plan(plan: Plan, base_description: str, entrypoint: Sequence[str],
                  base_cmd: Sequence[str] | None, complete: bool = True) -> list[str]:
    """The plan as lines of text for a person (``build-images --dry-run``).

    ``complete`` is False when the console scripts or extras are only known
    once the project's wheel is built (dynamic metadata, setup.py).
    """
    selected_by = plan.packages.selected_by

    def package_lines(names: Sequence[str]) -> list[str]:
        if not names:
            return ["    (none)"]
        return ["    %-28s %s" % (name, selected_by.get(name) or "(no selector)")
                for name in names]

    lines = ["Plan for %s %s" % (plan.project, plan.version or "(version set by the build)"),
             "Base image: %s (%s)" % (plan.base_image, base_description),
             "bindep platform profiles: %s" % " ".join(plan.packages.platform),
             "Compile packages (builder only):"]
    lines += package_lines(plan.packages.compile)
    lines.append("Runtime packages (runtime images and builder):")
    lines += package_lines(plan.packages.runtime)
    lines.append("Also installed: %s%s in runtime images (the init)" % (
        "%s in the builder (pbr reads versions from git), " % " ".join(BUILDER_EXTRA_PACKAGES)
        if plan.git else "", INIT_PACKAGE))
    lines.append("Images:")
    base_cmd_json = json.dumps(list(base_cmd or ("/bin/sh",)))
    for image in plan.images:
        lines.append("  %s" % image.name)
        spelled = image.extra.replace(",", ", ") if image.extra else "none"
        given = " (%s)" % image.extra_from if image.extra_from else ""
        lines.append("    extras: %s%s" % (spelled, given))
        if image.dockerfile:
            lines.append("    built from %s with BASE_IMAGE=%s"
                         % (image.dockerfile, plan.base.name))
            continue
        cmd = json.dumps(list(image.cmd)) if image.cmd else base_cmd_json
        lines.append("    ENTRYPOINT %s  CMD %s" % (json.dumps(list(entrypoint)), cmd))
        if image.script is None:
            lines.append("    layers: those of %s; runtime packages, %s and an empty "
                         "virtualenv %s (cached); one per distribution installed into it "
                         "(the project%s), the project's on top"
                         % (plan.base_image, INIT_PACKAGE, VENV,
                            " with its extra" if image.extra else ""))
        elif image.extra:
            lines.append("    layers: those of %s; one per distribution its extra adds"
                         % plan.base.name)
        else:
            lines.append("    layers: those of %s (only CMD differs)" % plan.base.name)
    if not complete:
        lines.append("Note: the project's console scripts or extras are only known once its "
                     "wheel is built; the build may add images or extras.")
    lines.extend("Note: " + note for note in plan.notes)
    return lines
