"""bindep's platform profiles of an image, from the image's ``/etc/os-release``.

bindep asks the machine it runs on (the ``distro`` and ``platform``
modules) which platform it is.  :func:`platform_profiles` gives bindep's
own answer for the *image* instead: for the duration of the call, those two
names in ``bindep.depends`` are replaced by stand-ins that read only a
temporary copy of the image's files.  Nothing is read from the host's
``/etc``.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Any

from pbrx_images import interrupts
from pbrx_images.errors import BuildError

if TYPE_CHECKING:  # bindep is imported when it is needed: it compiles a grammar on import
    import distro
    from bindep.depends import Depends

# Serialises the temporary substitution of bindep.depends' module globals.
_SUBSTITUTION_LOCK = threading.Lock()


def depends_of(rules: list, filename: str | None) -> Depends:
    """A :class:`Depends` holding *rules* as bindep parsed them, without parsing again."""
    from bindep.depends import Depends

    depends = Depends.__new__(Depends)
    depends.filename = filename
    depends._rules = rules
    return depends


class _ImageDistro:
    """Stands in for the ``distro`` module inside ``bindep.depends``.

    Answers the four functions bindep calls from a
    :class:`distro.LinuxDistribution` that only reads the given files.
    """

    def __init__(self, info: distro.LinuxDistribution) -> None:
        self._info = info

    def id(self) -> str:
        return self._info.id()

    def codename(self) -> str:
        return self._info.codename()

    def version(self, pretty: bool = False, best: bool = False) -> str:
        return self._info.version(pretty, best)

    def name(self, pretty: bool = False) -> str:
        return self._info.name(pretty)


class _LinuxPlatform:
    """Stands in for the ``platform`` module inside ``bindep.depends``.

    bindep checks for macOS before looking at distro information; the image
    is always Linux, whatever the host is.
    """

    @staticmethod
    def system() -> str:
        return "Linux"


def _image_distribution(root: str) -> distro.LinuxDistribution:
    """A LinuxDistribution reading only ``<root>/etc`` files, no commands.

    ``root_dir`` matters even though the os-release path is given: distro
    reads ``<etc>/debian_version`` for Debian-like systems whose os-release
    lacks VERSION_ID (testing, unstable), which must not be the host's file.
    """
    kwargs: dict[str, Any] = dict(
        include_lsb=False,
        include_uname=False,
        os_release_file=os.path.join(root, "etc", "os-release"),
        # A file name that does not exist and does not look like a
        # "<id>-release" file, so distro derives nothing from it.
        distro_release_file=os.path.join(root, "etc", "no-such-file"),
        root_dir=root,
    )
    import distro

    try:
        return distro.LinuxDistribution(include_oslevel=False, **kwargs)
    except TypeError:  # distro < 1.7 has no include_oslevel / root_dir
        del kwargs["root_dir"]
        return distro.LinuxDistribution(**kwargs)


def platform_profiles(os_release_text: str, *,
                      debian_version_text: str | None = None) -> list[str]:
    """Return the profiles bindep would detect inside the target image.

    The result is exactly what :meth:`Depends.platform_profiles` returns when
    bindep runs in an image whose ``/etc/os-release`` is *os_release_text*
    (e.g. ``["platform:debian", "platform:debian-12", ...,
    "platform:dpkg"]``).  bindep's own code computes it: for the duration of
    the call, the ``distro`` and ``platform`` names in ``bindep.depends`` are
    replaced by stand-ins that read only a temporary copy of the given text.
    Nothing is read from the host's ``/etc``.

    *debian_version_text* is the image's ``/etc/debian_version``, if known;
    bindep (through distro) only uses it when os-release has no VERSION_ID.

    Raises :class:`BuildError` if the text has no usable ``ID``.
    """
    with interrupts.temporary_directory("pbrx-images-os-release-") as root:
        etc = os.path.join(root, "etc")
        os.mkdir(etc)
        with open(os.path.join(etc, "os-release"), "w", encoding="utf-8") as f:
            f.write(os_release_text)
        if debian_version_text is not None:
            with open(os.path.join(etc, "debian_version"), "w",
                      encoding="ascii", errors="replace") as f:
                f.write(debian_version_text)
        info = _image_distribution(root)
        try:
            distro_id = info.id()
        except (OSError, UnicodeError, ValueError):
            distro_id = ""
        if not distro_id:
            raise BuildError(
                "The base image has no usable /etc/os-release (no ID= line), "
                "so bindep platform profiles cannot be determined; use a base "
                "image with a standard /etc/os-release."
            )
        try:
            return _bindep_platform_profiles(_ImageDistro(info))
        except Exception as error:
            raise BuildError(
                f"bindep could not determine the platform of the base image "
                f"({type(error).__name__}: {error}); check the image's "
                f"/etc/os-release (ID={distro_id!r}, "
                f"VERSION_ID={info.version()!r})."
            ) from error


@functools.lru_cache(maxsize=None)
def _profiles_depends() -> Depends:
    """An empty Depends used only to call ``platform_profiles`` on.

    Made without parsing: ``Depends("")`` would compile bindep's grammar (a
    quarter of a second) for no rule.  ``platform_profiles`` also stores a
    ``platform`` attribute naming the package tool; on this private instance
    nobody reads it.
    """
    return depends_of([], None)


def _bindep_platform_profiles(image_distro: _ImageDistro) -> list[str]:
    """Run bindep's ``Depends.platform_profiles`` against *image_distro*.

    This is the one place bindep's module globals are substituted; the lock
    keeps concurrent callers from seeing each other's stand-ins and the
    originals are always restored.
    """
    import bindep.depends

    with _SUBSTITUTION_LOCK:
        saved_distro = bindep.depends.distro
        saved_platform = bindep.depends.platform
        bindep.depends.distro = image_distro
        bindep.depends.platform = _LinuxPlatform()
        try:
            return _profiles_depends().platform_profiles()
        finally:
            bindep.depends.distro = saved_distro
            bindep.depends.platform = saved_platform
