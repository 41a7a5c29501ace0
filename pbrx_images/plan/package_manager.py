"""The package manager of a target image: install commands and their errors.

A :class:`PackageManager` produces the shell command that installs a
project's distro packages in one image layer, leaving no package indexes or
caches behind, and recognises the error output in which the manager says a
package does not exist in the distro.  :data:`DETECT_SCRIPT` finds out which
manager an image has; :meth:`PackageManager.query_command` lists what an
image has installed (for its SBOM, :mod:`pbrx_images.stages.sbom`).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from typing import Sequence

MANAGERS = ("apt", "apk", "dnf", "microdnf", "yum")

# The init process put in the final image.  Debian/Ubuntu, Alpine and
# Fedora/EPEL all ship a package of this name installing this path.
INIT_PACKAGE = "dumb-init"
INIT_PATH = "/usr/bin/dumb-init"

# Prints the name of the first package manager found (apt-get is reported
# as "apt"), or nothing.  Plain POSIX sh, so it also works with busybox.
DETECT_SCRIPT = """\
if command -v apt-get >/dev/null 2>&1; then echo apt
elif command -v apk >/dev/null 2>&1; then echo apk
elif command -v microdnf >/dev/null 2>&1; then echo microdnf
elif command -v dnf >/dev/null 2>&1; then echo dnf
elif command -v yum >/dev/null 2>&1; then echo yum
fi
"""

_RPM_CACHE_DIRS = "/var/cache/dnf /var/cache/yum /var/cache/libdnf5"

# Options after "<manager> install -y": no weak dependencies, no docs.
# yum 3 (EL7) knows neither install_weak_deps nor --nodocs, but the
# tsflags setting works for every yum.
_RPM_INSTALL_OPTIONS = {
    "dnf": "--setopt=install_weak_deps=0 --nodocs",
    "microdnf": "--setopt=install_weak_deps=0 --nodocs",
    "yum": "--setopt=tsflags=nodocs",
}

# Regular expressions whose first group is one missing package name, or
# (for _RPM_MISSING_LISTS) a space-separated list of them.
# apt writes errors to stderr and progress ("Building dependency tree...")
# to stdout without a newline first: an error may come mid-line.
_APT_MISSING = (
    re.compile(r"\bE: Unable to locate package (\S+)"),
    re.compile(r"\bE: Package '([^']+)' has no installation candidate"),
    re.compile(r"\bE: Couldn't find any package by (?:glob|regex) '([^']+)'"),
)
_APK_MISSING = (
    re.compile(r"^\s+(\S+) \(no such package\):", re.MULTILINE),
)
_RPM_MISSING = (
    re.compile(r"No match for argument: (\S+)"),
    re.compile(r"error: No package matches '([^']+)'"),
    re.compile(r"^No package (\S+) available\.", re.MULTILINE),  # yum 3
)
_RPM_MISSING_LISTS = (
    re.compile(r"Error: Unable to find a match: ([^\n]+)"),
)

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclasses.dataclass(frozen=True)
class PackageManager:
    """One of the package managers in :data:`MANAGERS`, by ``name``."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in MANAGERS:
            raise ValueError(
                f"unknown package manager {self.name!r}; expected one of "
                f"{', '.join(MANAGERS)}")

    def install_command(self, packages: Sequence[str]) -> str:
        """One sh command line installing exactly *packages*.

        It refreshes the package indexes, installs non-interactively without
        recommended packages or documentation where the manager can, and
        removes indexes and caches again so the layer holds none.  With no
        packages it is ``true``.
        """
        if not packages:
            return "true"
        for package in packages:
            if not package or package.startswith("-"):
                raise ValueError(f"not a package name: {package!r}")
        names = " ".join(shlex.quote(package) for package in packages)
        if self.name == "apt":
            return (
                "apt-get update"
                " && DEBIAN_FRONTEND=noninteractive apt-get install -y"
                f" --no-install-recommends {names}"
                " && apt-get clean"
                " && rm -rf /var/lib/apt/lists/*"
            )
        if self.name == "apk":
            # --no-cache fetches fresh indexes and keeps neither them nor
            # the downloaded packages.
            return f"apk add --no-cache {names}"
        options = _RPM_INSTALL_OPTIONS[self.name]
        return (
            f"{self.name} install -y {options} {names}"
            f" && {self.name} clean all"
            f" && rm -rf {_RPM_CACHE_DIRS}"
        )

    @property
    def purl_type(self) -> str:
        """The package URL type of this manager's packages: deb, apk or rpm."""
        return {"apt": "deb", "apk": "apk"}.get(self.name, "rpm")

    def query_command(self) -> str:
        """A read-only sh command that lists the installed packages.

        apt: one line per package known to dpkg, ``STATUS\tNAME\tVERSION\tARCH``
        (``STATUS`` as dpkg's three-letter abbreviation, ``ii`` when installed).
        apk: the package database ``/lib/apk/db/installed`` itself (its ``P:``,
        ``V:`` and ``A:`` lines are name, version and architecture; a blank line
        ends a package), which, unlike ``apk info -v``, keeps name and version
        apart.  rpm managers: ``NAME\tEPOCH\tVERSION-RELEASE\tARCH`` with
        ``(none)`` for no epoch.  :func:`pbrx_images.stages.sbom.parse_packages` reads
        these outputs.
        """
        if self.name == "apt":
            return ("dpkg-query -W -f='${db:Status-Abbrev}\\t${Package}\\t${Version}"
                    "\\t${Architecture}\\n'")
        if self.name == "apk":
            return "cat /lib/apk/db/installed"
        return "rpm -qa --qf '%{NAME}\\t%{EPOCH}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\n'"

    def missing_packages(self, output: str) -> list[str]:
        """Packages that *output* (of a failed install) says do not exist.

        Returns names in the order they first appear, without duplicates;
        an empty list if the failure had another cause.
        """
        output = _ANSI_ESCAPE.sub("", output)
        found: list[str] = []
        patterns: tuple[re.Pattern[str], ...]
        list_patterns: tuple[re.Pattern[str], ...]
        if self.name == "apt":
            patterns, list_patterns = _APT_MISSING, ()
        elif self.name == "apk":
            patterns, list_patterns = _APK_MISSING, ()
        else:
            patterns, list_patterns = _RPM_MISSING, _RPM_MISSING_LISTS
        matches: list[tuple[int, list[str]]] = []
        for pattern in patterns:
            matches.extend((m.start(), [m.group(1)]) for m in pattern.finditer(output))
        for pattern in list_patterns:
            matches.extend((m.start(), m.group(1).split())
                           for m in pattern.finditer(output))
        for _position, names in sorted(matches, key=lambda match: match[0]):
            found.extend(names)
        return list(dict.fromkeys(found))


def from_detect_output(text: str) -> PackageManager | None:
    """The manager named by the output of :data:`DETECT_SCRIPT`, if any.

    The last non-blank line counts, so noise printed before it is ignored.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[-1] in MANAGERS:
        return PackageManager(lines[-1])
    return None
