"""Reading an export into a tree, and writing normalised, reproducible layer tars."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile

import pytest

from pbrx_images.oci.tar import (Entry, Tree, entry_from_member, member_path, pax_record,
                                 read_tree, write_layer)
from tests.unit.oci.trees import export


def test_read_tree_names_members_by_full_path_and_hashes_files():
    tree = export({"opt/venv/a.txt": "hello"})
    entry = tree.entries["opt/venv/a.txt"]
    assert (entry.kind, entry.size, entry.digest) == (
        "file", 5, hashlib.sha256(b"hello").hexdigest())
    assert tree.read(entry) == b"hello"
    assert tree.entries["opt/venv"].kind == "dir"


#: ``security.capability`` of ``cap_net_raw=ep`` (what iputils-ping's postinst sets)
CAPABILITY = b"\x01\x00\x00\x02\x00 \x00\x00" + bytes(12)


def members_of_each_kind() -> bytes:
    """A tar of ``venv/``: a directory, a file with a capability, a symbolic link, a hard
    link, a fifo and a character device, as Docker's export writes them (PAX)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, kind, value, mode in [("venv", tarfile.DIRTYPE, "", 0o2755),
                                        ("venv/bin/tool", tarfile.REGTYPE, b"content", 0o104755),
                                        ("venv/lib64", tarfile.SYMTYPE, "../lib", 0o777),
                                        ("venv/./bin/same", tarfile.LNKTYPE, "venv/bin/tool",
                                         0o755),
                                        ("venv/pipe", tarfile.FIFOTYPE, "", 0o1644),
                                        ("venv/null", tarfile.CHRTYPE, "", 0o666)]:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid = kind, mode, 7, 8
            if kind == tarfile.CHRTYPE:
                info.devmajor, info.devminor = 1, 3
            if kind == tarfile.REGTYPE:
                info.pax_headers = {"SCHILY.xattr.security.capability":
                                    CAPABILITY.decode("utf-8", "surrogateescape"),
                                    "SCHILY.xattr.user.a": "\udcff1"}  # not UTF-8: b"\xff1"

                info.size = len(value)
                archive.addfile(info, io.BytesIO(value))
            else:
                info.linkname = value
                archive.addfile(info)
    return buffer.getvalue()


@pytest.mark.parametrize("keep_owner", [False, True])
def test_entry_from_member_in_place(keep_owner):
    spool = io.BytesIO(members_of_each_kind())
    with tarfile.open(fileobj=spool, mode="r:") as archive:
        entries = [entry_from_member(archive, member, spool, root="opt", keep_owner=keep_owner,
                                     copy=False) for member in archive]
    owner = (7, 8) if keep_owner else (0, 0)
    assert [(e.path, e.kind, e.mode, e.linkname, (e.uid, e.gid)) if e else None
            for e in entries] == [
        ("opt/venv", "dir", 0o2755, "", owner),
        ("opt/venv/bin/tool", "file", 0o4755, "", owner),
        ("opt/venv/lib64", "symlink", 0o777, "../lib", owner),  # a symlink's target stays
        ("opt/venv/bin/same", "link", 0o755, "opt/venv/bin/tool", owner),
        ("opt/venv/pipe", "fifo", 0o1644, "", owner),
        ("opt/venv/null", "char", 0o666, "", owner)]
    tool = entries[1]
    assert (tool.size, tool.digest, tool.spool) == (
        7, hashlib.sha256(b"content").hexdigest(), spool)
    assert tool.xattrs == (("security.capability", CAPABILITY), ("user.a", b"\xff1"))
    assert entries[5].device == (1, 3)
    assert Tree(spool, {}).read(tool) == b"content"  # where the archive holds it


def test_entry_from_member_copies_a_stream_to_the_end_of_the_spool():
    spool = io.BytesIO(b"earlier")
    with tarfile.open(fileobj=io.BytesIO(members_of_each_kind()), mode="r|") as archive:
        entries = [entry_from_member(archive, member, spool, root="/", keep_owner=True,
                                     copy=True) for member in archive]
    assert [(e.path, e.kind, e.linkname, e.uid) if e else None for e in entries] == [
        ("venv", "dir", "", 7), ("venv/bin/tool", "file", "", 7),
        ("venv/lib64", "symlink", "../lib", 7), ("venv/bin/same", "link", "venv/bin/tool", 7),
        ("venv/pipe", "fifo", "", 7), ("venv/null", "char", "", 7)]
    tool = entries[1]
    assert (tool.offset, tool.spool, spool.getvalue()) == (7, spool, b"earliercontent")
    assert tool.digest == hashlib.sha256(b"content").hexdigest()
    assert Tree(io.BytesIO(), {}).read(tool) == b"content"


@pytest.mark.parametrize("name, root, path", [
    ("venv/bin/x", "opt", "opt/venv/bin/x"),
    ("./venv/../venv/x", "opt", "opt/venv/x"),
    ("venv", "", "venv"),
    ("usr/bin/x", "/", "usr/bin/x"),
    ("/usr/bin/x", "/", "usr/bin/x"),
    ("../../etc/passwd", "/", "etc/passwd"),  # nothing goes above the root
    ("./", "/", ""),
])
def test_member_path(name, root, path):
    assert member_path(name, root) == path


def _written(entries, tree=None, mtime=0) -> tuple[str, bytes]:
    out = io.BytesIO()
    digest = write_layer(tree or Tree(io.BytesIO(), {}), entries, mtime, out)
    return digest, out.getvalue()


def every_kind_of_entry() -> Tree:
    """``members_of_each_kind`` read as an export, with a long and a non-UTF-8 name."""
    spool = io.BytesIO(members_of_each_kind())
    tree = read_tree(spool, "/opt/venv", keep_owner=True)
    for path, data in [("opt/venv/" + "n" * 120 + "/" + "m" * 90, b"long"),
                       ("opt/venv/caf\udce9.txt", b"latin-1 name")]:  # b"caf\xe9.txt"
        tree.entries[path] = Entry(path, "file", 0o640, len(data), data=data, uid=3, gid=4,
                                   digest=hashlib.sha256(data).hexdigest())
    tree.entries["opt/venv/empty"] = Entry("opt/venv/empty", "dir", 0o1777)
    return tree


def test_every_kind_of_entry_goes_through_a_written_layer_unchanged():
    tree = every_kind_of_entry()
    entries = [tree.entries[path] for path in sorted(tree.entries)]
    _, data = _written(entries, tree, 1700000000)
    again = read_tree(io.BytesIO(data), "/", keep_owner=True)

    def described(t: Tree) -> dict:
        return {path: (e.kind, e.mode, e.uid, e.gid, e.linkname, e.xattrs, e.device,
                       t.read(e) if e.kind == "file" else None)
                for path, e in t.entries.items()}

    assert described(again) == described(tree)
    kinds = {e.kind for e in again.entries.values()}
    assert kinds == {"dir", "file", "symlink", "link", "fifo", "char"}
    assert again.entries["opt/venv/bin/tool"].mode == 0o4755  # setuid
    assert again.entries["opt/venv/empty"].mode == 0o1777  # sticky, and empty
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8",
                      errors="surrogateescape") as archive:
        raw = {m.name: m for m in archive}
    assert raw["opt/venv/null"].devmajor == 1 and raw["opt/venv/null"].devminor == 3
    assert "opt/venv/caf\udce9.txt" in raw and b"caf\xe9.txt" in data  # the bytes, as given


def test_xattrs_are_written_reproducibly_sorted_and_without_times():
    tree = every_kind_of_entry()
    tool = tree.entries["opt/venv/bin/tool"]
    forward = dataclasses.replace(tool, xattrs=(("security.capability", CAPABILITY),
                                                ("user.a", b"\xff1")))
    assert tool.xattrs == forward.xattrs  # read back sorted, whatever the export's order
    digest, data = _written([forward], tree)
    assert _written([forward], tree) == (digest, data)
    assert _written([forward], tree, mtime=5)[0] != digest
    assert _written([dataclasses.replace(forward, xattrs=())], tree)[0] != digest
    header = data[512:1024]  # the records, after the 'x' header's block
    assert header.index(b"security.capability") < header.index(b"user.a")
    for field in (b"mtime=", b"atime=", b"ctime=", b"hdrcharset"):
        assert field not in data
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        (member,) = archive.getmembers()
    assert (member.name, member.mtime, member.uname) == ("opt/venv/bin/tool", 0, "")
    assert member.pax_headers["SCHILY.xattr.security.capability"].encode(
        "utf-8", "surrogateescape") == CAPABILITY


def test_a_pax_record_counts_its_own_length():
    assert pax_record("a", b"b") == b"6 a=b\n"
    for size in (1, 2, 3, 4, 5, 90, 91, 92, 93, 994, 995, 996, 997, 998):
        record = pax_record("k", b"v" * size)
        length, _, _ = record.partition(b" ")
        assert int(length) == len(record)


def test_a_layer_without_xattrs_or_devices_keeps_the_digest_it_had():
    """Layers written before xattrs were kept: the same bytes, so the same image IDs."""
    tree = every_kind_of_entry()
    entries = [dataclasses.replace(e, xattrs=()) for path, e in sorted(tree.entries.items())
               if e.kind not in ("fifo", "char")]
    assert all(len(e.signature) == 4 for e in entries)
    # the digest write_layer gave these entries before (9210cdd)
    assert _written(entries, tree, 1700000000)[0] == (
        "sha256:fe1b7b76792a04a9fafe9b2c17bc88dff0e8cb8d44f51fcfe04d8b49c021b683")
