"""The runtime stage: clean images that get wheels, never a compiler.

First a runtime-packages image (base image + bindep's runtime packages + the
init + an empty virtualenv) as one reproducible layer on the base image's
(:mod:`pbrx_images.oci.changes_layer`), cached by a tag that hashes its inputs.  On it,
the ``{project}-base`` image gets the project and its base extra from the
run's wheel directory with ``--no-index``; each script image then gets its
own extra, or only its ``CMD``.  Installs run with a pip taken from the
run's wheels, so no pip (and no pip cache) is left in any image.

No image is committed from a container: each is loaded (``docker load``)
under a temporary work name; the pipeline tags them with their real names
only when every image is built.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import shlex
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from pbrx_images.cache.files import layers_dir
from pbrx_images.cache.image_facts import ImageFacts
from pbrx_images.cache.layers import CachedLayer, LayerCache, layer_key
from pbrx_images.engine import CommandFailed, Container, Engine, ImageInfo
from pbrx_images.engine.load import load_archive
from pbrx_images.errors import BuildError, EngineError
from pbrx_images.oci.changes_layer import layer_paths, normalise, plan_exports, read_changes
from pbrx_images.oci.image_archive import (ArchivedImage, NewLayer, chain_ids, image_config,
                                           parent_history, rfc3339)
from pbrx_images.oci.layer import (DEFAULT_EPOCH, LISTED_LAYERS, MAX_LAYERS, LayerPlan, group,
                                   layer_entries, layers_summary, split, stacked, without_noise)
from pbrx_images.oci.tar import Signature, Tree, chunk_stream, read_tree, write_layer
from pbrx_images.plan import VENV, ImagePlan, resolution
from pbrx_images.plan.cache_keys import cached_image_name
from pbrx_images.plan.package_manager import PackageManager
from pbrx_images.plan.resolution import Wanted
from pbrx_images.plan.runtime_image import (create_user_command, image_requirement,
                                            layer_created_by, layer_description, parent_labels,
                                            search_path, with_env)
from pbrx_images.plan.wheel_volume import WHEELS, WheelBuild, pip_directory, run_dir
from pbrx_images.stages.builder import install_packages, reuse_cached_image
from pbrx_images.ui.output import Reporter

if TYPE_CHECKING:  # (imported only by builds that have one: it imports requests)
    from pbrx_images.cache.shared import SharedCache

CLEANUP = "rm -rf /root/.cache /tmp/* /var/tmp/*"
#: Layers the base image leaves free for the distributions of script images' extras.
RESERVED_LAYERS = 10
#: Bump when what goes into the runtime-packages layer changes (part of its cache key).
PACKAGES_LAYER_RECIPE = "layer-2"  # layer-2: xattrs, devices and FIFOs kept


class Runtime:
    """Makes the runtime images of one build."""

    def __init__(self, engine: Engine, reporter: Reporter, work_name: str,
                 proxy_environment: Mapping[str, str],
                 volume: str, run_id: str, no_cache: bool, epoch: int = DEFAULT_EPOCH,
                 facts: ImageFacts | None = None, refresh: bool = False,
                 shared: SharedCache | None = None) -> None:
        self.engine = engine
        #: the shared build cache (``--cache-from``/``--cache-to``), if the build has one
        self.shared = shared
        #: what is known of images by ID, and pip's answers by what decides them
        self.facts = facts
        #: ask pip again rather than reuse an earlier build's answer (``--refresh``)
        self.refresh = refresh
        #: mtime of every file in a layer, and the images' creation time
        self.epoch = epoch
        self.created = rfc3339(epoch)
        self.cache = LayerCache(layers_dir())  # (pruned once per build, by pipeline)
        self._built: dict[str, LoadedImage] = {}  # image ID -> what this build loaded
        self.reporter = reporter
        self.work_name = work_name
        self.proxy_environment = dict(proxy_environment)
        self.volume = volume
        self.run_id = run_id
        self.no_cache = no_cache

    def on(self, engine: Engine, reporter: Reporter) -> Runtime:
        """A Runtime with the same settings that works through ``engine`` (another thread's)."""
        return Runtime(engine, reporter, self.work_name, self.proxy_environment, self.volume,
                       self.run_id, self.no_cache, self.epoch, self.facts, self.refresh,
                       self.shared)

    def packages_image(self, base: ImageInfo, base_name: str, manager: PackageManager,
                       packages: tuple[str, ...], container_name: str) -> str:
        """The runtime-packages image's name, made unless a cached one matches.

        The packages are installed in a container that is never committed;
        what changed becomes one normalised layer (:meth:`_changes_layer`),
        loaded on the base image's layers with the base image's
        configuration, so the same base image and packages give the same
        image ID on any machine.
        """
        name = cached_image_name("runtime", base.id, manager.name, " ".join(packages), VENV,
                                 PACKAGES_LAYER_RECIPE, str(self.epoch))
        key = hashlib.sha256(name.encode()).hexdigest()  # (of the shared cache's entry)
        if reuse_cached_image(self.engine, name, self.no_cache):
            if self.shared is not None and self.shared.write_to:
                top = self._inspect(name)["RootFS"]["Layers"][-1]
                tar = self.cache.existing_tar(top)
                if tar is not None:  # (the tar is pruned after 30 days unused)
                    self.shared.keep_packages_layer(
                        key, top, str(self.engine.layers(name)[-1]["created_by"]), tar)
            return name
        parent = self._inspect(base.id)
        found = self.shared.fetch_packages_layer(key, self.cache) if (
            self.shared is not None and not self.no_cache) else None
        if found is not None:
            self.reporter.say("    the packages' layer, from the shared cache")
            layer = (NewLayer(found[0], found[1], "packages"), self.cache.tar_path(found[0]))
        else:
            epoch = {"SOURCE_DATE_EPOCH": str(self.epoch)}
            with self.engine.container(base.id, container_name) as container:
                install_packages(container, manager, packages, base_name,
                                 dict(self.proxy_environment, **epoch))
                container.run("python3 -m venv --without-pip %s && %s" % (VENV, CLEANUP),
                              epoch)
                layer = self._changes_layer(container, "runtime packages %s"
                                            % " ".join(packages), "packages")
        if self.shared is not None:
            self.shared.keep_packages_layer(key, layer[0].diff_id, layer[0].created_by,
                                            layer[1])
        image_id = self._load(parent, name, name, [layer], {}, {}, parent["Id"])
        # read back like any image this build did not make, cached or not
        self._built.pop(image_id, None)
        return name

    def install(self, from_image: str, base: ImageInfo, image: ImagePlan, wheels: WheelBuild,
                work_tag: str, container_name: str, entrypoint: tuple[str, ...] | None,
                cmd: tuple[str, ...] | None, labels: Mapping[str, str],
                user: str | None = None, uid: int | None = None,
                finished: Callable[[Sequence[tuple[str, str]]], Mapping[str, str]] | None = None,
                ready: Container | None = None) -> str:
        """Install the project (with ``image.extra``) on ``from_image``; load it as layers.

        Each distribution the image adds gets a layer of its own
        (:mod:`pbrx_images.oci.layer`): pip resolves in a container of
        ``from_image`` which wheels that are; those whose layer the client's
        cache lacks are installed there with ``--no-deps``, the virtualenv is
        read out through the API and split by the distributions' RECORDs.
        When files do not split cleanly (one no RECORD claims, or two
        distributions claim), everything is installed at once and such files
        get a layer of their own.  The image (these layers on
        ``from_image``'s) is loaded under ``work_tag``.  With ``user`` on an
        image this build did not make, a layer that creates the user (unless
        it exists) comes first; the virtualenv stays owned by root.
        ``finished`` is called, before the image is loaded, with the (name,
        version) of every Python distribution in the image's virtualenv, as
        pip's resolutions of this image and the images below it report them;
        the labels it returns are added to the image's.  ``ready``, a running
        container of ``from_image`` named ``container_name`` with the wheel
        volume mounted read-only (removed by the caller), saves starting one.
        Returns the image ID.
        """
        parent = self._inspect(from_image)
        own = self._built.get(parent["Id"])
        new_layers: list[tuple[NewLayer, Path]] = []
        if user and own is None:
            new_layers.append(self._user_layer(from_image, image, user, uid,
                                               container_name + "-user"))
        venv_image = own.venv_image if own is not None else parent["Id"]
        budget = MAX_LAYERS - len(parent["RootFS"]["Layers"]) - len(new_layers)
        if image.script is None:
            budget -= RESERVED_LAYERS
        project = wheels.metadata.name or self.work_name
        python = dict(own.python) if own is not None else {}
        with contextlib.ExitStack() as stack:
            started: list[Container] = []

            def container() -> Container:
                """The container of ``from_image`` pip runs in, started when first needed."""
                if not started:
                    started.append(ready if ready is not None else stack.enter_context(
                        self.engine.container(from_image, container_name,
                                              {WHEELS: (self.volume, True)})))
                return started[0]

            before = own.venv if own is not None else \
                self._venv_index(parent["Id"], container, stack)
            wanted = self._resolve(container, wheels, image, venv_image, python)
            python.update((name, (found.name, found.version)) for name, found in wanted.items())
            layers = self._distribution_layers(container, stack, wanted, wheels, before,
                                               venv_image, project)
            tree: Tree | None = None  # read from the layers' tars only if one must be written
            if layers is None:
                self.reporter.say("    files that no or several distributions' RECORDs "
                                  "claim: installing all at once")
                with self.engine.container(from_image, container_name + "-whole",
                                           {WHEELS: (self.volume, True)}) as at_once:
                    self._pip(at_once, wheels, [image_requirement(self.run_id, wheels, image)],
                              deps=True)
                    tree = self._export(at_once, stack)
                plans = split(tree, before, project)
                added = tree.index()
            else:
                plans = stacked(LayerPlan(layer.description, sorted(layer.files), layer.size,
                                          layer.kind, name=layer.name) for layer in layers)
                added = {path: signature for layer in layers
                         for path, signature in layer.files.items() if signature[0] != "dir"}
            plans, grouped = group(plans, max(budget, 1))
            if grouped:
                shared = "    %d distributions share one layer, so that the image has at most " \
                    "%d layers" % (len(grouped), MAX_LAYERS)
                if len(grouped) <= LISTED_LAYERS:
                    self.reporter.say("%s: %s" % (shared, ", ".join(grouped)))
                else:
                    self.reporter.say("%s (-v lists them)" % shared)
                    self.reporter.detail("%s: %s" % (shared, ", ".join(grouped)))
            by_name = {layer.name: layer for layer in layers or ()}
            for plan in plans:
                reused = by_name.get(plan.name) if plan.kind in ("dependency", "project") \
                    else None
                if reused is not None:
                    new_layers.append((NewLayer(reused.diff_id,
                                                layer_created_by(plan.description), plan.kind),
                                       self.cache.tar_path(reused.diff_id)))
                else:
                    if tree is None:
                        tree = self._cached_tree(layers or (), stack)
                    new_layers.append(self._store_layer(tree, plan))
            venv = dict(before)
            venv.update(added)
            for path in (path for plan in plans for path in plan.whiteouts):
                venv.pop(path, None)
        settings: dict[str, object] = {"Entrypoint": list(entrypoint or ()),
                                       "Cmd": list(cmd or ()) or None,
                                       "Env": with_env(parent, {"PATH": "%s/bin:%s" % (
                                           VENV, search_path(base.env)), "VIRTUAL_ENV": VENV}),
                                       "Labels": dict(parent_labels(parent), **labels)}
        if entrypoint is None:
            settings.pop("Entrypoint")
        if cmd is None:
            settings.pop("Cmd")
        if user:
            settings["User"] = user
        line, whole = layers_summary([(layer_description(layer.created_by),
                                       layer.kind, path.stat().st_size)
                                      for layer, path in new_layers])
        self.reporter.say("    " + line)
        if whole is not None:
            self.reporter.detail("    " + whole)
        if finished is not None:
            labels_now = settings["Labels"]
            assert isinstance(labels_now, dict)
            settings["Labels"] = {**labels_now, **finished(sorted(python.values()))}
        return self._load(parent, image.name, work_tag, new_layers, settings, venv,
                          venv_image, python)

    def _distribution_layers(self, container: Callable[[], Container],
                             stack: contextlib.ExitStack, wanted: Mapping[str, Wanted],
                             wheels: WheelBuild,
                             before: Mapping[str, Signature],
                             venv_image: str, project: str) -> list[CachedLayer] | None:
        """The cached layer of every distribution in ``wanted``, made when missing.

        None when the files do not split cleanly into one layer per
        distribution.
        """
        layers: dict[str, CachedLayer] = {}
        missing: dict[str, str] = {}  # name -> wheel path
        keys = {name: layer_key(found.sha256, venv_image, VENV, wheels.pip_wheel, self.epoch)
                for name, found in wanted.items()}  # name -> cache key
        shared = 0
        for name, found in wanted.items():
            key = keys[name]
            cached = None if self.no_cache else self.cache.get(key)
            if cached is None and self.shared is not None and not self.no_cache:
                cached = self.shared.fetch_layer(key, self.cache)
                shared += cached is not None
            if cached is not None:
                layers[name] = cached
            else:
                missing[name] = found.path
        if layers:
            self.reporter.say("    %d of %d distribution layers from the cache%s" % (
                len(layers), len(wanted),
                " (%d from the shared cache %s)" % (shared, self.shared.read_from)
                if shared and self.shared is not None else ""))
        if missing:
            self._pip(container(), wheels, list(missing.values()), deps=False)
            tree = self._export(container(), stack)
            plans = split(tree, before, project)
            made = {plan.name: plan for plan in plans if plan.kind in ("dependency", "project")}
            if set(made) != set(missing) or len(made) != len(plans):
                return None
            for name, plan in made.items():
                layer, _ = self._store_layer(tree, plan)
                cached = CachedLayer(layer.diff_id, name, plan.description, plan.size,
                                     plan.kind, {path: tree.entries[path].signature
                                                 for path in plan.paths})
                self.cache.put(keys[name], cached)
                layers[name] = cached
        claimed: set[str] = set(before)
        for kept in layers.values():
            if claimed.intersection(kept.files):
                return None
            claimed.update(kept.files)
        if self.shared is not None:
            for name, kept in layers.items():
                self.shared.keep_layer(keys[name], kept, self.cache.tar_path(kept.diff_id))
        return [layers[name] for name in sorted(layers)]

    def _resolve(self, container: Callable[[], Container], wheels: WheelBuild,
                 image: ImagePlan, venv_image: str, installed: Mapping[str, tuple[str, str]]
                 ) -> dict[str, Wanted]:
        """Canonical name -> wheel of each distribution pip would add to the image.

        pip is asked in a container of the image below, unless an earlier
        build asked it the same (:mod:`pbrx_images.plan.resolution`).
        """
        key = resolution.key(wheels, image.extra, venv_image, installed)
        known = None
        if self.facts is not None and not self.refresh:
            known = resolution.from_json(self.facts.get("resolution", key), wheels,
                                         run_dir(self.run_id))
        if known is not None:
            self.reporter.say("    which wheels to install: as an earlier build of the same "
                              "lock found")
            return known
        report = "/pbrx-images-report.json"  # not in /tmp, which pip runs clean
        self._pip(container(), wheels, [image_requirement(self.run_id, wheels, image)],
                  deps=True, extra="--dry-run --quiet --report %s " % report)
        wanted = resolution.from_report(json.loads(container().read_file(report)), wheels)
        if self.facts is not None:
            self.facts.put("resolution", key, resolution.to_json(wanted, wheels))
        return wanted

    def _venv_index(self, image_id: str, container: Callable[[], Container],
                    stack: contextlib.ExitStack) -> dict[str, Signature]:
        """The index of the virtualenv of an image this build did not make."""
        known = self.facts.get("venv", image_id) if self.facts is not None else None
        if isinstance(known, dict):
            return {path: tuple(signature) for path, signature in known.items()}
        index = self._export(container(), stack).index()
        if self.facts is not None:
            self.facts.put("venv", image_id, index)
        return index

    def _cached_tree(self, layers: Sequence[CachedLayer], stack: contextlib.ExitStack
                     ) -> Tree:
        """The files of ``layers``, read from their tars in the layer cache."""
        tree = Tree(io.BytesIO(), {})
        for layer in layers:
            tree.entries.update(read_tree(stack.enter_context(
                open(self.cache.tar_path(layer.diff_id), "rb")), "/").entries)
        return tree

    def _pip(self, container: Container, wheels: WheelBuild, requirements: list[str],
             deps: bool, extra: str = "") -> None:
        """Run the run's pip in ``container`` on the run's wheels only."""
        run = run_dir(self.run_id)
        container.run(
            "PIP_CONFIG_FILE=/dev/null PYTHONPATH=%s %s/bin/python -m pip install --no-index "
            "--no-cache-dir --disable-pip-version-check --no-warn-script-location %s%s"
            "--find-links %s -c %s/lock.txt -c %s/constraints.txt %s && %s"
            % (pip_directory(wheels.pip_wheel), VENV, extra, "" if deps else "--no-deps ",
               run, run, run, " ".join(shlex.quote(item) for item in requirements), CLEANUP),
            {"SOURCE_DATE_EPOCH": str(self.epoch)}, workdir="/")

    def configure(self, from_image: str, image: ImagePlan, work_tag: str,
                  cmd: tuple[str, ...] | None, labels: Mapping[str, str]) -> str:
        """``from_image`` with another ``CMD`` and labels: a new configuration, no layer."""
        parent = self._inspect(from_image)
        built = self._built.get(parent["Id"])
        settings = {"Cmd": list(cmd or ()) or None,
                    "Labels": dict(parent_labels(parent), **labels)}
        return self._load(parent, image.name, work_tag, [], settings,
                          built.venv if built else {},
                          built.venv_image if built else parent["Id"],
                          built.python if built else {},
                          "pbrx-images: CMD %s" % json.dumps(list(cmd or ())))

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
        diff_id, final = self.cache.write_tar(
            lambda out: write_layer(tree, layer_entries(tree, plan), self.epoch, out))
        return NewLayer(diff_id, layer_created_by(plan.description), plan.kind), final

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
            return self._changes_layer(container, "user %s" % user, "user")

    def _changes_layer(self, container: Container, description: str, kind: str
                       ) -> tuple[NewLayer, Path]:
        """One normalised layer of what commands changed in ``container``, owners kept.

        The changes (``docker diff``) say which paths the layer holds;
        :mod:`pbrx_images.oci.changes_layer` picks them from one stream of the
        container's file system and leaves noise out; removed paths become
        whiteouts; every mtime is the epoch.
        """
        plan = plan_exports(container.changes())
        with tempfile.TemporaryFile(prefix="pbrx-images-changes-") as spool:
            tree, unlinked = read_changes(chunk_stream(container.export_filesystem()), plan,
                                          spool)
            for path in unlinked:  # hard links to a file the layer does not hold: copies
                with tempfile.TemporaryFile() as single:
                    container.export("/" + path, single)
                    found = read_tree(single, "/" + path, keep_owner=True)
                    entry = found.entries.get(path)
                    if entry is not None and entry.kind == "file":
                        tree.entries[path] = dataclasses.replace(
                            entry, data=found.read(entry), offset=-1, spool=None)
            tree.entries = normalise(tree, self.epoch)
            return self._store_layer(tree, LayerPlan(description, layer_paths(tree.entries),
                                                     kind=kind, whiteouts=plan.removed))

    def _history(self, parent: Mapping[str, Any]) -> list[dict[str, Any]]:
        built = self._built.get(parent["Id"])
        if built is not None:
            return built.history
        return parent_history(self.engine.history(parent["Id"]),
                              len(parent["RootFS"]["Layers"]))

    def _load(self, parent: Mapping[str, Any], what: str, work_tag: str,
              layers: list[tuple[NewLayer, Path]], settings: Mapping[str, object],
              venv: dict[str, Signature], venv_image: str,
              python: Mapping[str, tuple[str, str]] | None = None,
              comment: str = "pbrx-images") -> str:
        """Load the image: ``parent``'s layers referenced, only unknown new ones sent.

        Nothing in the configuration depends on the image's name or tag, so
        the same content gets the same ID under any name.
        """
        config = image_config(parent, self._history(parent), [layer for layer, _ in layers],
                              settings, self.created, comment)
        archived = ArchivedImage(config, (work_tag,))
        known = set(chain_ids(parent["RootFS"]["Layers"]))
        for built in self._built.values():
            known.update(chain_ids(built.diff_ids))
        previous = self.engine.inspect(what)  # the image of the last build, if any
        if previous is not None:
            known.update(chain_ids((previous.get("RootFS") or {}).get("Layers") or ()))
        chains = chain_ids(archived.diff_ids)
        offset = len(parent["RootFS"]["Layers"])
        files = {layer.diff_id: path for (layer, path), chain in zip(layers, chains[offset:])
                 if chain not in known}
        if len(files) < len(layers):
            self.reporter.say("    %d of %d new layers already on the engine"
                              % (len(layers) - len(files), len(layers)))
        load_archive(self.engine, self.cache, self.reporter, [archived], files, parent["Id"],
                     what)
        if self.engine.image(archived.id) is None:
            raise EngineError("Loading %s gave no image %s." % (what, archived.id))
        history = json.loads(config)["history"]
        self._built[archived.id] = LoadedImage(history, venv, venv_image, list(archived.diff_ids),
                                               dict(python or {}), config, list(layers))
        return archived.id

    def loaded(self, image_id: str) -> LoadedImage | None:
        """What this build loaded as ``image_id``; None for an image it did not load."""
        return self._built.get(image_id)


@dataclasses.dataclass
class LoadedImage:
    """What this build knows of an image it loaded."""

    history: list[dict[str, Any]]
    venv: dict[str, Signature]  #: the virtualenv's index (layer.Tree.index)
    venv_image: str  #: the image whose virtualenv this one's grew from
    diff_ids: list[str]  #: its layers, the parent's first
    #: canonical name -> (name, version) of each Python distribution in the virtualenv
    python: dict[str, tuple[str, str]]
    config: bytes = b""  #: its configuration, as loaded (its sha256 is the ID)
    #: the layers it added to its parent's, with their tars
    layers: list[tuple[NewLayer, Path]] = dataclasses.field(default_factory=list)


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
