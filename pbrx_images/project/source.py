"""The project's source tree, packed for the build container.

The tree is read, never written: the archive goes into the container through
the Docker API, and anything a build writes (``build/``, ``*.egg-info``,
caches) is written there.  Entries are owned by root in the archive so git
inside the container trusts the checkout (pbr needs git for versions).

What is not source stays out (:func:`left_out`): tool caches, virtualenvs,
and the ``build/`` directory an earlier setuptools build outside
build-images left at the top of the tree: setuptools packs whatever it
finds in ``build/lib``, so a module deleted since would come back in the
image.

Git's object files are named by the hash of what they hold, so the digest
takes their name and size and their content is read only when the archive
is (:attr:`SourceArchive.data`): a rebuild with nothing changed does not read
a big repository's history.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import io
import os
import re
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from pbrx_images.errors import ProjectError

#: Directories that are never part of a build: tool caches and virtualenvs.
EXCLUDED_NAMES = frozenset({
    ".tox", ".nox", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
    ".eggs",
})
#: What setuptools (and distutils) make in ``build/``: ``lib``, ``lib.linux-x86_64-cpython-311``,
#: ``bdist.linux-x86_64``, ``temp.*``, ``scripts-3.11``.
SETUPTOOLS_BUILD_ENTRY = re.compile(r"(lib|bdist|temp|scripts)([.-].*)?")
#: Files of a git repository whose name is the hash of their content: loose
#: objects and packs (SHA-1 or SHA-256 names), relative to the repository.
GIT_NAMED_BY_CONTENT = re.compile(
    r"objects/(?:[0-9a-f]{2}/(?:[0-9a-f]{38}|[0-9a-f]{62})"
    r"|pack/pack-(?:[0-9a-f]{40}|[0-9a-f]{64})\.(?:pack|idx|rev))")
#: (tar entry, its content or the path to read it from when the archive is made)
_Entry = tuple[tarfile.TarInfo, Union[bytes, str, None]]  # (a runtime alias: no "|" on 3.9)


@dataclass(frozen=True)
class SourceArchive:
    """A tar archive of the tree under ``prefix/`` and a digest of its content."""

    digest: str
    files: int
    #: directories left out besides :data:`EXCLUDED_NAMES`, relative to the
    #: tree, and why (:func:`left_out`), e.g. ``(("env", "a virtualenv"),)``
    left_out: tuple[tuple[str, str], ...] = ()
    _entries: tuple[_Entry, ...] = field(default=(), repr=False, compare=False)
    prefix: str = "src"  #: the directory the archive holds the tree under

    def _relative(self, info: tarfile.TarInfo) -> str | None:
        """An entry's path in the tree (None for the top directory itself)."""
        name = info.name
        if name == self.prefix:
            return None
        return name[len(self.prefix) + 1:] if name.startswith(self.prefix + "/") else name

    def index(self) -> dict[str, tuple[int, str]]:
        """Path in the tree -> (mode, what it holds) of each entry but directories.

        What it holds: the sha256 of a regular file's content; ``link:``
        and the target of a symbolic link; for a git object, ``git object,
        size N`` (its name is its hash).  What the fast path of an app
        change compares, file by file (:mod:`pbrx_images.plan.fast_path`).
        """
        found = {}
        for info, content in self._entries:
            path = self._relative(info)
            if path is None or info.isdir():
                continue
            if isinstance(content, bytes):
                what = hashlib.sha256(content).hexdigest()
            elif isinstance(content, str):
                what = "git object, size %d" % info.size
            else:
                what = "link:" + info.linkname
            found[path] = (info.mode & 0o7777, what)
        return found

    def read(self, path: str) -> bytes | None:
        """The content of the regular file ``path`` of the tree (no git object), or None."""
        for info, content in self._entries:
            if isinstance(content, bytes) and self._relative(info) == path:
                return content
        return None

    @functools.cached_property
    def data(self) -> bytes:
        """The archive, made on first use (git's objects are read then)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for info, content in self._entries:
                if isinstance(content, str):  # a git object, read now
                    object_path = content
                    try:
                        with open(object_path, "rb") as handle:
                            content = handle.read()
                    except OSError as error:
                        raise ProjectError(
                            "Cannot read %s (%s): did git change the repository (git gc) "
                            "meanwhile? Try again." % (object_path, error.strerror or error)
                        ) from error
                    info = copy.copy(info)  # (TarInfo.replace is Python >= 3.11.4)
                    info.size = len(content)
                if content is None:
                    archive.addfile(info)
                else:
                    archive.addfile(info, io.BytesIO(content))
        return buffer.getvalue()


def archive_source(project_dir: Path, prefix: str = "src") -> SourceArchive:
    """Pack ``project_dir`` (minus what :func:`left_out`) as ``prefix/...``.

    The digest covers paths, modes, file contents and link targets (not
    times), so an unchanged tree gives the same digest.
    """
    digest = hashlib.sha256()
    count = 0
    root = str(project_dir)
    skipped: list[tuple[str, str]] = []
    entries: list[_Entry] = []
    # (a TarFile only to make entries: gettarinfo)
    with tarfile.open(fileobj=io.BytesIO(), mode="w", format=tarfile.PAX_FORMAT) as archive:
        for current, dirs, files in os.walk(root, onerror=_walk_error):
            relative_dir = os.path.relpath(current, root)
            kept = []
            for name in sorted(dirs):
                if name in EXCLUDED_NAMES:
                    continue
                why = left_out(os.path.join(current, name), relative_dir == ".")
                if why:
                    skipped.append((name if relative_dir == "." else
                                    os.path.join(relative_dir, name), why))
                    continue
                kept.append(name)
            dirs[:] = kept
            base = prefix if relative_dir == "." else prefix + "/" + relative_dir
            _add(archive, current, base, digest, entries)
            links = [d for d in dirs if os.path.islink(os.path.join(current, d))]
            dirs[:] = [d for d in dirs if d not in links]  # links are entries, not walked
            git = _git_relative(relative_dir)
            for name in sorted(files + links):
                named_by_content = git is not None and \
                    GIT_NAMED_BY_CONTENT.fullmatch(git + name) is not None
                count += _add(archive, os.path.join(current, name), base + "/" + name, digest,
                              entries, named_by_content)
    return SourceArchive(digest.hexdigest(), count, tuple(skipped), tuple(entries), prefix)


def _git_relative(relative_dir: str) -> str | None:
    """``relative_dir`` (of the tree) relative to the top ``.git``, with a slash; or None."""
    parts = relative_dir.split(os.sep)
    if parts[0] != ".git":
        return None
    return "".join(part + "/" for part in parts[1:])


def left_out(path: str, top: bool) -> str | None:
    """Why the directory ``path`` (``top``: at the top of the tree) is no source, if it is not.

    A virtualenv (it has ``pyvenv.cfg``), whatever its name; at the top, a
    ``build`` directory that holds only what setuptools makes there
    (:data:`SETUPTOOLS_BUILD_ENTRY`): one with anything else may hold
    sources, and stays.  A symbolic link is an entry like a file, never
    left out.
    """
    if os.path.islink(path):
        return None
    if os.path.isfile(os.path.join(path, "pyvenv.cfg")):
        return "a virtualenv"
    if not top or os.path.basename(path) != "build":
        return None
    try:
        entries = os.listdir(path)
    except OSError:
        return None  # the walk says what cannot be read
    if entries and all(SETUPTOOLS_BUILD_ENTRY.fullmatch(name) for name in entries):
        return "what an earlier setuptools build left"
    return None


def _walk_error(error: OSError) -> None:
    raise ProjectError("Cannot read %s (%s): make it readable, or remove it from the "
                       "project, and try again." % (error.filename, error.strerror or error)
                       ) from error


def _add(archive: tarfile.TarFile, path: str, arcname: str, digest: "hashlib._Hash",
         entries: list[_Entry], named_by_content: bool = False) -> int:
    """Add ``path`` to ``entries`` and ``digest``; 1 for a regular file, else 0.

    ``named_by_content``: the file's name says what it holds (a git
    object): its size stands for its content, which is read later.
    """
    try:
        info = archive.gettarinfo(path, arcname)
        mode = os.lstat(path).st_mode
        data = None
        if stat.S_ISREG(mode) and not named_by_content:
            with open(path, "rb") as handle:
                data = handle.read()
    except OSError as error:
        raise ProjectError("Cannot read %s (%s): make it readable, or remove it from the "
                           "project, and try again." % (path, error.strerror or error)) from error
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
        return 0  # sockets, fifos and devices have no place in a build
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    digest.update(("%s\0%o\0%s\0" % (arcname, info.mode, info.linkname))
                  .encode("utf-8", "surrogateescape"))
    if stat.S_ISREG(mode) and named_by_content:
        digest.update(b"named by content, size %d" % info.size)
        entries.append((info, path))
        return 1
    if data is not None:
        digest.update(hashlib.sha256(data).digest())
    entries.append((info, data))
    return 1 if data is not None else 0
