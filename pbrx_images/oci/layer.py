"""Image layers: a virtualenv split into one layer per distribution, as tars.

Pure code.  A :class:`Tree` is the content of a directory exported from a
container (an archive from the Docker API, spooled to a temporary file);
:func:`split` decides from each distribution's ``*.dist-info/RECORD`` which
changed file belongs to which layer; :func:`write_layer` writes a layer as a
normalised tar (sorted entries, owners as the entries have them with empty
names, one fixed mtime), so the same files always give the same digest.

Every kind of entry a package may leave is kept: files, directories,
symbolic and hard links, character and block devices and FIFOs, with the
setuid, setgid and sticky bits, and extended attributes (file capabilities:
``security.capability``).  Docker's export carries xattrs as PAX records
(``SCHILY.xattr.NAME``), and ``docker load`` applies them from there; so an
entry with xattrs gets a PAX header of its own (records sorted by name, no
time fields) before its GNU header, and an entry without them is written
exactly as before, so layers with no xattrs keep their digests.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Mapping, Sequence

from packaging.utils import canonicalize_name

from pbrx_images.project.metadata import core_metadata

#: The layers of an image, its base's included, stay at or below this.
MAX_LAYERS = 100
#: mtime of every entry when SOURCE_DATE_EPOCH is not set.
DEFAULT_EPOCH = 0
#: Files pip writes that only record how and from where it installed: left out.
NOISE = ("direct_url.json", "REQUESTED")
_CHUNK = 1 << 20
_PYC = re.compile(r"^(?P<dir>.*?)/?__pycache__/(?P<stem>[^/.]+)\.[^/]*\.pyc$")


#: What makes two entries the same file (times and owners aside): kind, mode,
#: link target and content digest, and a fifth item only where the entry
#: has extended attributes or is a device (:attr:`Entry.signature`).
Signature = tuple[Any, ...]  # (str, int, str, str) or (str, int, str, str, str)
#: The PAX record prefix of an extended attribute (GNU tar's, Docker's, Go's).
XATTR_PREFIX = "SCHILY.xattr."
_DEVICE_TYPES = {tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block"}
_TAR_TYPES = {"char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}


@dataclass(frozen=True)
class Entry:
    """One entry of a tree: a file, directory, link, device or FIFO."""

    path: str  #: relative to the root of the image, no leading "/", e.g. "opt/venv/bin/x"
    #: "file", "dir", "symlink", "link" (a hard link to ``linkname``), "char" or
    #: "block" (a device: ``device``), "fifo"
    kind: str
    mode: int  #: permission bits with setuid, setgid and sticky (``& 0o7777``)
    size: int = 0
    linkname: str = ""
    offset: int = -1  #: where its content starts in the tree's spool file
    digest: str = ""  #: sha256 of the content (files)
    data: bytes | None = None  #: replaced content (normalised files)
    uid: int = 0
    gid: int = 0
    spool: Any = field(default=None, compare=False)  #: the file holding the content
    #: extended attributes, (name, value) sorted by name, e.g. ("security.capability", b"...")
    xattrs: tuple[tuple[str, bytes], ...] = ()
    device: tuple[int, int] = (0, 0)  #: (major, minor) of a "char" or "block" device

    @property
    def signature(self) -> Signature:
        """What makes two entries the same file (times and owners aside).

        Four items for the common entry, as indexes recorded before
        xattrs and devices were kept still have them; a fifth, a digest
        of the xattrs and device numbers, only where there are some.
        """
        base = (self.kind, self.mode, self.linkname, self.digest)
        if not self.xattrs and self.kind not in ("char", "block"):
            return base
        extra = hashlib.sha256(repr((self.xattrs, self.device)).encode()).hexdigest()
        return base + (extra,)

    def pax_records(self) -> bytes:
        """The PAX records of the entry's xattrs, sorted by name; b"" when it has none."""
        return b"".join(pax_record(XATTR_PREFIX + name, value) for name, value in self.xattrs)


def pax_record(keyword: str, value: bytes) -> bytes:
    """One PAX extended header record: ``"%d %s=%s\\n"``, the length counting itself."""
    body = b" " + keyword.encode("utf-8", "surrogateescape") + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length = len(str(length).encode()) + len(body)
    return str(length).encode() + body


def member_xattrs(member: tarfile.TarInfo) -> tuple[tuple[str, bytes], ...]:
    """The extended attributes a member's PAX records carry, sorted by name, as bytes.

    tarfile decodes each value as UTF-8 and, when that fails, with the
    archive's encoding and its ``surrogateescape`` errors: both give the
    original bytes back with ``encode("utf-8", "surrogateescape")``.
    """
    return tuple(sorted(
        (key[len(XATTR_PREFIX):], value.encode("utf-8", "surrogateescape"))
        for key, value in member.pax_headers.items() if key.startswith(XATTR_PREFIX)))


class Tree:
    """Entries of an exported directory; file contents stay in the spool file."""

    def __init__(self, spool: IO[bytes], entries: Mapping[str, Entry]) -> None:
        self.spool = spool
        self.entries = dict(entries)

    def read(self, entry: Entry) -> bytes:
        return b"".join(self.chunks(entry))

    def chunks(self, entry: Entry) -> Iterable[bytes]:
        if entry.data is not None:
            yield entry.data
            return
        spool = entry.spool if entry.spool is not None else self.spool
        spool.seek(entry.offset)
        left = entry.size
        while left > 0:
            chunk = spool.read(min(left, _CHUNK))
            if not chunk:
                raise ValueError("the exported archive ends inside %s" % entry.path)
            left -= len(chunk)
            yield chunk

    def index(self) -> dict[str, Signature]:
        """Path -> signature of every entry that is not a directory."""
        return {path: entry.signature for path, entry in self.entries.items()
                if entry.kind != "dir"}


def read_tree(spool: IO[bytes], exported: str, keep_owner: bool = False) -> Tree:
    """The entries of an archive ``GET /containers/{id}/archive?path=exported`` gave.

    Its members are named after the last part of ``exported``; they are
    renamed to full paths without the leading "/".
    """
    parent = posixpath.dirname(exported.rstrip("/")).strip("/")
    entries = {}
    spool.seek(0)
    with tarfile.open(fileobj=spool, mode="r:", encoding="utf-8",
                      errors="surrogateescape") as archive:
        for member in archive:
            entry = entry_from_member(archive, member, spool, root=parent,
                                      keep_owner=keep_owner, copy=False)
            if entry is not None:
                entries[entry.path] = entry
    return Tree(spool, entries)


def member_path(name: str, root: str) -> str:
    """A member's name (or a hard link's target) as a path from the image's root, no "/" first.

    ``root`` is the directory the archive's names are relative to: "/" for an
    archive of the whole file system, "opt" for one of ``/opt/venv``.
    """
    return posixpath.normpath(posixpath.join(root, name)).lstrip("/")


def entry_from_member(archive: tarfile.TarFile, member: tarfile.TarInfo, spool: IO[bytes], *,
                      root: str, keep_owner: bool, copy: bool) -> Entry | None:
    """The :class:`Entry` of one member of ``archive``; None for a kind tar has no more of
    (GNU sparse or contiguous files, which no export writes).

    The path, and a hard link's target, are resolved against ``root``
    (:func:`member_path`); a symbolic link's target is kept as it is.  The
    mode keeps its permission, setuid, setgid and sticky bits; owners are
    the member's with ``keep_owner``, else root's; extended attributes
    (:func:`member_xattrs`) and device numbers are kept.  A regular file's
    content is hashed (read
    through ``archive``, so call this while ``member`` is the current one of
    a stream); with ``copy``, it is also appended to ``spool`` and the entry
    points there, else ``spool`` must be the file ``archive`` reads and the
    entry points at the content where the archive holds it.
    """
    path = member_path(member.name, root)
    uid, gid = (member.uid, member.gid) if keep_owner else (0, 0)
    mode = member.mode & 0o7777
    xattrs = member_xattrs(member) if member.pax_headers else ()
    if member.isdir():
        return Entry(path, "dir", mode, uid=uid, gid=gid, xattrs=xattrs)
    if member.issym():
        return Entry(path, "symlink", mode, linkname=member.linkname, uid=uid, gid=gid,
                     xattrs=xattrs)
    if member.islnk():
        return Entry(path, "link", mode, linkname=member_path(member.linkname, root),
                     uid=uid, gid=gid)
    if member.type in _DEVICE_TYPES:
        return Entry(path, _DEVICE_TYPES[member.type], mode, uid=uid, gid=gid, xattrs=xattrs,
                     device=(member.devmajor, member.devminor))
    if member.isfifo():
        return Entry(path, "fifo", mode, uid=uid, gid=gid, xattrs=xattrs)
    if not member.isreg():
        return None
    handle = archive.extractfile(member)
    assert handle is not None
    digest = hashlib.sha256()
    offset = spool.seek(0, io.SEEK_END) if copy else member.offset_data
    while True:
        chunk = handle.read(_CHUNK)
        if not chunk:
            break
        digest.update(chunk)
        if copy:
            spool.write(chunk)
    return Entry(path, "file", mode, member.size, offset=offset, digest=digest.hexdigest(),
                 uid=uid, gid=gid, spool=spool, xattrs=xattrs)


def parse_record(text: str) -> list[str]:
    """The paths a ``RECORD`` file lists (PEP 376 / the wheel spec: CSV rows)."""
    return [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0]]


def without_noise(tree: Tree) -> Tree:
    """``tree`` without install-time noise, RECORD files rewritten to match.

    ``direct_url.json`` names the wheel file pip installed from (a path that
    changes from run to run); ``REQUESTED`` depends on how pip was called (a
    distribution's layer must not); ``INSTALLER`` is constant and stays.
    """
    entries = dict(tree.entries)
    dropped = [path for path in entries if posixpath.basename(path) in NOISE
               and posixpath.dirname(path).endswith(".dist-info")]
    for path in dropped:
        del entries[path]
        record = posixpath.join(posixpath.dirname(path), "RECORD")
        old = entries.get(record)
        if old is None or old.kind != "file":
            continue
        text = tree.read(old).decode("utf-8")
        listed = posixpath.join(posixpath.basename(posixpath.dirname(path)),
                                posixpath.basename(path))
        lines = [line for line in text.splitlines(keepends=True)
                 if parse_record(line)[:1] != [listed]]
        data = "".join(lines).encode("utf-8")
        entries[record] = dataclasses.replace(
            old, size=len(data), offset=-1, digest=hashlib.sha256(data).hexdigest(), data=data)
    return Tree(tree.spool, entries)


def pyc_source(path: str) -> str | None:
    """``a/__pycache__/b.cpython-311.pyc`` -> ``a/b.py``; ``a/b.pyc`` -> ``a/b.py``."""
    match = _PYC.match(path)
    if match:
        return posixpath.join(match.group("dir"), match.group("stem") + ".py")
    if path.endswith(".pyc"):
        return path[:-1]
    return None


@dataclass
class LayerPlan:
    """The files of one layer, and what to call it."""

    description: str  #: e.g. "psycopg2 2.9.9"; "3 smaller distributions: a, b, c"
    paths: list[str]
    size: int = 0
    kind: str = "dependency"  #: "dependency", "group", "leftovers", "project", "user"
    whiteouts: list[str] = field(default_factory=list)  #: removed paths
    name: str = ""  #: the distribution's canonical name (one-distribution layers)


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str
    record: str  #: path of its RECORD file


#: The directories whose ``*.dist-info`` are installed distributions: the
#: virtualenv's ``lib/pythonX.Y/site-packages`` (Debian's Python: dist-packages).
SITE_DIRECTORIES = ("site-packages", "dist-packages")


def is_installed_record(path: str) -> bool:
    """True for the RECORD of an installed distribution: ``SITE/NAME.dist-info/RECORD``.

    A ``*.dist-info`` below a package is not one: setuptools keeps the
    metadata of the copies it vendors in ``setuptools/_vendor/``
    (``packaging``, ``jaraco.text``, ``zipp``, ``wheel``...), and its own
    RECORD lists those files, so they belong to setuptools' layer.
    """
    directory, base = posixpath.split(path)
    return (base == "RECORD" and directory.endswith(".dist-info")
            and posixpath.basename(posixpath.dirname(directory)) in SITE_DIRECTORIES)


def distributions(tree: Tree, paths: Iterable[str]) -> list[Distribution]:
    """The installed distributions (:func:`is_installed_record`) whose RECORD is among
    ``paths``."""
    found = []
    for path in sorted(paths):
        if not is_installed_record(path):
            continue
        directory = posixpath.dirname(path)
        stem = posixpath.basename(directory)[:-len(".dist-info")]
        name, _, version = stem.partition("-")
        metadata = tree.entries.get(posixpath.join(directory, "METADATA"))
        if metadata is not None and metadata.kind == "file":
            fields = core_metadata(tree.read(metadata))
            name, version = (fields.name or name).strip(), (fields.version or version).strip()
        found.append(Distribution(name, version, path))
    return found


def changes(tree: Tree, parent: Mapping[str, Signature]) -> tuple[
        list[str], list[str]]:
    """(paths new or changed since ``parent``, paths ``parent`` had that are gone)."""
    changed = [path for path, entry in tree.entries.items()
               if entry.kind != "dir" and parent.get(path) != entry.signature]
    current = tree.entries
    removed = [path for path in parent if path not in current]
    return sorted(changed), sorted(removed)


def split(tree: Tree, parent: Mapping[str, Signature],
          project: str) -> list[LayerPlan]:
    """One layer per distribution new since ``parent``, bottom first.

    Files each new distribution's RECORD claims go to its layer (RECORD
    paths are relative to the directory holding the ``.dist-info``), byte
    code with its source; files no RECORD claims, or that two claim, go to a
    leftovers layer, with the removals.  Dependencies come largest first
    (the most stable at the bottom), then the leftovers, then ``project``.
    """
    changed, removed = changes(tree, parent)
    changed_set = set(changed)
    owners: dict[str, set[int]] = {}
    dists = distributions(tree, changed)
    for number, dist in enumerate(dists):
        site = posixpath.dirname(posixpath.dirname(dist.record))
        for listed in parse_record(tree.read(tree.entries[dist.record]).decode("utf-8")):
            path = posixpath.normpath(posixpath.join(site, listed)).lstrip("/")
            if path in changed_set:
                owners.setdefault(path, set()).add(number)
    files: dict[int, list[str]] = {number: [] for number in range(len(dists))}
    leftovers: list[str] = []
    for path in changed:
        claim = owners.get(path)
        if claim is None:
            source = pyc_source(path)
            claim = owners.get(source) if source else None
        if claim is not None and len(claim) == 1:
            files[next(iter(claim))].append(path)
        else:
            leftovers.append(path)
    project_key = canonicalize_name(project)
    layers = []
    top = []
    for number, dist in enumerate(dists):
        paths = files[number]
        layer = LayerPlan("%s %s" % (dist.name, dist.version), paths,
                          sum(tree.entries[path].size for path in paths),
                          name=canonicalize_name(dist.name))
        if canonicalize_name(dist.name) == project_key:
            layer.kind = "project"
            top.append(layer)
        else:
            layers.append(layer)
    if leftovers or removed:
        layers.append(LayerPlan("files of no or of several distributions", leftovers,
                                sum(tree.entries[path].size for path in leftovers),
                                "leftovers", removed))
    return stacked(layers + top)


def ordered(layers: Iterable[LayerPlan]) -> list[LayerPlan]:
    """Dependencies from the most stable (largest) to the least."""
    return sorted(layers, key=lambda layer: (-layer.size, layer.description))


def stacked(layers: Iterable[LayerPlan]) -> list[LayerPlan]:
    """The order of an image's layers: dependencies (:func:`ordered`), the
    leftovers, the project's own on top."""
    layers = list(layers)
    return (ordered(layer for layer in layers if layer.kind not in ("leftovers", "project"))
            + [layer for layer in layers if layer.kind == "leftovers"]
            + [layer for layer in layers if layer.kind == "project"])


def group(layers: Sequence[LayerPlan], budget: int) -> tuple[list[LayerPlan], list[str]]:
    """At most ``budget`` (>= 1) layers: the smallest dependencies share one.

    Returns the layers and the descriptions of the distributions grouped.
    """
    if len(layers) <= budget:
        return list(layers), []
    dependencies = [layer for layer in layers if layer.kind == "dependency"]
    others = [layer for layer in layers if layer.kind != "dependency"]
    keep = max(budget - len(others) - 1, 0)
    by_size = ordered(dependencies)
    kept, grouped = by_size[:keep], by_size[keep:]
    merged = LayerPlan("%d smaller distributions: %s" % (
        len(grouped), ", ".join(layer.description for layer in grouped)),
        sorted(path for layer in grouped for path in layer.paths),
        sum(layer.size for layer in grouped), "group")
    result = kept + [merged] + others
    if len(result) > budget:  # more non-dependency layers than the budget: one for all
        everything = LayerPlan("all distributions", sorted(
            path for layer in result for path in layer.paths),
            sum(layer.size for layer in result), "group",
            sorted(path for layer in result for path in layer.whiteouts))
        return [everything], [layer.description for layer in layers]
    return result, [layer.description for layer in grouped]


#: A list of layers longer than this is said in short (:func:`layers_summary`).
LISTED_LAYERS = 8
#: How many of the largest dependency layers a summary names.
LARGEST_NAMED = 3


def human_size(size: int) -> str:
    """``1234567`` -> ``1.2 MB``; ``20500`` -> ``20.5 kB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return "%.1f %s" % (size / scale, unit)
    return "%d B" % size


def layers_summary(layers: Sequence[tuple[str, str, int]]) -> tuple[str, str | None]:
    """The line that says which layers an image got, and the whole list when it is long.

    ``layers``: (description, kind, size in bytes) of each, bottom first.  Up
    to :data:`LISTED_LAYERS` are named in one line, as ``N layers: a; b``;
    more are said in short (Zuul's images have 160 distributions: one line
    of 5,000 characters was unreadable in a job log): how many, the largest
    few dependencies with their sizes, how many share the layer of the
    smaller ones, the layers that are not dependencies by name.  The
    second item is then the whole list (for ``-v``, the log), else None.
    """
    named = [description for description, _, _ in layers]
    whole = "%d layers: %s" % (len(layers), "; ".join(named))
    if len(layers) <= LISTED_LAYERS:
        return whole, None
    dependencies = sorted((item for item in layers if item[1] == "dependency"),
                          key=lambda item: (-item[2], item[0]))
    parts = ["the largest " + ", ".join("%s (%s)" % (description, human_size(size))
                                        for description, _, size in
                                        dependencies[:LARGEST_NAMED])] if dependencies else []
    rest = len(dependencies) - LARGEST_NAMED
    if rest > 0:
        parts.append("%d more distribution%s" % (rest, "" if rest == 1 else "s"))
    for description, kind, _ in layers:
        if kind == "group":
            parts.append("%s in one layer" % description.partition(":")[0])
        elif kind != "dependency":
            parts.append(description)
    return "%d layers: %s (-v lists them all)" % (len(layers), "; ".join(parts)), whole


def parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


def layer_entries(tree: Tree, layer: LayerPlan) -> list[Entry]:
    """The layer's entries with their parent directories, in tar order."""
    selected: dict[str, Entry] = {}
    for path in list(layer.paths) + list(layer.whiteouts):
        for directory in parents(path):
            if directory not in selected:
                known = tree.entries.get(directory)
                selected[directory] = known if known is not None and known.kind == "dir" \
                    else Entry(directory, "dir", 0o755)
    for path in layer.paths:
        entry = tree.entries[path]
        target = tree.entries.get(entry.linkname) if entry.kind == "link" else None
        if target is not None and entry.linkname not in layer.paths:
            # a hard link to a file of another layer: a copy of the file instead
            entry = dataclasses.replace(target, path=path)
        selected[path] = entry
    for path in layer.whiteouts:
        head, tail = posixpath.split(path)
        whiteout = posixpath.join(head, ".wh." + tail)
        selected[whiteout] = Entry(whiteout, "file", 0o644, data=b"",
                                   digest=hashlib.sha256(b"").hexdigest())
    return [selected[path] for path in sorted(selected)]


def write_layer(tree: Tree, entries: Iterable[Entry], mtime: int,
                out: IO[bytes]) -> str:
    """Write a normalised tar of ``entries`` to ``out``; return its ``sha256:`` digest."""
    digest = hashlib.sha256()

    class _Hashing:
        written = 0

        def tell(self) -> int:
            return self.written

        def write(self, data: bytes) -> int:
            digest.update(data)
            out.write(data)
            self.written += len(data)
            return len(data)

    with tarfile.open(fileobj=_Hashing(), mode="w", format=tarfile.GNU_FORMAT,  # type: ignore
                      encoding="utf-8", errors="surrogateescape") as archive:
        for entry in entries:
            records = entry.pax_records()
            if records:
                _add_pax_header(archive, records)
            info = tarfile.TarInfo(entry.path)
            info.mtime = mtime
            info.mode = entry.mode
            info.uid, info.gid = entry.uid, entry.gid
            info.uname = info.gname = ""
            if entry.kind == "file":
                info.size = entry.size if entry.data is None else len(entry.data)
                archive.addfile(info, chunk_stream(tree.chunks(entry), 1 << 16))
                continue
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif entry.kind in ("symlink", "link"):
                info.type = tarfile.SYMTYPE if entry.kind == "symlink" else tarfile.LNKTYPE
                info.linkname = entry.linkname
            else:
                info.type = _TAR_TYPES[entry.kind]
                info.devmajor, info.devminor = entry.device
            archive.addfile(info)
    return "sha256:" + digest.hexdigest()


def _add_pax_header(archive: tarfile.TarFile, records: bytes) -> None:
    """A PAX extended header ('x') for the next member, as Go's and Python's writers make it:
    a ustar header named ``././@PaxHeader`` with mode and mtime 0, then the records."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size, info.mode, info.mtime = tarfile.XHDTYPE, len(records), 0, 0
    info.uname = info.gname = ""
    archive.format = tarfile.USTAR_FORMAT
    try:
        archive.addfile(info, io.BytesIO(records))
    finally:
        archive.format = tarfile.GNU_FORMAT


class ChunkReader(io.RawIOBase):
    """A raw file object over an iterator of chunks, read once from the start."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def chunk_stream(chunks: Iterable[bytes], buffer_size: int = 1 << 20) -> io.BufferedReader:
    """A buffered file object over chunks: ``read(n)`` gives n bytes until the end."""
    return io.BufferedReader(ChunkReader(chunks), buffer_size)
