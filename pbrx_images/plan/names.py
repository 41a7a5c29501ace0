"""Image names: tags, prefixes, full names, and the registry a name says it lives in.

Pure code.  Names are checked before anything is built, the way Docker reads
them (github.com/distribution/reference), so that a bad tag or prefix, or a
push that would go to Docker Hub by accident, is an error at once.
"""
from __future__ import annotations

import re

from pbrx_images.errors import BuildError

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# An image name prefix, as Docker's reference grammar has it (github.com/
# distribution/reference), in lower case: a registry host (with an optional
# port) or a path component, then more path components.  Path components
# separate their letters and digits with one "." or "_", "__", or dashes.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_COMPONENT = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_PREFIX = re.compile(r"(?:%s(?:\.%s)*(?::[0-9]+)?|%s)(?:/%s)*" % (
    _HOST_COMPONENT, _HOST_COMPONENT, _PATH_COMPONENT, _PATH_COMPONENT))

#: How Docker names Docker Hub when a name spells it out.
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")


def registry_of(name: str) -> str | None:
    """The registry host (with its port) in an image name; None if the name has none.

    Docker's rule (github.com/distribution/reference): the first component
    of a name with a ``/`` is a registry host when it has a ``.`` or a
    ``:``, or is ``localhost``; any other name is on Docker Hub without
    saying so.  ``docker.io/...`` names Docker Hub explicitly.
    """
    first, slash, _ = name.partition("/")
    if not slash:
        return None
    if "." in first or ":" in first or first == "localhost" or first != first.lower():
        return DOCKER_HUB if first in _DOCKER_HUB_ALIASES else first
    return None


def check_push_target(name: str) -> str:
    """The registry ``name`` would be pushed to; a BuildError if that is Docker Hub by default.

    Pushing to Docker Hub only because a prefix was forgotten would publish
    the images to the world, so a name must name its registry; Docker Hub is
    fine when spelt out (``--prefix docker.io/NAMESPACE``).
    """
    registry = registry_of(name)
    if registry is None:
        raise BuildError(
            "--push would send %s to Docker Hub, because its name has no registry host: give "
            "a prefix that starts with your registry (e.g. --prefix "
            "registry.example.com:5000/team), or --prefix docker.io/NAMESPACE to push to "
            "Docker Hub on purpose." % name)
    return registry


def check_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise BuildError("The tag %r is not a valid image tag: use letters, digits, '_', '.' "
                         "and '-' (at most 128, not starting with '.' or '-')." % tag)
    return tag


def check_prefix(prefix: str | None) -> str | None:
    if not prefix:
        return None
    prefix = prefix.rstrip("/")
    if not _PREFIX.fullmatch(prefix):
        raise BuildError("The prefix %r is not a valid image name prefix: use a lower-case "
                         "registry and path such as 'registry.example.com:5000/team'." % prefix)
    return prefix


def full_name(prefix: str | None, name: str, tag: str) -> str:
    return "%s%s:%s" % (prefix + "/" if prefix else "", name, tag)


def check_cache_reference(reference: str, option: str) -> str:
    """``reference`` if it names a repository of a named registry; a BuildError if not.

    ``option`` (``--cache-from``, ``cache-to``) is how the message names it.
    """
    example = "give a registry repository such as registry.example.com/team/app-cache"
    if "/" in reference and ("@" in reference or ":" in reference.rpartition("/")[2]):
        raise BuildError("%s %r names a tag or digest: %s, without one (the entries are "
                         "tagged by their keys)." % (option, reference, example))
    try:
        checked = check_prefix(reference)
    except BuildError:
        checked = None
    if not checked or registry_of(checked) is None:
        raise BuildError("%s %r is not a registry repository: %s." % (
            option, reference, example))
    return checked
