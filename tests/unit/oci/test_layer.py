"""Splitting a virtualenv into per-distribution layers."""
from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from pbrx_images.oci.layer import (LayerPlan, group, human_size, is_installed_record,
                                   layer_entries, layers_summary, parse_record, pyc_source, split,
                                   without_noise)
from pbrx_images.oci.tar import Tree, write_layer
from tests.unit.oci.trees import export

SITE = "opt/venv/lib/python3.11/site-packages"


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
