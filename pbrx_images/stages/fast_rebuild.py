"""The fast path of an app change: the last build's images with the project's layer patched.

A full build keeps, per project directory, a
:class:`~pbrx_images.plan.fast_path.FastRecord` (:func:`keep`): every
source file's digest, which files of the project's layer are verbatim
copies of which source files, and every image's configuration.  When the
next build's only change is to such files
(:func:`pbrx_images.plan.fast_path.decide` proves it, or gives the one line
of why not), :func:`rebuild` makes its images without the builder
container, the build backend or pip:

1. the project's layer, read from the layer cache, gets the new files; the
   byte code of each changed module is compiled by the image's own
   interpreter, as pip compiles it (``container_tools/compile_pyc.py``, in
   one short container of the last base image); RECORD gets the new hashes
   and sizes;
2. each image's configuration gets the new layer's diff ID in place of the
   old one, nothing else: the SBOMs, labels and history do not depend on the
   changed files (the version, which they name, does not change);
3. the images are loaded in one archive that holds only the new layer and
   the layers above it, then tagged, all or nothing.

The images are byte for byte those a full build of the same tree makes
(the engine tests compare IDs with ``--no-cache`` builds).  Measured on the
psycopg2 example (one-line change, this machine type): the full path took
3.07 s, of which the builder's wheel step 1.38 s and the base image's
install 0.71 s; this path replaces both by the compile container and the
patch (see the README's benchmark section for the latest numbers).
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from pbrx_images import container_tools, interrupts
from pbrx_images.cache import build_record
from pbrx_images.cache.files import layers_dir, write_whole
from pbrx_images.cache.layers import LayerCache
from pbrx_images.engine import CommandFailed, Engine
from pbrx_images.engine.load import load_archive
from pbrx_images.engine.run import Run
from pbrx_images.errors import BuildError
from pbrx_images.oci.image_archive import ArchivedImage
from pbrx_images.oci.layer import is_installed_record, pyc_source
from pbrx_images.oci.tar import Tree, read_tree, write_layer
from pbrx_images.plan import VENV, Plan, fast_path
from pbrx_images.plan.fast_path import FastRecord, Patch, RecordedConfig
from pbrx_images.project import labels as labels_module
from pbrx_images.project.inputs import BuildInputs
from pbrx_images.project.metadata import image_name
from pbrx_images.project.settings import Options
from pbrx_images.project.source import SourceArchive
from pbrx_images.stages.finish import push_all, smoke_test_all, tag_all
from pbrx_images.stages.record import Result, record_build, result_of
from pbrx_images.stages.runtime import Runtime
from pbrx_images.ui.output import Reporter

#: Where the compile container gets its files.
WORK = "/pbrx-images-fast"
#: What :mod:`pbrx_images.container_tools.compile_pyc` prints before each module's byte code.
PYC_MARK = "pbrx-images-pyc: "


class FullPath(Exception):
    """The fast path found, part-way, that it cannot make the images: why, in one line."""


@dataclass(frozen=True)
class TreeState:
    """This build's side of :func:`~pbrx_images.plan.fast_path.decide`."""

    inputs: Mapping[str, str]  #: :func:`build_record.input_digests`
    source: Mapping[str, str]  #: source path -> :func:`~pbrx_images.plan.fast_path.file_digest`
    git: str | None  #: :func:`labels_module.git_state` when the version may come from git
    texts: Mapping[str, str]  #: the metadata files there are, by name


def tree_state(inputs: build_record.Inputs, source: SourceArchive,
               project_dir: Path) -> TreeState:
    """The state of this build's tree, from its archive (git is asked only when it matters)."""
    texts = {}
    for name in fast_path.METADATA_FILES:
        data = source.read(name)
        if data is not None:
            texts[name] = data.decode("utf-8", "replace")
    git = labels_module.git_state(project_dir) if fast_path.version_from_git(texts) else None
    return TreeState(build_record.input_digests(inputs),
                     {path: fast_path.file_digest(mode, what)
                      for path, (mode, what) in source.index().items()}, git, texts)


def slot(directory: Path, project_dir: Path) -> Path:
    """The file of a project directory's fast record, in the build records' directory."""
    name = hashlib.sha256(str(project_dir.resolve()).encode()).hexdigest()[:32]
    return directory / ("fast-%s.json" % name)


def read_record(path: Path) -> FastRecord | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return fast_path.from_json(json.load(handle))
    except (OSError, ValueError):
        return None


def write_record(path: Path, record: FastRecord, reporter: Reporter) -> None:
    try:
        write_whole(path, json.dumps(fast_path.to_json(record), sort_keys=True).encode())
    except OSError as error:
        reporter.note("cannot write %s (%s): the next app change builds the project's wheel"
                      % (path, error.strerror or error))


def keep(path: Path, state: TreeState, runtime: Runtime, plan: Plan,
         built: Mapping[str, str], build_key: str, reporter: Reporter) -> None:
    """After a full build: what the next build needs to patch its images (or why it cannot)."""
    write_record(path, recorded(state, runtime, plan, built, build_key), reporter)


def recorded(state: TreeState, runtime: Runtime, plan: Plan, built: Mapping[str, str],
             build_key: str) -> FastRecord:
    """The fast record of a full build whose images ``built`` ``runtime`` loaded."""
    unavailable = None
    images = []
    for image in plan.images:
        loaded = runtime.loaded(built[image.name])
        if loaded is None:
            unavailable = "%s is built from %s" % (image.name, image.dockerfile) \
                if image.dockerfile else "%s was not loaded by this build" % image.name
            break
        images.append(RecordedConfig(image.name, loaded.config.decode("utf-8")))
    layer, copies = "", {}
    if unavailable is None:
        base = runtime.loaded(built[plan.base.name])
        assert base is not None
        kinds = [new.kind for new, _ in base.layers]
        project = [(new, tar) for new, tar in base.layers if new.kind == "project"]
        if "leftovers" in kinds:
            unavailable = "the base image has files that no or several RECORDs claim"
        elif len(project) != 1:
            unavailable = "the project's distribution has no layer of its own"
        else:
            layer = project[0][0].diff_id
            with open(project[0][1], "rb") as handle:
                files = {entry.path: entry.digest for entry in read_tree(handle, "/")
                         .entries.values() if entry.kind == "file"}
            unavailable = fast_path.layer_unavailable(list(files))
            copies = fast_path.copies(state.source, files)
    if unavailable is not None:
        return FastRecord(state.inputs, state.source, state.git, unavailable=unavailable,
                          build=build_key)
    return FastRecord(state.inputs, state.source, state.git, layer, copies, tuple(images),
                      build=build_key)


def rebuild(engine: Engine, reporter: Reporter, options: Options, checked: BuildInputs,
            records: build_record.RecordStore, path: Path, state: TreeState,
            source: SourceArchive, build_key: str) -> Result | None:
    """The images of this build made by patching the last build's, or None (said why)."""
    with reporter.timed("the fast path's check"):
        record = read_record(path)
        decision = fast_path.decide(record, state.inputs, state.source, state.git,
                                    state.texts, checked.backend[0], checked.static.name)
        if isinstance(decision, str):
            reporter.say("Full build: %s." % decision)
            return None
        assert record is not None
        try:
            last, documents, layers = _last_build(engine, records, record)
        except FullPath as why:
            reporter.say("Full build: %s: every image is built." % why)
            return None
    run = Run(engine, checked.work_name)
    succeeded = fell_back = False
    try:
        with reporter.step("Patch the project's layer: %s" % ", ".join(decision.changed)):
            new, tar = _patch_layer(engine, run, layers, record, decision, source,
                                    last.images[0].id, checked.epoch)
            reporter.say("    %s, in place of %s" % (new[:19], record.layer[:19]))
        configs = [fast_path.patch_config(image.config, record.layer, new)
                   for image in record.images]
        archived = [ArchivedImage(config.encode("utf-8"), (run.work_tag(
            image_name(image.script or "base")),))
            for config, image in zip(configs, last.plan.images)]
        work_tags = {image.name: archive.tags[0]
                     for image, archive in zip(last.plan.images, archived)}
        files = {new: tar}
        for archive in archived:
            above = archive.diff_ids[archive.diff_ids.index(new) + 1:]
            files.update((diff_id, layers[diff_id]) for diff_id in above)
        with reporter.step("Load %d images with the new layer" % len(archived)):
            load_archive(engine, layers_cache(), reporter, archived, files,
                         last.images[0].id, last.plan.base.name)
        ids = {image.name: archive.id for image, archive in zip(last.plan.images, archived)}
        for name, image_id in ids.items():
            if engine.image(image_id) is None:
                raise BuildError("Loading %s gave no image %s: run build-images again."
                                 % (name, image_id))
        if options.smoke_test:
            smoke_test_all(engine, reporter, run, last.plan, work_tags)
        with interrupts.deferred():
            with reporter.step("Tag images"):
                tag_all(engine, last.plan.all_names(ids))
            succeeded = True
        sbom_paths = {image.name: Path(image.sbom or "") for image in last.images}
        images = record_build(records, reporter, build_key, last.plan, ids, sbom_paths,
                              documents)
        write_record(path, dataclasses.replace(
            record, source=state.source, layer=new, build=build_key,
            images=tuple(RecordedConfig(image.name, config)
                         for image, config in zip(record.images, configs))), reporter)
        digests = push_all(engine, reporter, list(last.plan.all_names(ids))) \
            if options.push else {}
        return result_of(engine, last.plan, images, digests)
    except FullPath as why:
        fell_back = True
        reporter.say("Full build: %s: the project's wheel is built." % why)
        return None
    finally:
        with interrupts.deferred():
            run.remove_containers()
            run.drop_work_tags()
        if not (succeeded or fell_back):
            reporter.say("Build failed; no image was tagged.")


def layers_cache() -> LayerCache:
    return LayerCache(layers_dir())


def _last_build(engine: Engine, records: build_record.RecordStore, record: FastRecord
                ) -> tuple[build_record.Record, dict[str, bytes], dict[str, Path]]:
    """The last build's record, SBOM documents and the layer tars the patch needs.

    FullPath when its images are no longer what it made, its SBOMs are gone,
    or the layer cache lacks a tar.
    """
    last = records.get(record.build)
    if last is None or [image.name for image in last.images] != \
            [image.name for image in record.images]:
        raise FullPath("the record of the last build is gone")
    for image in last.images:
        info = engine.image(image.name)
        if info is None or info.id != image.id:
            raise FullPath("%s is no longer the image the last build made" % image.name)
    documents = {}
    for image in last.images:
        data = build_record.read_file(image.sbom) if image.sbom else None
        if data is None or "sha256:" + hashlib.sha256(data).hexdigest() != image.sbom_digest:
            raise FullPath("the SBOM of %s is gone or was changed" % image.name)
        documents[image.name] = data
    cache = layers_cache()
    wanted = [record.layer]
    for config in record.images:
        diff_ids = json.loads(config.config)["rootfs"]["diff_ids"]
        if record.layer not in diff_ids:
            raise FullPath("the image %s has no project layer" % config.name)
        wanted.extend(diff_ids[diff_ids.index(record.layer) + 1:])
    layers = {}
    for diff_id in dict.fromkeys(wanted):
        tar = cache.existing_tar(diff_id)
        if tar is None:
            raise FullPath("the layer cache no longer has the layer %s" % diff_id[:19])
        layers[diff_id] = tar
    return last, documents, layers


def _patch_layer(engine: Engine, run: Run, layers: Mapping[str, Path], record: FastRecord,
                 patch: Patch, source: SourceArchive, base_id: str, epoch: int
                 ) -> tuple[str, Path]:
    """The project's layer with the patch's files, their byte code and RECORD rewritten."""
    with contextlib.ExitStack() as stack:
        tree = read_tree(stack.enter_context(open(layers[record.layer], "rb")), "/")
        replaced: dict[str, bytes] = {}
        for layer_path, source_path in sorted(patch.files.items()):
            data = source.read(source_path)
            if data is None:
                raise FullPath("%s cannot be read from the source" % source_path)
            replaced[layer_path] = data
        compiled: dict[str, str] = {}
        for path in tree.entries:
            module = pyc_source(path)
            if module in replaced:
                if module in compiled.values():
                    raise FullPath("%s has byte code of several kinds" % module)
                compiled[path] = module
        replaced.update(_compile(engine, run, base_id, compiled, replaced, epoch))
        records = [path for path in tree.entries if is_installed_record(path)]
        if len(records) != 1:
            raise FullPath("the project's layer has %d RECORD files" % len(records))
        site = posixpath.dirname(posixpath.dirname(records[0]))
        try:
            replaced[records[0]] = fast_path.rewrite_record(
                tree.read(tree.entries[records[0]]),
                {posixpath.relpath(path, site): data for path, data in replaced.items()
                 if path not in compiled})
        except (KeyError, ValueError) as error:
            raise FullPath("RECORD does not list the changed files as pip writes them (%s)"
                           % error) from None
        patched = Tree(tree.spool, tree.entries)
        for path, data in replaced.items():
            entry = tree.entries.get(path)
            if entry is None or entry.kind != "file":
                raise FullPath("%s is not a file of the project's layer" % path)
            patched.entries[path] = dataclasses.replace(
                entry, size=len(data), data=data, offset=-1, spool=None,
                digest=hashlib.sha256(data).hexdigest())
        return layers_cache().write_tar(
            lambda out: write_layer(patched, list(patched.entries.values()), epoch, out))


def _compile(engine: Engine, run: Run, base_id: str, compiled: Mapping[str, str],
             sources: Mapping[str, bytes], epoch: int) -> dict[str, bytes]:
    """pyc path -> the byte code pip would write for its module, compiled in the image."""
    if not compiled:
        return {}
    files = {WORK + "/compile_pyc.py": container_tools.source("compile_pyc.py")}
    pairs = []
    for number, (pyc, module) in enumerate(sorted(compiled.items())):
        files["%s/src/%d.py" % (WORK, number)] = sources[module]
        pairs.append(["%s/src/%d.py" % (WORK, number), "/" + module])
    files[WORK + "/list.json"] = json.dumps(pairs).encode()
    by_module = {"/" + module: pyc for pyc, module in compiled.items()}
    with engine.container(base_id, run.container_name("compile")) as container:
        container.put_files(files)
        try:
            output = container.run("%s/bin/python %s/compile_pyc.py %s/list.json"
                                   % (VENV, WORK, WORK), {"SOURCE_DATE_EPOCH": str(epoch)})
        except CommandFailed as failure:
            lines = [line for line in failure.output.splitlines() if line.strip()]
            raise FullPath("a changed module does not compile (%s)"
                           % (lines[-1].strip() if lines else "no output")) from None
    found = {}
    for line in output.splitlines():
        if line.startswith(PYC_MARK):
            installed, _, data = line[len(PYC_MARK):].rpartition(" ")
            if installed in by_module:
                found[by_module[installed]] = base64.b64decode(data)
    if set(found) != set(compiled):
        raise FullPath("the byte code of %d modules is missing"
                       % len(set(compiled) - set(found)))
    return found
