"""The layer of a container's changes: planning, noise, hard links, byte code headers."""
from __future__ import annotations

import importlib.util
import io
import py_compile
import tarfile

import pytest

from pbrx_images.oci.changes_layer import (ADDED, CHANGED, REMOVED, ExportPlan, is_noise,
                                           layer_paths, normalise, plan_exports, pyc_with_mtime,
                                           read_changes)
from pbrx_images.oci.layer import LayerPlan, layer_entries
from pbrx_images.oci.tar import ChunkReader, write_layer


@pytest.mark.parametrize("path, directory, noise", [
    ("var/log/dpkg.log", False, True),
    ("var/log/apt/history.log", False, True),
    ("var/log/postgresql", True, False),  # a package's log directory stays
    ("var/log", True, False),
    ("var/cache/apt/pkgcache.bin", False, True),
    ("var/cache/apt/archives", True, True),
    ("var/cache/apt", True, False),  # the directory itself stays
    ("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", False, True),
    ("var/lib/apt/extended_states", False, False),
    ("var/lib/dpkg/status", False, False),
    ("var/lib/dpkg/status-old", False, True),
    ("var/lib/dpkg/diversions-old", False, True),
    ("var/cache/debconf/config.dat-old", False, True),
    ("var/cache/debconf/config.dat", False, False),
    ("var/cache/ldconfig/aux-cache", False, True),
    ("etc/ld.so.cache", False, False),
    ("tmp/pip-xyz", True, True),
    ("tmp", True, False),
    ("var/tmp/x", False, True),
    ("root/.cache/pip/http/x", False, True),
    ("root/.cachet", False, False),
    ("var/cache/apk/APKINDEX.tar.gz", False, True),
    ("var/cache/dnf/fedora.solv", False, True),
    ("var/cache/yum/x", False, True),
    ("var/lib/dnf/history.sqlite-wal", False, True),
    ("usr/bin/dumb-init", False, False),
])
def test_noise(path, directory, noise):
    assert is_noise(path, directory) is noise


def test_plan_takes_added_subtrees_once_changed_paths_and_top_removals():
    changes = [("/", CHANGED), ("/usr", CHANGED), ("/usr/bin", CHANGED),
               ("/usr/bin/dumb-init", ADDED), ("/usr/share/doc/x", ADDED),
               ("/usr/share/doc/x/copyright", ADDED), ("/usr/share/doc", CHANGED),
               ("/usr/share", CHANGED), ("/etc/old", REMOVED), ("/etc/old/file", REMOVED),
               ("/etc", CHANGED), ("/var/log/dpkg.log", CHANGED), ("/var/log", CHANGED),
               ("/var/lib/apt/lists/lock", REMOVED), ("/tmp/x", ADDED), ("/tmp", CHANGED)]
    plan = plan_exports(changes)
    assert plan.subtrees == ["usr/bin/dumb-init", "usr/share/doc/x"]
    # var/log/dpkg.log is a changed path like any: read_changes leaves the file out
    assert plan.changed == ["etc", "tmp", "usr", "usr/bin", "usr/share", "usr/share/doc",
                            "var/log", "var/log/dpkg.log"]
    assert plan.removed == ["etc/old"]


def pyc(tmp_path, invalidation=py_compile.PycInvalidationMode.TIMESTAMP, text="X = 1\n"):
    source = tmp_path / "mod.py"
    source.write_text(text)
    target = tmp_path / "mod.pyc"
    py_compile.compile(str(source), str(target), doraise=True, invalidation_mode=invalidation)
    return target.read_bytes(), len(text)


def test_a_timestamp_pyc_gets_the_new_mtime(tmp_path):
    data, size = pyc(tmp_path)
    rewritten = pyc_with_mtime(data, 1700000000, size)
    assert rewritten is not None and len(rewritten) == len(data)
    assert rewritten[:8] == data[:8] and rewritten[12:] == data[12:]
    assert int.from_bytes(rewritten[8:12], "little") == 1700000000
    assert rewritten[:4] == importlib.util.MAGIC_NUMBER


def test_a_hash_based_pyc_stays(tmp_path):
    data, size = pyc(tmp_path, py_compile.PycInvalidationMode.CHECKED_HASH)
    assert pyc_with_mtime(data, 0, size) is None


def test_a_pyc_of_another_source_size_stays(tmp_path):
    data, size = pyc(tmp_path)
    assert pyc_with_mtime(data, 0, size + 1) is None


def test_old_pyc_headers_and_other_files():
    python36 = (3379).to_bytes(2, "little") + b"\r\n" + (5).to_bytes(4, "little") + \
        (6).to_bytes(4, "little") + b"code"
    assert pyc_with_mtime(python36, 9, 6) == python36[:4] + (9).to_bytes(4, "little") + \
        python36[8:]
    assert pyc_with_mtime(python36, 9, 7) is None
    assert pyc_with_mtime(b"not byte code at all", 0) is None
    assert pyc_with_mtime(b"", 0) is None


def export(members, xattrs=None) -> io.BytesIO:
    """A tar as ``docker export`` streams it: names relative to "/", owners kept, the
    ``xattrs`` of a name (name -> value) as PAX records."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, kind, value, mode, uid, mtime in members:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, mtime
            info.uname = "user%d" % uid
            info.pax_headers = {"SCHILY.xattr." + key: data.decode("utf-8", "surrogateescape")
                                for key, data in (xattrs or {}).get(name, {}).items()}
            if kind == "fifo":
                info.type = tarfile.FIFOTYPE
                archive.addfile(info)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, value
                archive.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, value
                archive.addfile(info)
            else:
                info.size = len(value)
                archive.addfile(info, io.BytesIO(value))
    buffer.seek(0)
    return buffer


def filesystem(mtime: int, noise: bytes = b"log") -> list:
    return [
        ("etc", "dir", None, 0o755, 0, mtime),
        ("etc/passwd", "file", b"root:x:0:0\n", 0o644, 0, mtime),
        ("etc/untouched", "file", b"base\n", 0o644, 0, mtime),
        ("usr", "dir", None, 0o755, 0, mtime),
        ("usr/bin", "dir", None, 0o755, 0, mtime),
        ("usr/bin/perl", "file", b"perl binary", 0o755, 0, mtime),
        ("usr/bin/zz-perl5.36", "link", "usr/bin/perl", 0o755, 0, mtime),
        ("usr/bin/base-tool", "file", b"base", 0o755, 0, mtime),
        ("usr/bin/new-link-to-base", "link", "usr/bin/base-tool", 0o755, 0, mtime),
        ("usr/bin/python", "symlink", "python3", 0o777, 0, mtime),
        ("var", "dir", None, 0o755, 0, mtime),
        ("var/mail", "dir", None, 0o2775, 8, mtime),
        ("var/log", "dir", None, 0o755, 0, mtime),
        ("var/log/dpkg.log", "file", noise, 0o644, 0, mtime),
        ("var/log/pkg", "dir", None, 0o750, 101, mtime),
    ]


PLAN = ExportPlan(subtrees=["usr/bin/perl", "usr/bin/zz-perl5.36", "usr/bin/python",
                            "usr/bin/new-link-to-base", "var/log/pkg"],
                  changed=["etc", "etc/passwd", "usr", "usr/bin", "var", "var/mail",
                           "var/log", "var/log/dpkg.log"],
                  removed=["etc/gone"])


def test_read_changes_takes_what_the_plan_names_with_owners(tmp_path):
    with open(tmp_path / "spool", "w+b") as spool:
        tree, unlinked = read_changes(io.BufferedReader(ChunkReader(
            [export(filesystem(5)).getvalue()])), PLAN, spool)
        assert sorted(tree.entries) == ["etc", "etc/passwd", "usr", "usr/bin", "usr/bin/perl",
                                        "usr/bin/python", "usr/bin/zz-perl5.36", "var",
                                        "var/log", "var/log/pkg", "var/mail"]
        assert unlinked == ["usr/bin/new-link-to-base"]  # its target is the base's
        mail = tree.entries["var/mail"]
        assert (mail.kind, mail.mode, mail.uid, mail.gid) == ("dir", 0o2775, 8, 8)
        assert tree.entries["var/log/pkg"].uid == 101
        assert tree.read(tree.entries["usr/bin/perl"]) == b"perl binary"
        assert tree.entries["usr/bin/zz-perl5.36"].linkname == "usr/bin/perl"


def layer_digest(tmp_path, members, name) -> str:
    with open(tmp_path / name, "w+b") as spool:
        tree, _ = read_changes(export(members), PLAN, spool)
        tree.entries = normalise(tree, 0)
        plan = LayerPlan("test", layer_paths(tree.entries), whiteouts=PLAN.removed)
        out = io.BytesIO()
        return write_layer(tree, layer_entries(tree, plan), 0, out)


def test_times_and_noise_do_not_change_the_layer(tmp_path):
    first = layer_digest(tmp_path, filesystem(5, b"one log"), "a")
    assert first == layer_digest(tmp_path, filesystem(99999, b"another log"), "b")
    changed = filesystem(5)
    changed[1] = ("etc/passwd", "file", b"root:x:0:0\nnew:x:1:1\n", 0o644, 0, 5)
    assert layer_digest(tmp_path, changed, "c") != first


def test_hard_links_get_their_content_at_the_first_path(tmp_path):
    members = [("usr", "dir", None, 0o755, 0, 1), ("usr/bin", "dir", None, 0o755, 0, 1),
               ("usr/bin/zz", "file", b"binary", 0o755, 0, 1),
               ("usr/bin/aa", "link", "usr/bin/zz", 0o755, 0, 1),
               ("usr/bin/mm", "link", "usr/bin/zz", 0o755, 0, 1)]
    plan = ExportPlan(["usr/bin/aa", "usr/bin/mm", "usr/bin/zz"], ["usr", "usr/bin"], [])
    with open(tmp_path / "spool", "w+b") as spool:
        tree, unlinked = read_changes(export(members), plan, spool)
        entries = normalise(tree, 0)
        assert not unlinked
        assert (entries["usr/bin/aa"].kind, tree.read(entries["usr/bin/aa"])) == \
            ("file", b"binary")
        assert [(entries[path].kind, entries[path].linkname) for path in
                ("usr/bin/mm", "usr/bin/zz")] == [("link", "usr/bin/aa")] * 2
        tree.entries = entries
        out = io.BytesIO()
        write_layer(tree, layer_entries(tree, LayerPlan("t", layer_paths(entries))), 0, out)
        out.seek(0)
        with tarfile.open(fileobj=out) as archive:  # extractable: targets come first
            names = [member.name for member in archive]
            assert names.index("usr/bin/aa") < names.index("usr/bin/mm")
            extracted = tmp_path / "x"
            archive.extractall(extracted, filter="tar") if hasattr(tarfile, "data_filter") \
                else archive.extractall(extracted)
        assert (extracted / "usr/bin/zz").read_bytes() == b"binary"


def test_capabilities_setuid_and_fifos_stay_in_the_changes_layer(tmp_path):
    """What iputils-ping's and sudo's maintainer scripts leave: a capability and setuid."""
    capability = b"\x01\x00\x00\x02\x00 \x00\x00" + bytes(12)
    members = [("usr", "dir", None, 0o755, 0, 1), ("usr/bin", "dir", None, 0o755, 0, 1),
               ("usr/bin/ping", "file", b"ping", 0o755, 0, 1),
               ("usr/bin/sudo", "file", b"sudo", 0o4755, 0, 1),
               ("usr/bin/sudoedit", "link", "usr/bin/sudo", 0o4755, 0, 1),
               ("run", "dir", None, 0o755, 0, 1), ("run/initctl", "fifo", None, 0o600, 0, 1)]
    plan = ExportPlan(["run/initctl", "usr/bin/ping", "usr/bin/sudo", "usr/bin/sudoedit"],
                      ["run", "usr", "usr/bin"], [])
    xattrs = {"usr/bin/ping": {"security.capability": capability}}

    def layer(name, **given):
        with open(tmp_path / name, "w+b") as spool:
            tree, _ = read_changes(export(members, given.get("xattrs", xattrs)), plan, spool)
            tree.entries = normalise(tree, 0)
            out = io.BytesIO()
            digest = write_layer(tree, layer_entries(tree, LayerPlan("t", layer_paths(
                tree.entries))), 0, out)
            return digest, out.getvalue()

    digest, data = layer("a")
    assert layer("b") == (digest, data)
    assert layer("c", xattrs={})[0] != digest
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        found = {member.name: member for member in archive}
    assert found["usr/bin/ping"].pax_headers["SCHILY.xattr.security.capability"].encode(
        "utf-8", "surrogateescape") == capability
    assert found["usr/bin/sudo"].mode == 0o4755 and found["usr/bin/sudoedit"].islnk()
    assert found["run/initctl"].isfifo() and found["run/initctl"].mode == 0o600


def test_normalise_rewrites_byte_code_of_sources_in_the_layer_only(tmp_path):
    data, size = pyc(tmp_path)
    source = b"X = 1\n"
    site = "usr/lib/python3/dist-packages"
    members = [("usr", "dir", None, 0o755, 0, 1), ("usr/lib", "dir", None, 0o755, 0, 1),
               ("usr/lib/python3", "dir", None, 0o755, 0, 1),
               (site, "dir", None, 0o755, 0, 1), (site + "/pkg", "dir", None, 0o755, 0, 1),
               (site + "/pkg/mod.py", "file", source, 0o644, 0, 1),
               (site + "/pkg/__pycache__", "dir", None, 0o755, 0, 1),
               (site + "/pkg/__pycache__/mod.cpython-311.pyc", "file", data, 0o644, 0, 1),
               (site + "/pkg/__pycache__/base.cpython-311.pyc", "file", data, 0o644, 0, 1)]
    plan = ExportPlan([site + "/pkg"], [], [])
    assert size == len(source)
    with open(tmp_path / "spool", "w+b") as spool:
        tree, _ = read_changes(export(members), plan, spool)
        entries = normalise(tree, 1234)
        rewritten = tree.read(entries[site + "/pkg/__pycache__/mod.cpython-311.pyc"])
        assert int.from_bytes(rewritten[8:12], "little") == 1234
        assert entries[site + "/pkg/__pycache__/mod.cpython-311.pyc"].size == len(data)
        # base.py is not in the layer: its mtime stays the base image's, and so does the header
        assert tree.read(entries[site + "/pkg/__pycache__/base.cpython-311.pyc"]) == data


def test_chunk_reader_reads_across_chunks():
    reader = io.BufferedReader(ChunkReader([b"ab", b"", b"cde", b"f"]), 2)
    assert reader.read(3) == b"abc" and reader.read() == b"def" and reader.read() == b""
