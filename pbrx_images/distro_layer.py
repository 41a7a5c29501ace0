"""A layer of what commands changed in a container (``docker diff``), normalised.

Pure code.  The runtime-packages layer (distro packages, the init, an empty
virtualenv) and the layer that creates ``--user`` are made this way: the
commands run in a container that is never committed; :func:`plan_exports`
decides from the container's changes what to read out through the archive
API (each added top-level subtree once, each changed file on its own, only
the metadata of changed directories, via :func:`stat_command`);
:func:`normalise` drops what differs from run to run (:func:`is_noise`),
keeps hard links in a fixed order and rewrites the source mtime in
timestamp-based ``.pyc`` headers (:func:`pyc_with_mtime`) so byte code stays
valid once :func:`pbrx_images.layer.write_layer` sets every mtime to the
build's epoch.  Owners are kept as the files have them.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import shlex
from dataclasses import dataclass
from typing import IO, Iterable, Mapping, Sequence

from pbrx_images.layer import Entry, Tree, pyc_source

#: Trees whose content is only package-manager state of the moment: indexes,
#: downloads, temporary files.  Everything below them is left out (they
#: themselves stay, as directories).
NOISE_TREES = (
    "tmp/", "var/tmp/", "root/.cache/",
    "var/cache/apt/", "var/lib/apt/lists/",  # apt
    "var/cache/apk/",  # apk
    "var/cache/dnf/", "var/cache/yum/", "var/cache/libdnf5/",  # dnf, microdnf, yum
)
#: Trees of logs: their files are left out, their directories (which
#: packages may create with owners of their own) stay.
LOG_TREES = ("var/log/",)
#: Single files: backups of the previous state, and caches with inode
#: numbers or times in them.
NOISE_PATTERNS = (
    "var/lib/dpkg/*-old",
    "var/cache/debconf/*-old",
    "var/cache/ldconfig/aux-cache",
    "var/lib/dnf/history.sqlite*",
)
#: What ``docker diff`` reports for a path.
CHANGED, ADDED, REMOVED = 0, 1, 2
_PYC_MAGIC_PEP552 = 3390  # Python 3.7's first magic number: flags at 4..8, mtime at 8..12


def is_noise(path: str, directory: bool = False) -> bool:
    """True when ``path`` (relative to the root, no leading "/") is left out of the layer."""
    inside = path + "/"
    if any(inside.startswith(tree) and inside != tree for tree in NOISE_TREES):
        return True
    if not directory and any(path.startswith(tree) for tree in LOG_TREES):
        return True
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in NOISE_PATTERNS)


@dataclass
class ExportPlan:
    """What to read out of a container to make the layer of its changes."""

    subtrees: list[str]  #: added paths whose parent is not added: exported whole
    changed: list[str]  #: paths that existed before (files or directories): looked at first
    removed: list[str]  #: paths gone (their parents were not removed): whiteouts


def plan_exports(changes: Iterable[tuple[str, int]]) -> ExportPlan:
    """What to export, from ``(absolute path, kind)`` pairs as ``docker diff`` lists them.

    Noise (:func:`is_noise`) is neither exported nor whited out; a path
    under an added or removed one is covered by it.
    """
    kinds = {path.strip("/"): kind for path, kind in changes if path.strip("/")}

    def covered(path: str, kind: int) -> bool:
        return any(kinds.get(parent) == kind for parent in _parents(path))

    subtrees, changed, removed = [], [], []
    for path, kind in sorted(kinds.items()):
        if kind == REMOVED:
            if not covered(path, REMOVED) and not is_noise(path):
                removed.append(path)
        elif kind == ADDED:
            if not covered(path, ADDED) and not is_noise(path, directory=True):
                subtrees.append(path)
        elif not covered(path, ADDED) and not is_noise(path, directory=True):
            changed.append(path)
    return ExportPlan(subtrees, changed, removed)


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


#: Printed for each path by :func:`stat_command`: type, owner, group, octal mode, name.
_STAT_FORMAT = "%F|%u|%g|%a|%n"


def stat_command(paths: Sequence[str]) -> str:
    """A sh command printing :data:`_STAT_FORMAT` for each of ``paths`` (relative).

    GNU coreutils' and busybox's ``stat`` both know these; neither follows
    symbolic links without ``-L``.
    """
    quoted = " ".join(shlex.quote(path) for path in paths)
    return "cd / && stat -c %s -- %s" % (shlex.quote(_STAT_FORMAT), quoted)


def parse_stat(output: str, paths: Sequence[str]) -> dict[str, Entry]:
    """The directories among ``paths``, as entries, from :func:`stat_command`'s output."""
    wanted = set(paths)
    found: dict[str, Entry] = {}
    for line in output.splitlines():
        parts = line.split("|", 4)
        if len(parts) != 5 or parts[4] not in wanted:
            continue
        kind, uid, gid, mode, path = parts
        if kind == "directory":
            found[path] = Entry(path, "dir", int(mode, 8) & 0o7777, uid=int(uid), gid=int(gid))
    return found


def pyc_with_mtime(data: bytes, mtime: int, source_size: int | None = None) -> bytes | None:
    """``data`` (a ``.pyc``) with ``mtime`` as its source's mtime; None if not timestamp-based.

    Python 3.7+ (PEP 552): magic, flags at 4..8 (0: timestamp-based; hash-based
    ones are left alone), mtime at 8..12, source size at 12..16.  Python 3.0
    to 3.6 and Python 2: mtime at 4..8.  With ``source_size``, a header that
    names another size (stale byte code) is left alone too.
    """
    if len(data) < 8 or data[2:4] != b"\r\n":
        return None
    magic = int.from_bytes(data[0:2], "little")
    stamp = (mtime & 0xFFFFFFFF).to_bytes(4, "little")
    if _PYC_MAGIC_PEP552 <= magic < 10000:
        if len(data) < 16 or int.from_bytes(data[4:8], "little") != 0:
            return None
        if source_size is not None and \
                int.from_bytes(data[12:16], "little") != source_size & 0xFFFFFFFF:
            return None
        return data[:8] + stamp + data[12:]
    if 3000 <= magic < _PYC_MAGIC_PEP552 and source_size is not None and len(data) >= 12 and \
            int.from_bytes(data[8:12], "little") != source_size & 0xFFFFFFFF:
        return None
    return data[:4] + stamp + data[8:]


def normalise(tree: Tree, mtime: int) -> dict[str, Entry]:
    """The entries of ``tree`` that go into the layer.

    Noise is dropped; each set of hard links gets its content at the path
    that sorts first (a tar needs a link's target before the link, and
    ``docker load`` applies entries in order); a timestamp-based ``.pyc``
    whose source is in the tree gets ``mtime`` as its source mtime.
    """
    entries = tree.entries
    result = {path: entry for path, entry in entries.items()
              if entry.kind != "link" and not is_noise(path, entry.kind == "dir")}
    groups: dict[str, list[str]] = {}
    for path, entry in entries.items():
        if entry.kind == "link":
            target = entries.get(entry.linkname)
            if target is not None and target.kind == "file":
                groups.setdefault(entry.linkname, [entry.linkname]).append(path)
    for target, members in groups.items():
        kept = sorted(path for path in members if not is_noise(path))
        if not kept:
            continue
        source = entries[target]
        result[kept[0]] = dataclasses.replace(source, path=kept[0])
        for path in kept[1:]:
            result[path] = Entry(path, "link", source.mode, linkname=kept[0], uid=source.uid,
                                 gid=source.gid)
    for path, entry in list(result.items()):
        source_path = pyc_source(path) if entry.kind == "file" else None
        source = result.get(source_path) if source_path else None
        if source is None or source.kind != "file" or entry.size > 1 << 24:
            continue
        data = pyc_with_mtime(tree.read(entry), mtime, source.size)
        if data is not None:
            result[path] = dataclasses.replace(entry, data=data, size=len(data), offset=-1,
                                               digest=hashlib.sha256(data).hexdigest())
    return result


class Window:
    """A read-only view of ``[start, end)`` of a file, as a file from offset 0.

    Every export of a layer goes into one spool file; each gets a window,
    so :func:`pbrx_images.layer.read_tree` reads it as if it were alone.
    """

    def __init__(self, spool: IO[bytes], start: int, end: int) -> None:
        self.spool = spool
        self.start = start
        self.end = end
        self.position = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.position, 2: self.end - self.start}[whence]
        self.position = max(base + offset, 0)
        return self.position

    def tell(self) -> int:
        return self.position

    def read(self, size: int = -1) -> bytes:
        left = self.end - self.start - self.position
        size = left if size is None or size < 0 else min(size, left)
        if size <= 0:
            return b""
        self.spool.seek(self.start + self.position)
        data = self.spool.read(size)
        self.position += len(data)
        return data


def layer_paths(entries: Mapping[str, Entry]) -> list[str]:
    """Every path of the layer, directories included (their owners and modes count)."""
    return sorted(entries)
