"""The configuration of the runtime images, and what is installed into them.

Pure code, used by :mod:`pbrx_images.stages.runtime`: the entrypoint (the
init), ``PATH`` and ``Env`` inherited from the parent image, the command
that creates ``--user``, the requirement pip installs for an image, and how
``docker history`` names a layer of a distribution.
"""
from __future__ import annotations

import shlex
from typing import Any, Mapping, Sequence

from pbrx_images.plan import ImagePlan
from pbrx_images.plan.package_manager import INIT_PATH
from pbrx_images.plan.wheel_volume import WheelBuild, run_dir

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: How ``docker history`` shows a layer of a distribution.
LAYER_PREFIX = "pbrx-images: "


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
