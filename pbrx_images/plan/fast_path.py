"""The fast path of an app change: whether the last build's project layer can be patched.

Pure code.  A full build of a project keeps a :class:`FastRecord`: the
digest of every file of the source tree, which files of the project's
installed distribution (its layer, as pip installed the wheel) are verbatim
copies of which source files, and the configuration of every image it
loaded.  When only such files change, the next build needs neither the
builder container nor the build backend: the backend would have copied the
new files into the wheel and pip would have copied them out of it, so the
layer is the old one with those files replaced, their byte code compiled
again by the image's interpreter, and RECORD's hashes rewritten as pip
writes them (:func:`rewrite_record`).  The images are the old ones with that
one layer replaced: nothing else in them depends on the changed files.

:func:`decide` proves it or says, in one line, why not.  It is not proven,
and the project's wheel is built, when:

* another input of the build changed (build-images' code, the base image,
  constraints, bindep, options, pip settings, ``SOURCE_DATE_EPOCH``, the git
  commit the labels name);
* a file was added or removed (the backend decides what goes in the wheel);
* a changed file is not installed as it is (``setup.cfg``, a C source, a
  script whose first line pip rewrites) or its mode changed;
* a changed file is one the backend reads for the metadata: named in
  ``pyproject.toml``, ``setup.cfg`` or ``setup.py`` (``attr:``, ``file:``,
  ``readme``, hatch's or pdm's version ``path``), named as a string in
  ``setup.py``, or the module flit takes the version and summary from;
* the version comes from git (pbr, setuptools-scm, hatch-vcs and the like, see
  :func:`version_from_git`) and git's answer changed: HEAD, the tags, the
  tracked files, or whether the tree has uncommitted changes (and the date,
  which setuptools-scm puts in the version of such a tree);
* the project's layer had compiled extensions or was not a layer of its
  own (:attr:`FastRecord.unavailable`).
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from pbrx_images.oci.image_archive import canonical_json
from pbrx_images.oci.layer import pyc_source

#: Bump when what a fast record holds changes.
RECIPE = "fast-1"
#: Files that hold the metadata, whatever the backend.
METADATA_FILES = ("pyproject.toml", "setup.cfg", "setup.py")
#: Words that, in a metadata file, say the version (or the file list) may come from git.
GIT_VERSION_WORDS = re.compile(
    r"pbr|scm|vcs|versioningit|dunamai|git[-_]versioning|versioneer|dynamic[-_]versioning",
    re.IGNORECASE)
#: What an input of the build is called in a reason, by its name in the record's key.
INPUT_NAMES = {
    "recipe": "build-images' record format",
    "tool": "build-images' code",
    "constraints": "the constraints file",
    "bindep": "bindep.txt",
    "base": "the base image",
    "options": "the options",
    "pip_files": "the pip configuration",
    "pip_environment": "the pip settings in the environment",
    "proxy_environment": "the proxy settings",
    "source_date_epoch": "SOURCE_DATE_EPOCH",
    "git": "the git commit (in the labels)",
}
WHEEL_IS_BUILT = "the project's wheel is built"


@dataclass(frozen=True)
class RecordedConfig:
    """One image the build loaded: its name and the configuration whose digest is its ID."""

    name: str
    config: str  #: the configuration JSON, exactly as loaded


@dataclass(frozen=True)
class FastRecord:
    """What the next build needs to patch this build's images after an app change."""

    inputs: Mapping[str, str]  #: digest of each input but the source (see :data:`INPUT_NAMES`)
    source: Mapping[str, str]  #: source file (relative path) -> :func:`file_digest`
    git: str | None  #: :func:`version_from_git`'s state of the tree, when that matters
    #: the project's layer: its diff ID and its tar's path in the image, e.g. "opt/venv/..."
    layer: str = ""
    copies: Mapping[str, str] = field(default_factory=dict)  #: layer path -> source path
    images: Sequence[RecordedConfig] = ()  #: every image, in the plan's order
    #: why the images cannot be patched (then nothing else is kept), or None
    unavailable: str | None = None
    build: str = ""  #: the key of the build's record (:mod:`pbrx_images.cache.build_record`)


def file_digest(mode: int, content: str) -> str:
    """What a source file is, for the record: its permission bits and what it holds.

    ``content`` is the sha256 of a regular file's content (or what
    :meth:`~pbrx_images.project.source.SourceArchive.index` says of another entry).
    """
    return "%o:%s" % (mode & 0o7777, content)


def content_of(digest: str) -> str:
    return digest.partition(":")[2]


def copies(source: Mapping[str, str], layer_files: Mapping[str, str]) -> dict[str, str]:
    """Layer path -> source path, for each installed file that is a verbatim copy.

    ``layer_files`` are the layer's regular files by the sha256 of their
    content.  A layer file is a copy of the one source file with the same
    content whose path ends its path (``pkg/mod.py`` for
    ``opt/venv/lib/python3.11/site-packages/pkg/mod.py``, ``src/pkg/mod.py``
    too); one that matches several, or a ``dist-info`` file, is no copy.
    """
    by_content: dict[str, list[str]] = {}
    for path, digest in source.items():
        by_content.setdefault(content_of(digest), []).append(path)
    found = {}
    for path, digest in layer_files.items():
        if ".dist-info/" in path or pyc_source(path) is not None:  # (pip's, not copies)
            continue
        candidates = [candidate for candidate in by_content.get(digest, ())
                      if _ends_with(path, candidate) or _ends_with(path, _without_src(candidate))]
        if len(candidates) == 1:
            found[path] = candidates[0]
    return found


def _without_src(path: str) -> str:
    head, _, rest = path.partition("/")
    return rest if head in ("src", "lib") and rest else path


def _ends_with(path: str, tail: str) -> bool:
    return path == tail or path.endswith("/" + tail)


def version_from_git(texts: Mapping[str, str]) -> bool:
    """True when the metadata files say the version (or the file list) may come from git."""
    return any(GIT_VERSION_WORDS.search(text) for text in texts.values())


def module_files(dotted: str) -> tuple[str, ...]:
    """The source files a module name may be, e.g. ``a.b`` -> ``a/b.py``, ``a/b/__init__.py``."""
    path = dotted.replace(".", "/")
    return (path + ".py", path + "/__init__.py")


def metadata_reads(path: str, texts: Mapping[str, str], backend: str,
                   project: str | None) -> str | None:
    """Why the backend may read the source file ``path`` for the metadata, or None."""
    for name, text in texts.items():
        if path in text or _without_src(path) != path and _without_src(path) in text:
            return "%s names it" % name
    for name, text in texts.items():
        for match in re.finditer(r"attr\s*[:=]\s*[\"']?([\w.]+)", text):
            module = match.group(1).rpartition(".")[0]
            if module and any(_ends_with(path, candidate) for candidate in module_files(module)):
                return "%s takes an attribute of it" % name
    setup_py = texts.get("setup.py")
    if setup_py is not None and re.search(r"[\"']%s[\"']" % re.escape(posixpath.basename(path)),
                                          setup_py):
        return "setup.py names it"
    if backend.startswith("flit") and project:
        module = project.replace("-", "_").replace(".", "_").lower()
        if any(_ends_with(path, candidate) or _ends_with(path, "src/" + candidate)
               for candidate in module_files(module)):
            return "flit takes the version and summary from it"
    return None


@dataclass(frozen=True)
class Patch:
    """The files to replace in the project's layer: layer path -> source path."""

    files: Mapping[str, str]
    changed: tuple[str, ...]  #: the changed source files


def decide(record: FastRecord | None, inputs: Mapping[str, str], source: Mapping[str, str],
           git: str | None, texts: Mapping[str, str], backend: str,
           project: str | None) -> Patch | str:
    """The patch of the recorded build's project layer, or why there is none (one line).

    ``inputs``, ``source`` and ``git`` are this build's, as the record has
    them; ``texts`` the metadata files (:data:`METADATA_FILES`) that exist;
    ``backend`` the build backend's name; ``project`` the project's name.
    """
    if record is None:
        return "no earlier build of this project to start from: " + WHEEL_IS_BUILT
    if record.unavailable:
        return "%s: %s" % (record.unavailable, WHEEL_IS_BUILT)
    for name in sorted(set(inputs) | set(record.inputs)):
        if inputs.get(name) != record.inputs.get(name):
            return "%s changed since the last build: %s" % (
                INPUT_NAMES.get(name, name), "every image is built")
    if record.git != git:
        return ("the version comes from git, and git's answer may have changed (HEAD, tags, "
                "tracked files or uncommitted changes): " + WHEEL_IS_BUILT)
    if dict(source) == dict(record.source):
        return ("the source is the last build's, but its images are gone or were changed: "
                "every image is built")
    old = {path: digest for path, digest in record.source.items() if not _in_git(path)}
    new = {path: digest for path, digest in source.items() if not _in_git(path)}
    for path in sorted(set(new) - set(old)):
        return "%s is new: %s" % (path, WHEEL_IS_BUILT)
    for path in sorted(set(old) - set(new)):
        return "%s was removed: %s" % (path, WHEEL_IS_BUILT)
    changed = tuple(sorted(path for path in new if new[path] != old[path]))
    if not changed:
        return "only git's own files changed (.git/): " + WHEEL_IS_BUILT
    installed: dict[str, list[str]] = {}
    for layer_path, source_path in record.copies.items():
        installed.setdefault(source_path, []).append(layer_path)
    files: dict[str, str] = {}
    for path in changed:
        if path in METADATA_FILES:
            return "%s changed: %s" % (path, WHEEL_IS_BUILT)
        if path not in installed:
            return "%s changed, and it is not installed as it is: %s" % (path, WHEEL_IS_BUILT)
        if new[path].partition(":")[0] != old[path].partition(":")[0]:
            return "the mode of %s changed: %s" % (path, WHEEL_IS_BUILT)
        why = metadata_reads(path, texts, backend, project)
        if why is not None:
            return "%s changed, and the metadata may come from it (%s): %s" % (
                path, why, WHEEL_IS_BUILT)
        files.update((layer_path, path) for layer_path in installed[path])
    return Patch(files, changed)


def _in_git(path: str) -> bool:
    return path == ".git" or path.startswith(".git/")


def record_hash(data: bytes) -> str:
    """A file's hash as RECORD has it: ``sha256=`` and the urlsafe base64 without padding."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


def rewrite_record(record: bytes, replaced: Mapping[str, bytes]) -> bytes:
    """RECORD with the hash and size of each file of ``replaced`` (RECORD's paths) rewritten.

    The other lines stay as pip wrote them.  KeyError when a replaced file
    is not listed, ValueError when a line is not one pip writes for it.
    """
    lines = record.decode("utf-8").splitlines(keepends=True)
    left = set(replaced)
    out = []
    for line in lines:
        rows = list(csv.reader(io.StringIO(line)))
        row = rows[0] if rows else []
        if row and row[0] in replaced:
            if len(row) != 3 or "," in row[0] or '"' in row[0]:
                raise ValueError("RECORD line of %s: %r" % (row[0], line))
            data = replaced[row[0]]
            ending = line[len(line.rstrip("\r\n")):]
            line = "%s,%s,%d%s" % (row[0], record_hash(data), len(data), ending)
            left.discard(row[0])
        out.append(line)
    if left:
        raise KeyError(sorted(left)[0])
    return "".join(out).encode("utf-8")


#: Files of compiled extensions: a change to their sources needs the backend's compiler.
COMPILED = re.compile(r"\.(so|pyd|dylib)(\.[\d.]+)?$")


def layer_unavailable(layer_files: Sequence[str]) -> str | None:
    """Why a project layer of these files cannot be patched, or None."""
    for path in sorted(layer_files):
        if COMPILED.search(path):
            return "the project has compiled extensions (%s)" % posixpath.basename(path)
    return None


def patch_config(config: str, old: str, new: str) -> str:
    """An image configuration with the layer ``old`` replaced by ``new`` in its diff IDs.

    The configuration must be canonical JSON (as
    :func:`pbrx_images.oci.image_archive.image_config` writes it), so that
    nothing else in it changes; ValueError if it is not, or has no ``old``.
    """
    document = json.loads(config)
    if canonical(document) != config:
        raise ValueError("the configuration is not canonical JSON")
    diff_ids = document["rootfs"]["diff_ids"]
    if old not in diff_ids:
        raise ValueError("the configuration has no layer %s" % old)
    document["rootfs"]["diff_ids"] = [new if diff_id == old else diff_id
                                      for diff_id in diff_ids]
    return canonical(document)


def canonical(document: Any) -> str:
    """Canonical JSON (as :func:`pbrx_images.oci.image_archive.canonical_json`), as text."""
    return canonical_json(document).decode("utf-8")


def pyc_path(path: str, cache_tag: str) -> str:
    """``a/b.py`` -> ``a/__pycache__/b.{cache_tag}.pyc`` (importlib's cache_from_source)."""
    head, tail = posixpath.split(path)
    return posixpath.join(head, "__pycache__", "%s.%s.pyc" % (tail[:-3], cache_tag))


def to_json(record: FastRecord) -> dict[str, Any]:
    return {"recipe": RECIPE, "inputs": dict(record.inputs), "source": dict(record.source),
            "git": record.git, "layer": record.layer, "copies": dict(record.copies),
            "images": [{"name": image.name, "config": image.config} for image in record.images],
            "unavailable": record.unavailable, "build": record.build}


def from_json(data: Any) -> FastRecord | None:
    """The record :func:`to_json` wrote, or None when it is not one (of this recipe)."""
    try:
        if data.get("recipe") != RECIPE:
            return None
        images = tuple(RecordedConfig(str(image["name"]), str(image["config"]))
                       for image in data["images"])
        for image in images:
            json.loads(image.config)
        return FastRecord({str(k): str(v) for k, v in dict(data["inputs"]).items()},
                          {str(k): str(v) for k, v in dict(data["source"]).items()},
                          None if data["git"] is None else str(data["git"]), str(data["layer"]),
                          {str(k): str(v) for k, v in dict(data["copies"]).items()}, images,
                          None if data["unavailable"] is None else str(data["unavailable"]),
                          str(data["build"]))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
