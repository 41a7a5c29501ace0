"""The runtime stage: clean images that get wheels, never a compiler.

First a runtime-packages image (base image + bindep's runtime packages + the
init + an empty virtualenv), cached by a tag that hashes its inputs.  On it,
the ``{project}-base`` image gets the project and its base extra from the
run's wheel directory with ``--no-index``; each script image then gets its
own extra, or only its ``CMD``.  Installs run with a pip taken from the
run's wheels, so no pip (and no pip cache) is left in any image.

Images are committed under temporary work names; the pipeline tags them with
their real names only when every image is built.
"""
from __future__ import annotations

import shlex
from typing import Callable, Mapping

from pbrx_images.builder import (WHEELS, WheelBuild, cached_image_name, image_config_changes,
                                 install_packages, reuse_cached_image, run_dir)
from pbrx_images.engine import CommandFailed, Container, Engine, ImageInfo
from pbrx_images.errors import BuildError
from pbrx_images.output import Reporter
from pbrx_images.package_manager import INIT_PATH, PackageManager
from pbrx_images.plan import VENV, ImagePlan

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLEANUP = "rm -rf /root/.cache /tmp/* /var/tmp/*"


class Runtime:
    """Makes the runtime images of one build."""

    def __init__(self, engine: Engine, reporter: Reporter, work_name: str,
                 proxy_environment: Mapping[str, str],
                 volume: str, run_id: str, no_cache: bool) -> None:
        self.engine = engine
        self.reporter = reporter
        self.work_name = work_name
        self.proxy_environment = dict(proxy_environment)
        self.volume = volume
        self.run_id = run_id
        self.no_cache = no_cache

    def packages_image(self, base: ImageInfo, base_name: str, manager: PackageManager,
                       packages: tuple[str, ...], container_name: str) -> str:
        """The runtime-packages image's name, made unless a cached one matches."""
        name = cached_image_name("runtime", base.id, manager.name, " ".join(packages), VENV)
        if reuse_cached_image(self.engine, name, self.no_cache):
            return name
        with self.engine.container(base.id, container_name) as container:
            install_packages(container, manager, packages, base_name, self.proxy_environment)
            container.run("python3 -m venv --without-pip %s && %s" % (VENV, CLEANUP))
            repository, _, tag = name.rpartition(":")
            container.commit(repository, tag, image_config_changes(base),
                             "pbrx-images runtime packages for %s" % self.work_name)
        return name

    def install(self, from_image: str, base: ImageInfo, image: ImagePlan, wheels: WheelBuild,
                work_tag: str, container_name: str, entrypoint: tuple[str, ...] | None,
                cmd: tuple[str, ...] | None, labels: Mapping[str, str],
                user: str | None = None, uid: int | None = None,
                finished: Callable[[Container], Mapping[str, str]] | None = None) -> str:
        """Install the project (with ``image.extra``) on ``from_image`` and commit it.

        With ``user``, that user is created (unless it exists) and becomes
        the image's user; the virtualenv stays owned by root.  ``finished``
        is called with the container once its files are final, before the
        commit; the labels it returns are added (the SBOM's digest).
        """
        run = run_dir(self.run_id)
        requirement = "%s/%s%s" % (run, wheels.wheel,
                                   "[%s]" % image.extra if image.extra else "")
        with self.engine.container(from_image, container_name,
                                   {WHEELS: (self.volume, True)}) as container:
            container.run(
                "PIP_CONFIG_FILE=/dev/null %s/bin/python %s/tools/%s/pip install --no-index "
                "--no-cache-dir --disable-pip-version-check --no-warn-script-location "
                "--find-links %s -c %s/lock.txt -c %s/constraints.txt %s && %s"
                % (VENV, run, wheels.pip_wheel, run, run, run,
                   shlex.quote(requirement), CLEANUP), workdir="/")
            if user:
                try:
                    container.run(create_user_command(user, uid))
                except CommandFailed as failure:
                    raise BuildError(
                        "Creating the user %s in %s failed (%s): the base image needs useradd "
                        "or adduser, and the name and UID must be free."
                        % (user, image.name, _last_line(failure.output))) from failure
            if finished is not None:
                labels = {**labels, **finished(container)}
            repository, _, tag = work_tag.rpartition(":")
            env = {"PATH": "%s/bin:%s" % (VENV, _path(base)), "VIRTUAL_ENV": VENV}
            return container.commit(repository, tag,
                                    image_config_changes(base, entrypoint, cmd, env, labels,
                                                         user),
                                    "pbrx-images: %s" % image.name)


def create_user_command(user: str, uid: int | None) -> str:
    """A POSIX sh command that creates ``user`` (useradd, or busybox adduser)."""
    name = shlex.quote(user)
    useradd_uid = "--uid %d " % uid if uid else ""
    adduser_uid = "-u %d " % uid if uid else ""
    return ("id -u %s >/dev/null 2>&1 || if command -v useradd >/dev/null 2>&1; then "
            "useradd %s--user-group --create-home --shell /usr/sbin/nologin %s; "
            "else adduser -D %s-s /sbin/nologin %s; fi"
            % (name, useradd_uid, name, adduser_uid, name))


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _path(base: ImageInfo) -> str:
    for item in base.env:
        if item.startswith("PATH="):
            return item[len("PATH="):]
    return DEFAULT_PATH


def base_entrypoint() -> tuple[str, ...]:
    return (INIT_PATH, "--")
