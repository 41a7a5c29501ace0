"""The fast path's decision: which app changes can patch the last build's project layer."""
from __future__ import annotations

import hashlib

import pytest

from pbrx_images.plan import fast_path
from pbrx_images.plan.fast_path import FastRecord, Patch, RecordedConfig, decide

SITE = "opt/venv/lib/python3.11/site-packages/"
SOURCE = {"pyproject.toml": b"[project]\nname = 'pgtool'\nversion = '1.0'\n",
          "pgtool/__init__.py": b"",
          "pgtool/cli.py": b"print('hello')\n",
          "pgtool/data/greeting.txt": b"hello\n",
          "README.md": b"# pgtool\n",
          ".git/index": b"index one"}
INPUTS = {"tool": "t1", "base": "b1", "constraints": "c1"}
TEXTS = {"pyproject.toml": SOURCE["pyproject.toml"].decode()}


def index(files: dict[str, bytes], mode: int = 0o644) -> dict[str, str]:
    return {path: fast_path.file_digest(mode, hashlib.sha256(data).hexdigest())
            for path, data in files.items()}


def layer_files(files: dict[str, bytes]) -> dict[str, str]:
    return {SITE + path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


def record(source: dict[str, bytes] = SOURCE, git: str | None = None) -> FastRecord:
    installed = {path: data for path, data in source.items() if path.startswith("pgtool/")}
    installed["pgtool-1.0.dist-info/METADATA"] = b"Name: pgtool\n"
    return FastRecord(INPUTS, index(source), git, "sha256:layer",
                      fast_path.copies(index(source), layer_files(installed)),
                      (RecordedConfig("pgtool-base", "{}"),), build="key1")


def decided(source: dict[str, bytes], *, previous: FastRecord | None = None,
            inputs: dict[str, str] = INPUTS, git: str | None = None,
            texts: dict[str, str] = TEXTS, backend: str = "setuptools.build_meta",
            mode: int = 0o644) -> Patch | str:
    return decide(previous or record(), inputs, index(source, mode), git, texts, backend,
                  "pgtool")


def test_copies_are_installed_files_with_the_same_content_and_path():
    found = record().copies
    assert found == {SITE + "pgtool/__init__.py": "pgtool/__init__.py",
                     SITE + "pgtool/cli.py": "pgtool/cli.py",
                     SITE + "pgtool/data/greeting.txt": "pgtool/data/greeting.txt"}


def test_a_src_layout_is_matched_and_two_candidates_are_none():
    source = index({"src/pkg/a.py": b"x", "src/pkg/b.py": b"same", "pkg/b.py": b"same",
                    "other/pkg/c.py": b"c"})
    found = fast_path.copies(source, layer_files({"pkg/a.py": b"x", "pkg/b.py": b"same",
                                                  "pkg/c.py": b"c"}))
    assert found == {SITE + "pkg/a.py": "src/pkg/a.py"}


def test_a_changed_module_is_a_patch():
    patch = decided(dict(SOURCE, **{"pgtool/cli.py": b"print('bye')\n"}))
    assert patch == Patch({SITE + "pgtool/cli.py": "pgtool/cli.py"}, ("pgtool/cli.py",))


def test_changed_package_data_is_a_patch():
    patch = decided(dict(SOURCE, **{"pgtool/data/greeting.txt": b"bye\n"}))
    assert isinstance(patch, Patch)
    assert list(patch.files) == [SITE + "pgtool/data/greeting.txt"]


def test_git_files_alone_do_not_count_when_the_version_does_not_come_from_git():
    changed = dict(SOURCE, **{".git/index": b"index two", "pgtool/cli.py": b"x = 1\n"})
    assert isinstance(decided(changed), Patch)


@pytest.mark.parametrize("change, reason", [
    ({"pgtool/new.py": b""}, "pgtool/new.py is new: the project's wheel is built"),
    ({"pyproject.toml": b"[project]\nname = 'pgtool'\nversion = '1.1'\n"},
     "pyproject.toml changed: the project's wheel is built"),
    ({"README.md": b"# pgtool, again\n"},
     "README.md changed, and it is not installed as it is: the project's wheel is built"),
])
def test_what_sends_the_build_down_the_full_path(change, reason):
    assert decided(dict(SOURCE, **change)) == reason


def test_a_removed_module_is_the_full_path():
    source = {path: data for path, data in SOURCE.items() if path != "pgtool/cli.py"}
    assert decided(source) == "pgtool/cli.py was removed: the project's wheel is built"


def test_a_mode_change_is_the_full_path():
    previous = record()
    source = index(dict(SOURCE, **{"pgtool/cli.py": b"changed"}))
    source["pgtool/cli.py"] = fast_path.file_digest(0o755, hashlib.sha256(b"changed").hexdigest())
    assert decide(previous, INPUTS, source, None, TEXTS, "setuptools.build_meta",
                  "pgtool").startswith("the mode of pgtool/cli.py changed")


def test_another_input_is_named():
    assert decided(dict(SOURCE, **{"pgtool/cli.py": b"x"}), inputs=dict(INPUTS, base="b2")) \
        == "the base image changed since the last build: every image is built"


def test_no_record_and_an_unavailable_one_say_why():
    assert decide(None, INPUTS, index(SOURCE), None, TEXTS, "", "pgtool").startswith(
        "no earlier build of this project")
    unavailable = FastRecord(INPUTS, index(SOURCE), None,
                             unavailable="the project has compiled extensions")
    assert decided(SOURCE, previous=unavailable) == \
        "the project has compiled extensions: the project's wheel is built"


def test_a_version_from_git_needs_the_same_answer_from_git():
    texts = {"setup.py": "import setuptools\nsetuptools.setup(setup_requires=['pbr'], "
                         "pbr=True)\n"}
    assert fast_path.version_from_git(texts)
    assert not fast_path.version_from_git(TEXTS)
    changed = dict(SOURCE, **{"pgtool/cli.py": b"x"})
    previous = record(git="1.0-0-gabc clean")
    assert isinstance(decided(changed, previous=previous, git="1.0-0-gabc clean"), Patch)
    assert decided(changed, previous=previous, git="1.0-1-gdef clean").startswith(
        "the version comes from git")


@pytest.mark.parametrize("texts, backend, reason", [
    ({"setup.cfg": "[metadata]\nversion = attr: pgtool.__version__\n"}, "setuptools",
     "setup.cfg takes an attribute of it"),
    ({"pyproject.toml": '[tool.hatch.version]\npath = "pgtool/__init__.py"\n'}, "hatchling",
     "pyproject.toml names it"),
    ({"setup.py": "version = read('__init__.py')\n"}, "setuptools", "setup.py names it"),
    ({}, "flit_core.buildapi", "flit takes the version and summary from it"),
])
def test_a_file_the_metadata_comes_from_is_the_full_path(texts, backend, reason):
    changed = dict(SOURCE, **{"pgtool/__init__.py": b"__version__ = '2'\n"})
    found = decided(changed, texts=texts, backend=backend)
    assert isinstance(found, str) and "(%s)" % reason in found, found


def test_record_lines_are_rewritten_as_pip_writes_them():
    record_file = (b"../../../bin/pgtool,sha256=abc,165\n"
                   b"pgtool/__pycache__/cli.cpython-311.pyc,,\n"
                   b"pgtool/cli.py,sha256=old,3\n"
                   b"pgtool-1.0.dist-info/RECORD,,\n")
    new = fast_path.rewrite_record(record_file, {"pgtool/cli.py": b"x = 1\n"})
    assert new.splitlines()[2] == b"pgtool/cli.py,%s,6" % fast_path.record_hash(
        b"x = 1\n").encode()
    assert new.splitlines()[:2] == record_file.splitlines()[:2]
    assert fast_path.record_hash(b"") == "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    with pytest.raises(KeyError):
        fast_path.rewrite_record(record_file, {"pgtool/other.py": b""})


def test_pyc_paths_are_importlibs():
    assert fast_path.pyc_path("a/b/mod.py", "cpython-311") == \
        "a/b/__pycache__/mod.cpython-311.pyc"


def test_records_round_trip_and_others_are_none():
    previous = record(git="state")
    assert fast_path.from_json(fast_path.to_json(previous)) == previous
    assert fast_path.from_json({"recipe": "fast-0"}) is None
    assert fast_path.from_json(dict(fast_path.to_json(previous), images=[{"name": "x"}])) is None
    assert fast_path.from_json("not a record") is None


def test_nothing_changed_and_only_git_changed_say_so():
    assert decided(SOURCE) == ("the source is the last build's, but its images are gone or "
                               "were changed: every image is built")
    assert decided(dict(SOURCE, **{".git/index": b"index two"})) == \
        "only git's own files changed (.git/): the project's wheel is built"


CONFIG = fast_path.canonical({"architecture": "amd64", "config": {"Cmd": ["x"]},
                              "rootfs": {"type": "layers",
                                         "diff_ids": ["sha256:a", "sha256:old", "sha256:c"]}})


def test_a_patched_configuration_changes_only_the_layer():
    patched = fast_path.patch_config(CONFIG, "sha256:old", "sha256:new")
    assert patched == CONFIG.replace("sha256:old", "sha256:new")
    with pytest.raises(ValueError):
        fast_path.patch_config(CONFIG, "sha256:other", "sha256:new")
    with pytest.raises(ValueError):  # the bytes would change elsewhere too
        fast_path.patch_config(CONFIG.replace(",", ", "), "sha256:old", "sha256:new")


@pytest.mark.parametrize("path, reason", [
    (SITE + "pkg/_speed.cpython-311-x86_64-linux-gnu.so",
     "the project has compiled extensions (_speed.cpython-311-x86_64-linux-gnu.so)"),
    (SITE + "pkg/libfoo.so.1.2", "the project has compiled extensions (libfoo.so.1.2)"),
    (SITE + "pkg/sorted.py", None),
    (SITE + "pkg/data/notes.so-called.txt", None),
])
def test_a_layer_with_compiled_extensions_is_unavailable(path, reason):
    assert fast_path.layer_unavailable([SITE + "pkg/__init__.py", path]) == reason
