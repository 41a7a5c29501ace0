"""The target platform of a build (``--platform linux/arm64``): parsed and checked.

Names follow the OCI image index (``os/architecture[/variant]``, GOARCH
spellings), so the kernel's and distributions' names are accepted and
normalised: ``x86_64`` is ``amd64``, ``aarch64`` is ``arm64``, ``armhf`` is
``arm/v7``.  A base image the engine lacks is pulled for the requested
platform; one it has must be of that platform (the check runs before any
container does).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pbrx_images.errors import BuildError, ProjectError

#: Other names of an architecture -> (GOARCH, default variant or "").
_ARCHITECTURES = {
    "amd64": ("amd64", ""), "x86_64": ("amd64", ""), "x86-64": ("amd64", ""),
    "x64": ("amd64", ""),
    "arm64": ("arm64", ""), "aarch64": ("arm64", ""), "armv8": ("arm64", ""),
    "arm": ("arm", "v7"), "armhf": ("arm", "v7"), "armv7": ("arm", "v7"),
    "armv7l": ("arm", "v7"), "armel": ("arm", "v6"), "armv6": ("arm", "v6"),
    "armv6l": ("arm", "v6"), "armv5": ("arm", "v5"),
    "386": ("386", ""), "i386": ("386", ""), "i686": ("386", ""), "x86": ("386", ""),
    "ppc64le": ("ppc64le", ""), "ppc64el": ("ppc64le", ""),
    "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
    "mips64le": ("mips64le", ""), "mips64el": ("mips64le", ""),
    "loong64": ("loong64", ""), "loongarch64": ("loong64", ""),
}
#: Variants each architecture may have; the first of amd64's and arm64's is
#: what no variant means, so it is left out.
_VARIANTS = {"arm": ("v5", "v6", "v7"), "arm64": ("v8",), "amd64": ("v1", "v2", "v3", "v4")}
_EXAMPLE = "e.g. --platform linux/amd64, linux/arm64 or linux/arm/v7"


@dataclass(frozen=True)
class Platform:
    """``os/architecture[/variant]``, normalised."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


def parse(text: str) -> Platform:
    """``linux/arm64``, ``linux/aarch64``, ``arm64``, ``linux/arm/v7``... as a Platform."""
    parts = text.strip().lower().split("/")
    if len(parts) == 1 and parts[0] in _ARCHITECTURES:
        parts = ["linux"] + parts
    if not 2 <= len(parts) <= 3 or not all(re.fullmatch(r"[a-z0-9_.-]+", p) for p in parts):
        raise ProjectError("--platform %r is not OS/ARCHITECTURE[/VARIANT] (%s)."
                           % (text, _EXAMPLE))
    os_name, architecture, variant = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    if architecture == "linux" and os_name in _ARCHITECTURES:
        raise ProjectError("--platform %r: the OS comes first, as in --platform linux/%s."
                           % (text, os_name))
    if os_name != "linux":
        raise ProjectError("--platform %r: build-images only makes Linux images; give a "
                           "linux/ platform (%s)." % (text, _EXAMPLE))
    if architecture not in _ARCHITECTURES:
        raise ProjectError("--platform %r: unknown architecture %r; known ones are %s."
                           % (text, architecture, ", ".join(sorted(set(
                               goarch for goarch, _ in _ARCHITECTURES.values())))))
    goarch, default_variant = _ARCHITECTURES[architecture]
    if variant and default_variant and architecture != goarch and variant != default_variant:
        raise ProjectError("--platform %r: %s is %s, not variant %s; give one or the other."
                           % (text, architecture, default_variant, variant))
    variant = variant or default_variant
    if variant and variant not in _VARIANTS.get(goarch, ()):
        raise ProjectError("--platform %r: %s has no variant %r (%s)."
                           % (text, goarch, variant, "its variants are "
                              + ", ".join(_VARIANTS[goarch]) if goarch in _VARIANTS
                              else "it has none"))
    return Platform(os_name, goarch, _implied(goarch, variant))


def of_image(os_name: str, architecture: str, variant: str = "") -> Platform:
    """The platform an image's configuration names (fields as the engine reports them)."""
    goarch, default_variant = _ARCHITECTURES.get(architecture.lower(),
                                                 (architecture.lower(), ""))
    return Platform((os_name or "linux").lower(), goarch,
                    _implied(goarch, (variant or default_variant).lower()))


def _implied(architecture: str, variant: str) -> str:
    """The variant, or "" where it is what no variant means (arm64/v8, amd64/v1)."""
    return "" if architecture in ("amd64", "arm64") and variant == _VARIANTS[architecture][0] \
        else variant


def check_base(requested: Platform, base: Platform, image: str) -> None:
    """Fail, in one sentence, unless the base image is of the requested platform."""
    if base != requested:
        raise BuildError(
            "The base image %s is for %s, not %s as --platform asks: name one built for %s "
            "with --base-image, or pull that platform's variant of a multi-platform image "
            "first (docker pull --platform %s %s)."
            % (image, base, requested, requested, requested, image))


def emulation_missing(platform: str, detail: str) -> BuildError:
    """The error for a container the engine could not run (exec format error)."""
    return BuildError(
        "The engine cannot run %s containers (%s): running another architecture needs "
        "emulation, qemu-user-static with binfmt_misc, on the engine's machine (on Debian: "
        "apt-get install qemu-user-static binfmt-support), or build on a machine of that "
        "architecture." % (platform, detail.strip().rstrip(".")))
