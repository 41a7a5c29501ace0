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

import contextlib
import dataclasses
import io
import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any, Mapping

from pbrx_images.builder import (WHEELS, WheelBuild, cached_image_name, image_config_changes,
                                 install_packages, reuse_cached_image, run_dir)
from pbrx_images.engine import CommandFailed, Container, Engine, ImageInfo
from pbrx_images.errors import BuildError, EngineError
from pbrx_images.image_archive import (ArchivedImage, NewLayer, archive, chain_ids,
                                       image_config, parent_history, rfc3339)
from pbrx_images.layer import (DEFAULT_EPOCH, MAX_LAYERS, Entry, LayerPlan, Tree, group,
                               layer_entries, read_tree, split, without_noise, write_layer)
from pbrx_images.output import Reporter, default_log_dir
from pbrx_images.package_manager import INIT_PATH, PackageManager
from pbrx_images.plan import VENV, ImagePlan

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLEANUP = "rm -rf /root/.cache /tmp/* /var/tmp/*"
#: Layers the base image leaves free for the distributions of script images' extras.
RESERVED_LAYERS = 10
#: How ``docker history`` shows a layer of a distribution.
LAYER_PREFIX = "pbrx-images: "
#: What useradd changes that the user's layer leaves out (logs).
USER_LAYER_SKIP = ("var/log/", "var/cache/", "tmp/")


class Runtime:
    """Makes the runtime images of one build."""

    def __init__(self, engine: Engine, reporter: Reporter, work_name: str,
                 proxy_environment: Mapping[str, str],
                 volume: str, run_id: str, no_cache: bool, epoch: int = DEFAULT_EPOCH,
                 layer_dir: Path | None = None) -> None:
        self.engine = engine
        #: mtime of every file in a layer, and the images' creation time
        self.epoch = epoch
        self.created = rfc3339(epoch)
        self.layer_dir = layer_dir if layer_dir is not None else default_layer_dir()
        self._built: dict[str, _Built] = {}  # image ID -> what this build loaded
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
                user: str | None = None, uid: int | None = None) -> str:
        """Install the project (with ``image.extra``) on ``from_image``; load it as layers.

        pip installs into a container of ``from_image``; the virtualenv is
        then read out through the API and split into one layer per new
        distribution (:mod:`pbrx_images.layer`), and the image (those layers
        on ``from_image``'s) is loaded under ``work_tag``.  With ``user`` on
        an image this build did not make, a layer that creates the user
        (unless it exists) comes first; the virtualenv stays owned by root.
        Returns the image ID.
        """
        parent = self._inspect(from_image)
        own_parent = parent["Id"] in self._built
        new_layers: list[tuple[NewLayer, Path]] = []
        if user and not own_parent:
            new_layers.append(self._user_layer(from_image, image, user, uid,
                                               container_name + "-user"))
        run = run_dir(self.run_id)
        requirement = "%s/%s%s" % (run, wheels.wheel,
                                   "[%s]" % image.extra if image.extra else "")
        with contextlib.ExitStack() as stack:
            with self.engine.container(from_image, container_name,
                                       {WHEELS: (self.volume, True)}) as container:
                if own_parent:
                    before = self._built[parent["Id"]].venv
                else:
                    before = self._export(container, stack).index()
                container.run(
                    "PIP_CONFIG_FILE=/dev/null %s/bin/python %s/tools/%s/pip install --no-index "
                    "--no-cache-dir --disable-pip-version-check --no-warn-script-location "
                    "--find-links %s -c %s/lock.txt -c %s/constraints.txt %s && %s"
                    % (VENV, run, wheels.pip_wheel, run, run, run,
                       shlex.quote(requirement), CLEANUP),
                    {"SOURCE_DATE_EPOCH": str(self.epoch)}, workdir="/")
                tree = self._export(container, stack)
            plans = split(tree, before, wheels.metadata.name or self.work_name)
            budget = MAX_LAYERS - len(parent["RootFS"]["Layers"]) - len(new_layers)
            if image.script is None:
                budget -= RESERVED_LAYERS
            plans, grouped = group(plans, max(budget, 1))
            if grouped:
                self.reporter.say("    %d distributions share one layer, so that the image has "
                                  "at most %d layers: %s" % (len(grouped), MAX_LAYERS,
                                                             ", ".join(grouped)))
            for plan in plans:
                new_layers.append(self._store_layer(tree, plan))
            venv = tree.index()
        settings: dict[str, object] = {"Entrypoint": list(entrypoint or ()),
                                       "Cmd": list(cmd or ()) or None,
                                       "Env": _with_env(parent, {"PATH": "%s/bin:%s" % (
                                           VENV, _path(base)), "VIRTUAL_ENV": VENV}),
                                       "Labels": dict(_labels(parent), **labels)}
        if entrypoint is None:
            settings.pop("Entrypoint")
        if cmd is None:
            settings.pop("Cmd")
        if user:
            settings["User"] = user
        self.reporter.say("    %d layers: %s" % (len(new_layers), "; ".join(
            layer.created_by.replace(LAYER_PREFIX, "", 1) for layer, _ in new_layers)))
        return self._load(parent, image, work_tag, new_layers, settings, venv)

    def configure(self, from_image: str, image: ImagePlan, work_tag: str,
                  cmd: tuple[str, ...] | None, labels: Mapping[str, str]) -> str:
        """``from_image`` with another ``CMD`` and labels: a new configuration, no layer."""
        parent = self._inspect(from_image)
        built = self._built.get(parent["Id"])
        settings = {"Cmd": list(cmd or ()) or None, "Labels": dict(_labels(parent), **labels)}
        return self._load(parent, image, work_tag, [], settings,
                          built.venv if built else {}, "pbrx-images: CMD %s" % json.dumps(
                              list(cmd or ())))

    # -- the parts -------------------------------------------------------------------------

    def _inspect(self, name: str) -> dict[str, Any]:
        found = self.engine.inspect(name)
        if found is None:
            raise BuildError("The image %s disappeared from the engine during the build: run "
                             "build-images again." % name)
        return found

    def _export(self, container: Container, stack: contextlib.ExitStack) -> Tree:
        """The virtualenv of ``container``, without install-time noise."""
        spool = stack.enter_context(tempfile.TemporaryFile(prefix="pbrx-images-venv-"))
        container.export(VENV, spool)
        return without_noise(read_tree(spool, VENV))

    def _store_layer(self, tree: Tree, plan: LayerPlan) -> tuple[NewLayer, Path]:
        """Write a layer's tar into the layer cache, named by its digest."""
        self.layer_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.layer_dir, prefix=".tmp-",
                                         delete=False) as out:
            try:
                diff_id = write_layer(tree, layer_entries(tree, plan), self.epoch, out)
            except BaseException:
                os.unlink(out.name)
                raise
        final = self.layer_dir / (diff_id.partition(":")[2] + ".tar")
        os.replace(out.name, final)
        return NewLayer(diff_id, LAYER_PREFIX + plan.description), final

    def _user_layer(self, from_image: str, image: ImagePlan, user: str, uid: int | None,
                    container_name: str) -> tuple[NewLayer, Path]:
        """A layer that creates ``user``: the files useradd changed, owners kept."""
        with self.engine.container(from_image, container_name) as container:
            try:
                container.run(create_user_command(user, uid),
                              {"SOURCE_DATE_EPOCH": str(self.epoch)})
            except CommandFailed as failure:
                raise BuildError(
                    "Creating the user %s in %s failed (%s): the base image needs useradd "
                    "or adduser, and the name and UID must be free."
                    % (user, image.name, _last_line(failure.output))) from failure
            entries: dict[str, Entry] = {}
            removed = []
            for path, kind in sorted(container.changes()):
                relative = path.strip("/")
                if not relative or relative.startswith(USER_LAYER_SKIP):
                    continue
                if kind == 2:
                    removed.append(relative)
                    continue
                with tempfile.TemporaryFile() as spool:
                    container.export(path, spool)
                    found = read_tree(spool, path, keep_owner=True)
                    entry = found.entries.get(relative)
                    if entry is not None:
                        data = found.read(entry) if entry.kind == "file" else None
                        entries[relative] = dataclasses.replace(entry, data=data, offset=-1)
        tree = Tree(io.BytesIO(), entries)
        plan = LayerPlan("user %s" % user, sorted(path for path, entry in entries.items()
                                                  if entry.kind != "dir"
                                                  or not any(other.startswith(path + "/")
                                                             for other in entries)),
                         kind="user", whiteouts=removed)
        return self._store_layer(tree, plan)

    def _history(self, parent: Mapping[str, Any]) -> list[dict[str, Any]]:
        built = self._built.get(parent["Id"])
        if built is not None:
            return built.history
        return parent_history(self.engine.history(parent["Id"]),
                              len(parent["RootFS"]["Layers"]))

    def _load(self, parent: Mapping[str, Any], image: ImagePlan, work_tag: str,
              layers: list[tuple[NewLayer, Path]], settings: Mapping[str, object],
              venv: dict[str, tuple[str, int, str, str]], comment: str = "pbrx-images"
              ) -> str:
        """Load the image: ``parent``'s layers referenced, only unknown new ones sent.

        Nothing in the configuration depends on the image's name or tag, so
        the same content gets the same ID under any name.
        """
        config = image_config(parent, self._history(parent), [layer for layer, _ in layers],
                              settings, self.created, comment)
        archived = ArchivedImage(config, (work_tag,))
        known = set(chain_ids(parent["RootFS"]["Layers"]))
        for other in [image.name] + list(self._built):
            found = self.engine.inspect(other)
            if found is not None:
                known.update(chain_ids((found.get("RootFS") or {}).get("Layers") or ()))
        chains = chain_ids(archived.diff_ids)
        offset = len(parent["RootFS"]["Layers"])
        with contextlib.ExitStack() as stack:
            files = {layer.diff_id: stack.enter_context(open(path, "rb"))
                     for (layer, path), chain in zip(layers, chains[offset:])
                     if chain not in known}
            if len(files) < len(layers):
                self.reporter.say("    %d of %d new layers already on the engine"
                                  % (len(layers) - len(files), len(layers)))
            self.engine.load(archive([archived], files), image.name)
        if self.engine.image(archived.id) is None:
            raise EngineError("Loading %s gave no image %s." % (image.name, archived.id))
        history = json.loads(config)["history"]
        self._built[archived.id] = _Built(history, venv)
        return archived.id


@dataclasses.dataclass
class _Built:
    """What this build knows of an image it loaded."""

    history: list[dict[str, Any]]
    venv: dict[str, tuple[str, int, str, str]]  #: the virtualenv's index (layer.Tree.index)


def _with_env(parent: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
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


def _labels(parent: Mapping[str, Any]) -> dict[str, str]:
    return dict((parent.get("Config") or {}).get("Labels") or {})


def default_layer_dir() -> Path:
    """``$XDG_CACHE_HOME/pbrx-images/layers``: layer tars by digest."""
    return default_log_dir().parent / "layers"


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
