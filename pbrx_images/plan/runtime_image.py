"""The configuration of the runtime images, and what is installed into them.

Pure code, used by :mod:`pbrx_images.stages.runtime`: the entrypoint (the
init), ``PATH`` and ``Env`` inherited from the parent image, the command
that creates ``--user``, the requirement pip installs for an image, and how
``docker history`` names a layer of a distribution, and how that name is
read back for the report.
"""
from __future__ import annotations

import shlex
from typing import Any, Mapping, Sequence

from pbrx_images.plan import ImagePlan
from pbrx_images.plan.package_manager import INIT_PATH
from pbrx_images.plan.wheel_volume import WheelBuild, run_dir

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: How ``docker history`` shows a layer of a distribution (:func:`layer_created_by`).
LAYER_PREFIX = "pbrx-images: "
#: The kinds of layer (:attr:`pbrx_images.oci.layer.LayerPlan.kind`, at the end of the
#: history entry's comment) whose ``created_by`` names the distributions they hold.
DISTRIBUTION_KINDS = ("dependency", "project", "group")


def with_env(parent: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """The parent's ``Env`` with ``values`` replaced in place or added at the end."""
    env = list((parent.get("Config") or {}).get("Env") or ())
    for key, value in values.items():
        item = "%s=%s" % (key, value)
        for number, existing in enumerate(env):
            if existing.partition("=")[0] == key:
                env[number] = item
                break
        else:
            env.append(item)
    return env


def parent_labels(parent: Mapping[str, Any]) -> dict[str, str]:
    return dict((parent.get("Config") or {}).get("Labels") or {})


def image_requirement(run_id: str, wheels: WheelBuild, image: ImagePlan) -> str:
    """The project's wheel in the run's directory, with the image's extra."""
    return "%s/%s%s" % (run_dir(run_id), wheels.wheel,
                        "[%s]" % image.extra if image.extra else "")


def create_user_command(user: str, uid: int | None) -> str:
    """A POSIX sh command that creates ``user`` (useradd, or busybox adduser)."""
    name = shlex.quote(user)
    useradd_uid = "--uid %d " % uid if uid else ""
    adduser_uid = "-u %d " % uid if uid else ""
    return ("id -u %s >/dev/null 2>&1 || if command -v useradd >/dev/null 2>&1; then "
            "useradd %s--user-group --create-home --shell /usr/sbin/nologin %s; "
            "else adduser -D %s-s /sbin/nologin %s; fi"
            % (name, useradd_uid, name, adduser_uid, name))


def search_path(env: Sequence[str]) -> str:
    """``PATH`` of an image's ``Env`` (the usual default when it has none)."""
    for item in env:
        if item.startswith("PATH="):
            return item[len("PATH="):]
    return DEFAULT_PATH


def base_entrypoint() -> tuple[str, ...]:
    return (INIT_PATH, "--")


def layer_created_by(description: str) -> str:
    """The history's ``created_by`` of a layer :mod:`pbrx_images.oci.layer` planned.

    ``description`` is :attr:`~pbrx_images.oci.layer.LayerPlan.description`:
    "NAME VERSION" for one distribution, "N smaller distributions: NAME
    VERSION, ..." for a group (read back by :func:`layer_distributions`).
    """
    return LAYER_PREFIX + description


def layer_description(created_by: str) -> str:
    """The description :func:`layer_created_by` was given (``created_by`` itself if not)."""
    return created_by[len(LAYER_PREFIX):] if created_by.startswith(LAYER_PREFIX) else created_by


def layer_distributions(layer: Mapping[str, Any]) -> list[dict[str, str]]:
    """The Python distributions (name, version) a layer of the history holds.

    Per-distribution layers say so in their comment ("pbrx-images
    dependency", "... project" or "... group") and name what they hold in
    ``created_by``: "pbrx-images: NAME VERSION", or for a group "pbrx-images:
    N smaller distributions: NAME VERSION, NAME VERSION".  Other layers
    (the base image's, distro packages, a user, leftovers) hold none.

    The image's own history is read, not a list the build kept: it is there
    for an up-to-date build, which runs nothing, and for the base image's
    layers under a script's Dockerfile image just the same.  This function
    and :func:`layer_created_by` are the two ends of that text, tested as a
    round trip.
    """
    kind = str(layer.get("comment") or "").rpartition(" ")[2]
    created_by = str(layer.get("created_by") or "")
    if kind not in DISTRIBUTION_KINDS or not created_by.startswith(LAYER_PREFIX):
        return []
    text = layer_description(created_by)
    if kind == "group":
        text = text.partition(": ")[2]
    found = []
    for item in text.split(", "):
        name, _, version = item.strip().partition(" ")
        if name and version:
            found.append({"name": name, "version": version})
    return found
