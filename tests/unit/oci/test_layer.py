"""Splitting a virtualenv into per-distribution layers, and normalised tars."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile

import pytest

from pbrx_images.oci.layer import (LayerPlan, group, human_size, is_installed_record,
                                   layer_entries, layers_summary, parse_record, pyc_source, split,
                                   without_noise)
from pbrx_images.oci.tar import (Entry, Tree, entry_from_member, member_path, pax_record,
                                 read_tree, write_layer)

SITE = "opt/venv/lib/python3.11/site-packages"


def export(files: dict[str, bytes | str], root: str = "/opt/venv", symlinks=None) -> Tree:
    """A tree as the archive API would give ``root``: members named from its last part."""
    buffer = io.BytesIO()
    prefix = root.strip("/").rpartition("/")[0] + "/"
    dirs = set()
    for path in files:
        parts = path.split("/")
        dirs.update("/".join(parts[:n]) for n in range(2, len(parts)))
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory in sorted(dirs):
            info = tarfile.TarInfo(directory[len(prefix):])
            info.type, info.mode, info.mtime, info.uid = tarfile.DIRTYPE, 0o755, 123, 7
            archive.addfile(info)
        for path, content in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path[len(prefix):])
            info.size, info.mode, info.mtime, info.uname = len(data), 0o644, 999, "someone"
            archive.addfile(info, io.BytesIO(data))
        for path, target in (symlinks or {}).items():
            info = tarfile.TarInfo(path[len(prefix):])
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    buffer.seek(0)
    return read_tree(buffer, root)


def record(*paths: str) -> str:
    return "".join("%s,sha256=x,1\n" % path for path in paths)


def dist(name: str, version: str, files: dict[str, str], extra_record=()) -> dict[str, str]:
    info = "%s/%s-%s.dist-info" % (SITE, name, version)
    result = {"%s/%s" % (SITE, path): content for path, content in files.items()}
    result[info + "/METADATA"] = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n\nx\n" % (
        name, version)
    listed = list(files) + ["%s-%s.dist-info/METADATA" % (name, version),
                            "%s-%s.dist-info/RECORD" % (name, version)] + list(extra_record)
    result[info + "/RECORD"] = record(*listed)
    return result


def venv(*parts: dict[str, str]) -> dict[str, str]:
    files = {"opt/venv/pyvenv.cfg": "home = /usr/bin\n"}
    for part in parts:
        files.update(part)
    return files


def test_parse_record_reads_csv_with_quoted_commas():
    text = 'a/b.py,sha256=abc,12\n"a/with,comma.py",sha256=def,3\na/c.pyc,,\n\n'
    assert parse_record(text) == ["a/b.py", "a/with,comma.py", "a/c.pyc"]


@pytest.mark.parametrize("path,source", [
    ("x/pkg/__pycache__/mod.cpython-311.pyc", "x/pkg/mod.py"),
    ("x/pkg/__pycache__/mod.cpython-311.opt-1.pyc", "x/pkg/mod.py"),
    ("x/pkg/mod.pyc", "x/pkg/mod.py"),
    ("x/pkg/mod.py", None),
])
def test_pyc_source(path, source):
    assert pyc_source(path) == source


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


def test_split_one_layer_per_distribution_project_on_top_largest_first():
    parent = export(venv()).index()
    tree = export(venv(
        dist("small", "1.0", {"small.py": "s"}),
        dist("Big_Thing", "2.0", {"big/__init__.py": "b" * 5000, "../../../bin/big": "#!x"}),
        dist("app", "0.1", {"app/__init__.py": "a"}),
    ))
    layers = split(tree, parent, "App")
    assert [layer.description for layer in layers] == ["Big_Thing 2.0", "small 1.0", "app 0.1"]
    assert [layer.kind for layer in layers] == ["dependency", "dependency", "project"]
    big = layers[0]
    assert "opt/venv/bin/big" in big.paths  # resolved against the venv root
    assert SITE + "/big/__init__.py" in big.paths
    assert SITE + "/Big_Thing-2.0.dist-info/RECORD" in big.paths
    assert big.name == "big-thing"
    assert "opt/venv/pyvenv.cfg" not in [p for layer in layers for p in layer.paths]


def test_byte_code_goes_with_its_source_even_when_record_omits_it():
    files = venv(dist("lib", "1", {"lib/mod.py": "x"}))
    files[SITE + "/lib/__pycache__/mod.cpython-311.pyc"] = b"\x00pyc"
    layers = split(export(files), {}, "other")
    assert layers[0].paths.count(SITE + "/lib/__pycache__/mod.cpython-311.pyc") == 1
    assert [layer.kind for layer in layers] == ["dependency", "leftovers"]  # pyvenv.cfg


def test_unclaimed_and_doubly_claimed_files_go_to_the_leftovers_layer():
    parent = export(venv()).index()
    files = venv(dist("one", "1", {"ns/a.py": "a", "shared.py": "1"}),
                 dist("two", "1", {"ns/b.py": "b", "shared.py": "1"}))
    files[SITE + "/stray.txt"] = "nobody's"
    layers = split(export(files), parent, "project")
    leftovers = layers[-1]
    assert leftovers.kind == "leftovers"
    assert sorted(leftovers.paths) == [SITE + "/shared.py", SITE + "/stray.txt"]
    one = next(layer for layer in layers if layer.name == "one")
    assert SITE + "/ns/a.py" in one.paths and SITE + "/shared.py" not in one.paths


def test_vendored_metadata_belongs_to_the_package_that_vendors_it():
    """setuptools ships ``_vendor/packaging-24.2.dist-info`` and lists it in its RECORD."""
    vendored = "setuptools/_vendor/packaging-24.2.dist-info/"
    vendored_files = {vendored + "METADATA": "Metadata-Version: 2.1\nName: packaging\n"
                                             "Version: 24.2\n\n",
                      vendored + "RECORD": record("packaging/__init__.py"),
                      "setuptools/_vendor/packaging/__init__.py": "vendored"}
    setuptools_files = dict(vendored_files, **{"setuptools/__init__.py": "x"})
    files = venv(dist("setuptools", "80.9.0", setuptools_files),
                 dist("packaging", "26.4", {"packaging/__init__.py": "p"}))
    layers = split(export(files), export(venv()).index(), "project")
    assert sorted(layer.description for layer in layers) == [
        "packaging 26.4", "setuptools 80.9.0"]  # no leftovers, no "packaging 24.2"
    setuptools = next(layer for layer in layers if layer.name == "setuptools")
    assert SITE + "/" + vendored + "RECORD" in setuptools.paths
    assert SITE + "/setuptools/_vendor/packaging/__init__.py" in setuptools.paths


@pytest.mark.parametrize("path, installed", [
    (SITE + "/a-1.dist-info/RECORD", True),
    ("usr/lib/python3/dist-packages/a-1.dist-info/RECORD", True),
    (SITE + "/setuptools/_vendor/a-1.dist-info/RECORD", False),
    (SITE + "/pip/_vendor/a-1.dist-info/RECORD", False),
    (SITE + "/a-1.dist-info/METADATA", False),
    (SITE + "/a-1.egg-info/RECORD", False),
])
def test_is_installed_record(path, installed):
    assert is_installed_record(path) is installed


def test_namespace_directory_is_written_identically_in_every_layer():
    files = venv(dist("one", "1", {"ns/a.py": "a"}), dist("two", "1", {"ns/b.py": "b"}))
    tree = export(files)
    layers = split(tree, export(venv()).index(), "project")
    outputs = []
    for layer in layers:
        out = io.BytesIO()
        write_layer(tree, layer_entries(tree, layer), 0, out)
        out.seek(0)
        with tarfile.open(fileobj=out) as archive:
            outputs.append({m.name: (m.mode, m.mtime, m.uid) for m in archive
                            if m.name.endswith("/ns")})
    assert outputs[0] == outputs[1] and len(outputs[0]) == 1


def test_removed_files_become_whiteouts():
    parent = export(venv({SITE + "/old.py": "x"})).index()
    layers = split(export(venv()), parent, "project")
    assert layers[-1].whiteouts == [SITE + "/old.py"]
    tree = export(venv())
    out = io.BytesIO()
    write_layer(tree, layer_entries(tree, layers[-1]), 0, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as archive:
        assert SITE + "/.wh.old.py" in archive.getnames()


def test_without_noise_drops_direct_url_and_requested_and_fixes_record():
    files = venv(dist("app", "1", {"app.py": "x"}, extra_record=(
        "app-1.dist-info/direct_url.json", "app-1.dist-info/REQUESTED",
        "app-1.dist-info/INSTALLER")))
    info = SITE + "/app-1.dist-info/"
    files[info + "direct_url.json"] = '{"url": "file:///run/1234/app.whl"}'
    files[info + "REQUESTED"] = ""
    files[info + "INSTALLER"] = "pip\n"
    tree = without_noise(export(files))
    assert info + "direct_url.json" not in tree.entries
    assert info + "REQUESTED" not in tree.entries
    assert info + "INSTALLER" in tree.entries
    listed = parse_record(tree.read(tree.entries[info + "RECORD"]).decode())
    assert "app-1.dist-info/direct_url.json" not in listed
    assert "app-1.dist-info/REQUESTED" not in listed
    assert "app-1.dist-info/INSTALLER" in listed
    assert tree.entries[info + "RECORD"].digest == hashlib.sha256(
        tree.read(tree.entries[info + "RECORD"])).hexdigest()


def _layer_bytes(tree: Tree, plan: LayerPlan, mtime: int = 0) -> tuple[str, bytes]:
    out = io.BytesIO()
    digest = write_layer(tree, layer_entries(tree, plan), mtime, out)
    return digest, out.getvalue()


def test_written_layers_are_normalised_and_reproducible():
    long_name = SITE + "/" + "d" * 90 + "/" + "f" * 80 + ".py"
    files = venv(dist("app", "1", {"app.py": "x", long_name[len(SITE) + 1:]: "long"}))
    tree = export(files)
    plan = split(tree, {}, "app")[-1]
    digest, data = _layer_bytes(tree, plan, 1700000000)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    reordered = LayerPlan(plan.description, list(reversed(plan.paths)))
    assert _layer_bytes(tree, reordered, 1700000000) == (digest, data)
    assert _layer_bytes(tree, plan, 0)[0] != digest  # the mtime is in the digest
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        assert long_name in names
        assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {
            (0, 0, "", "", 1700000000)}
        assert all(not m.pax_headers for m in members)
        assert archive.extractfile(long_name).read() == b"long"
    assert b"PaxHeader" not in data and b"mtime=" not in data


def test_group_keeps_the_largest_and_merges_the_smallest():
    layers = [LayerPlan("d%d" % n, ["f%d" % n], size=100 - n) for n in range(10)]
    layers.append(LayerPlan("app", ["app"], kind="project"))
    kept, grouped = group(layers, 5)
    assert len(kept) == 5
    assert [layer.description for layer in kept[:3]] == ["d0", "d1", "d2"]
    assert kept[3].kind == "group" and sorted(kept[3].paths) == ["f%d" % n for n in range(3, 10)]
    assert kept[-1].description == "app"
    assert grouped == ["d%d" % n for n in range(3, 10)]
    assert group(layers, 11) == (layers, [])
    one, _ = group(layers, 1)
    assert len(one) == 1 and len(one[0].paths) == 11


def test_symlinks_are_kept():
    tree = export(venv(), symlinks={"opt/venv/lib64": "lib"})
    plan = split(tree, {}, "x")[-1]
    _, data = _layer_bytes(tree, plan)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        link = archive.getmember("opt/venv/lib64")
        assert link.issym() and link.linkname == "lib"


def test_stacked_puts_dependencies_by_size_then_leftovers_then_the_project():
    from pbrx_images.oci.layer import LayerPlan, stacked
    project = LayerPlan("app 1", [], 5, "project")
    leftovers = LayerPlan("files of no or of several distributions", [], 1, "leftovers")
    small, large = LayerPlan("b 1", [], 10), LayerPlan("a 1", [], 99)
    assert stacked([project, small, leftovers, large]) == [large, small, leftovers, project]


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


def test_a_few_layers_are_listed_in_full():
    layers = [("runtime packages libpq5", "packages", 9), ("psycopg2 2.9.10", "dependency", 5),
              ("pgtool 1.0", "project", 1)]
    assert layers_summary(layers) == (
        "3 layers: runtime packages libpq5; psycopg2 2.9.10; pgtool 1.0", None)


def test_many_layers_are_said_in_short_and_listed_in_full_apart():
    """Zuul's images: 160 distributions, which made one line of 5,000 characters."""
    layers = [("user zuul", "user", 10)]
    layers += [("dist%03d 1.0" % n, "dependency", 1000 * n) for n in range(1, 91)]
    layers += [("70 smaller distributions: " + ", ".join("small%d 1.0" % n for n in range(70)),
                "group", 500),
               ("files of no or of several distributions", "leftovers", 3),
               ("zuul 11.0", "project", 2_500_000)]
    line, whole = layers_summary(layers)
    assert line == ("94 layers: the largest dist090 1.0 (90.0 kB), dist089 1.0 (89.0 kB), "
                    "dist088 1.0 (88.0 kB); 87 more distributions; user zuul; "
                    "70 smaller distributions in one layer; "
                    "files of no or of several distributions; zuul 11.0 (-v lists them all)")
    assert len(line) < 300
    assert whole is not None and whole.startswith("94 layers: user zuul; dist001 1.0; ")
    assert all(description in whole for description, _, _ in layers)


@pytest.mark.parametrize("size, text", [(0, "0 B"), (999, "999 B"), (20500, "20.5 kB"),
                                        (173_500_000, "173.5 MB"), (2_000_000_000, "2.0 GB")])
def test_human_size(size, text):
    assert human_size(size) == text
