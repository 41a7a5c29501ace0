"""Tests for pbrx_images.project.source."""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from pbrx_images.errors import ProjectError
from pbrx_images.project import source
from pbrx_images.project.source import archive_source


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small project with tool caches, an executable and symlinks."""
    root = tmp_path / "project"
    files = {
        "setup.cfg": b"[metadata]\nname = foo\n",
        "README.rst": b"Foo\n",
        "foo/__init__.py": b"",
        "foo/cli.py": b"def main():\n    pass\n",
        "foo/data/table.csv": b"a,b\n1,2\n",
        "tools/run.sh": b"#!/bin/sh\necho hi\n",
        ".git/HEAD": b"ref: refs/heads/main\n",
        ".tox/py3/bin/python": b"venv",
        ".venv/lib/site.py": b"venv",
        "foo/__pycache__/cli.cpython-311.pyc": b"\0\0",
        "__pycache__/x.pyc": b"\0",
        ".pytest_cache/v": b"",
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    os.chmod(root / "tools" / "run.sh", 0o755)
    os.symlink("setup.cfg", root / "config-link")
    os.symlink("foo", root / "foo-link")  # a symlink to a directory
    os.symlink("../README.rst", root / "foo" / "README")
    os.symlink("does-not-exist", root / "dangling")
    return root


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {member.name: member for member in archive.getmembers()}


def read_member(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        handle = archive.extractfile(name)
        assert handle is not None
        return handle.read()


def listing(root: Path) -> list[tuple]:
    """Every path below ``root`` with type, mode, size, mtime and link target."""
    result = []
    for current, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files) + ["."]:
            path = os.path.join(current, name)
            info = os.lstat(path)
            target = os.readlink(path) if os.path.islink(path) else None
            result.append((os.path.relpath(path, root), info.st_mode, info.st_size,
                           info.st_mtime_ns, info.st_uid, info.st_gid, target))
    return result


def test_files_are_under_src(tree):
    entries = members(archive_source(tree).data)
    assert "src" in entries
    assert entries["src"].isdir()
    assert all(name == "src" or name.startswith("src/") for name in entries)
    for name in ("setup.cfg", "README.rst", "foo/__init__.py", "foo/cli.py",
                 "foo/data/table.csv", "tools/run.sh", ".git/HEAD"):
        assert entries["src/" + name].isfile(), name
    for name in ("foo", "foo/data", "tools", ".git"):
        assert entries["src/" + name].isdir(), name


def test_other_prefix(tree):
    entries = members(archive_source(tree, prefix="work/tree").data)
    assert "work/tree/setup.cfg" in entries
    assert not any(name.startswith("src") for name in entries)


def test_entries_owned_by_root_without_names(tree):
    entries = members(archive_source(tree).data)
    for name, member in entries.items():
        assert (member.uid, member.gid) == (0, 0), name
        assert (member.uname, member.gname) == ("", ""), name


def test_entries_owned_by_root_when_files_are_not(tree):
    if os.geteuid() != 0:
        pytest.skip("only root can give files to another user")
    os.chown(tree / "setup.cfg", 1234, 5678)
    member = members(archive_source(tree).data)["src/setup.cfg"]
    assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")


def test_content_and_modes_round_trip(tree):
    data = archive_source(tree).data
    assert read_member(data, "src/foo/cli.py") == b"def main():\n    pass\n"
    assert read_member(data, "src/foo/data/table.csv") == b"a,b\n1,2\n"
    entries = members(data)
    assert entries["src/tools/run.sh"].mode & 0o777 == 0o755
    assert entries["src/setup.cfg"].mode & 0o777 == (tree / "setup.cfg").stat().st_mode & 0o777


def test_excluded_directories_absent(tree):
    names = set(members(archive_source(tree).data))
    for excluded in (".tox", ".venv", "__pycache__", ".pytest_cache"):
        assert not any(("/%s/" % excluded) in name + "/" for name in names), excluded
    assert "src/foo/__pycache__" not in names
    assert "src/foo/__pycache__/cli.cpython-311.pyc" not in names


def test_files_count_regular_files_only(tree):
    # setup.cfg, README.rst, foo/__init__.py, foo/cli.py, foo/data/table.csv,
    # tools/run.sh, .git/HEAD
    assert archive_source(tree).files == 7


def test_symlinks_kept_as_links(tree):
    entries = members(archive_source(tree).data)
    assert entries["src/config-link"].issym()
    assert entries["src/config-link"].linkname == "setup.cfg"
    assert entries["src/foo/README"].issym()
    assert entries["src/foo/README"].linkname == "../README.rst"
    assert entries["src/dangling"].issym()
    assert entries["src/dangling"].linkname == "does-not-exist"


def test_symlink_to_directory_kept_as_link_and_not_followed(tree):
    entries = members(archive_source(tree).data)
    assert entries["src/foo-link"].issym()
    assert entries["src/foo-link"].linkname == "foo"
    assert not any(name.startswith("src/foo-link/") for name in entries)


def test_digest_stable_across_calls(tree):
    first, second = archive_source(tree), archive_source(tree)
    assert first.digest == second.digest
    assert len(first.digest) == 64


def test_digest_ignores_times(tree):
    before = archive_source(tree).digest
    for path in (tree / "setup.cfg", tree / "foo", tree, tree / "foo" / "cli.py"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    os.utime(tree / "config-link", (1_000_000_000, 1_000_000_000), follow_symlinks=False)
    assert archive_source(tree).digest == before


def test_digest_ignores_excluded_directories(tree):
    before = archive_source(tree).digest
    (tree / ".tox" / "py3" / "new").write_text("x")
    (tree / "foo" / "__pycache__" / "other.pyc").write_bytes(b"1")
    assert archive_source(tree).digest == before


def _write(root: Path, files: dict) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def test_setuptools_build_directory_is_left_out(tree):
    """A deleted module still in build/lib would come back in the wheel."""
    before = archive_source(tree)
    _write(tree, {"build/lib/foo/deleted.py": b"", "build/bdist.linux-x86_64/x": b"",
                  "build/lib.linux-x86_64-cpython-311/foo/_c.so": b"",
                  "build/temp.linux-x86_64-cpython-311/c.o": b"",
                  "build/scripts-3.11/foo": b"", ".eggs/pbr-6.egg/x": b""})
    after = archive_source(tree)
    assert not any(name.startswith(("src/build", "src/.eggs")) for name in members(after.data))
    assert after.digest == before.digest
    assert after.left_out == (("build", "what an earlier setuptools build left"),)
    assert before.left_out == ()


@pytest.mark.parametrize("files", [
    {"build/ci.sh": b"make\n", "build/lib/x": b""},  # not only setuptools' output
    {"build/__init__.py": b"", "build/lib/x": b""},  # a package named build
    {"src/build/lib/x.py": b""},  # not at the top
    {"build/libs/x": b""},  # not a name setuptools makes
])
def test_other_build_directories_are_source(tree, files):
    _write(tree, files)
    archive = archive_source(tree)
    names = set(members(archive.data))
    assert all("src/" + name in names for name in files)
    assert archive.left_out == ()


def test_virtualenvs_are_left_out_whatever_their_name(tree):
    before = archive_source(tree).digest
    _write(tree, {"env/pyvenv.cfg": b"home = /usr/bin\n", "env/bin/python": b"",
                  "tools/venv/pyvenv.cfg": b"", "tools/venv/lib/site.py": b""})
    archive = archive_source(tree)
    assert archive.digest == before
    assert not any(name.startswith(("src/env", "src/tools/venv")) for name in
                   members(archive.data))
    assert archive.left_out == (("env", "a virtualenv"), ("tools/venv", "a virtualenv"))


def test_a_link_named_build_is_an_entry(tree):
    _write(tree, {"out/lib/x": b""})
    os.symlink("out", tree / "build")
    assert members(archive_source(tree).data)["src/build"].issym()


def test_digest_changes_with_content(tree):
    before = archive_source(tree).digest
    (tree / "foo" / "cli.py").write_bytes(b"def main():\n    return 1\n")
    assert archive_source(tree).digest != before


def test_digest_changes_with_content_of_the_same_size(tree):
    before = archive_source(tree).digest
    (tree / "README.rst").write_bytes(b"Bar\n")
    assert archive_source(tree).digest != before


def test_digest_changes_with_mode(tree):
    before = archive_source(tree).digest
    os.chmod(tree / "foo" / "cli.py", 0o755)
    assert archive_source(tree).digest != before


def test_digest_changes_with_directory_mode(tree):
    before = archive_source(tree).digest
    os.chmod(tree / "foo" / "data", 0o700)
    assert archive_source(tree).digest != before


def test_digest_changes_with_a_new_file_or_directory(tree):
    before = archive_source(tree).digest
    (tree / "empty").mkdir()
    with_dir = archive_source(tree).digest
    assert with_dir != before
    (tree / "empty" / "file").write_bytes(b"")
    assert archive_source(tree).digest not in (before, with_dir)


def test_digest_changes_with_a_rename(tree):
    before = archive_source(tree).digest
    os.rename(tree / "README.rst", tree / "README.txt")
    os.unlink(tree / "foo" / "README")
    os.symlink("../README.txt", tree / "foo" / "README")
    assert archive_source(tree).digest != before


def test_digest_changes_with_a_link_target(tree):
    before = archive_source(tree).digest
    os.unlink(tree / "config-link")
    os.symlink("README.rst", tree / "config-link")
    assert archive_source(tree).digest != before


def test_archive_is_deterministic_for_the_same_tree(tree):
    assert archive_source(tree).data == archive_source(tree).data


def test_source_tree_not_modified(tree):
    before = listing(tree)
    archive_source(tree)
    archive_source(tree, prefix="other")
    assert listing(tree) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_raises_project_error(tree):
    path = tree / "foo" / "cli.py"
    os.chmod(path, 0)
    try:
        with pytest.raises(ProjectError, match="cli.py"):
            archive_source(tree)
    finally:
        os.chmod(path, 0o644)


def test_file_that_cannot_be_opened_raises_project_error(tree, monkeypatch):
    """Simulated with a failing open(), so it also runs as root."""
    target = str(tree / "foo" / "cli.py")

    def failing_open(path, *args, **kwargs):
        if str(path) == target:
            raise PermissionError(13, "Permission denied", path)
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(source, "open", failing_open, raising=False)
    with pytest.raises(ProjectError, match="Permission denied") as info:
        archive_source(tree)
    assert target in str(info.value)


def test_sockets_and_fifos_skipped(tree):
    os.mkfifo(tree / "fifo")
    entries = members(archive_source(tree).data)
    assert "src/fifo" not in entries


def test_unreadable_directory_raises_project_error(tree, monkeypatch):
    """Simulated with a failing os.scandir(), so it also runs as root."""
    target = str(tree / "foo" / "data")
    real_scandir = os.scandir

    def failing_scandir(path="."):
        if os.fspath(path) == target:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", failing_scandir)
    with pytest.raises(ProjectError, match="data"):
        archive_source(tree)


def test_file_name_that_is_not_utf8(tree):
    name = os.path.join(os.fsencode(tree), b"caf\xe9.txt")
    with open(name, "wb") as handle:
        handle.write(b"latin-1 name\n")
    archive = archive_source(tree)
    assert archive.files == 8
    assert any(name.startswith("src/caf") for name in members(archive.data))


LOOSE = ".git/objects/ab/" + "c" * 38
PACK = ".git/objects/pack/pack-" + "d" * 40 + ".pack"


def test_git_objects_are_read_only_for_the_archive(tree, monkeypatch):
    """Their names say what they hold: a rebuild with nothing changed does not read them."""
    _write(tree, {LOOSE: b"loose object", PACK: b"pack data", ".git/objects/info/packs": b"P"})
    opened = []
    real_open = builtins.open

    def recording_open(path, *args, **kwargs):
        opened.append(os.path.relpath(str(path), tree))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    archive = archive_source(tree)
    assert LOOSE not in opened and PACK not in opened
    assert ".git/objects/info/packs" in opened and ".git/HEAD" in opened
    data = archive.data
    assert LOOSE in opened and PACK in opened
    assert read_member(data, "src/" + LOOSE) == b"loose object"
    assert read_member(data, "src/" + PACK) == b"pack data"
    assert archive.files == 10  # the tree's 7, the two objects and objects/info/packs


def test_git_objects_count_in_the_digest_by_name_and_size(tree):
    _write(tree, {LOOSE: b"loose object"})
    before = archive_source(tree).digest
    _write(tree, {LOOSE: b"LOOSE OBJECT"})  # (git never rewrites an object otherwise)
    assert archive_source(tree).digest == before
    _write(tree, {LOOSE: b"a longer object"})
    assert archive_source(tree).digest != before
    _write(tree, {LOOSE: b"loose object", PACK: b"pack"})
    assert archive_source(tree).digest != before


def test_other_git_files_and_nested_repositories_count_by_content(tree):
    nested = "vendor/lib/" + LOOSE
    _write(tree, {".git/objects/info/packs": b"P 1", nested: b"x"})
    before = archive_source(tree).digest
    _write(tree, {".git/objects/info/packs": b"P 2"})
    assert archive_source(tree).digest != before
    before = archive_source(tree).digest
    _write(tree, {nested: b"y"})
    assert archive_source(tree).digest != before


def test_a_git_object_gone_before_the_archive_is_made_is_a_project_error(tree):
    _write(tree, {LOOSE: b"loose object"})
    archive = archive_source(tree)
    (tree / LOOSE).unlink()  # git gc packed it meanwhile
    with pytest.raises(ProjectError, match="git gc"):
        archive.data


@pytest.mark.parametrize("prefix", ["src", "."])
def test_index_says_what_each_entry_holds_and_read_gives_a_file(tree, prefix):
    archive = archive_source(tree, prefix=prefix)
    index = archive.index()
    assert index["foo/cli.py"] == (0o644, hashlib.sha256(b"def main():\n    pass\n").hexdigest())
    assert index["tools/run.sh"][0] == 0o755
    assert index["config-link"] == (0o777, "link:setup.cfg")
    assert "foo" not in index and "" not in index and "." not in index  # (directories)
    assert ".tox/py3/bin/python" not in index
    assert archive.read("foo/data/table.csv") == b"a,b\n1,2\n"
    assert archive.read("foo") is None
    assert archive.read("missing.py") is None


def test_index_of_a_git_object_is_its_size(tree):
    obj = tree / ".git" / "objects" / "ab" / ("c" * 38)
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"zlib data")
    archive = archive_source(tree)
    assert archive.index()[".git/objects/ab/" + "c" * 38][1] == "git object, size 9"
    assert archive.read(".git/objects/ab/" + "c" * 38) is None


def test_an_edit_changes_only_that_files_index_entry(tree):
    before = archive_source(tree).index()
    (tree / "foo" / "cli.py").write_bytes(b"def main():\n    return 1\n")
    after = archive_source(tree).index()
    assert [path for path in after if after[path] != before[path]] == ["foo/cli.py"]
