"""Tar archives of image layers, read and written reproducibly.

Pure code.  A :class:`Tree` is the content of a directory exported from a
container (an archive from the Docker API, spooled to a temporary file);
:func:`write_layer` writes entries as a normalised tar (sorted entries,
owners as the entries have them with empty names, one fixed mtime), so the
same files always give the same digest.

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

import hashlib
import io
import posixpath
import tarfile
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Mapping

_CHUNK = 1 << 20


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


def parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


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
