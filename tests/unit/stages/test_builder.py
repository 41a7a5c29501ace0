"""Tests for the pure helpers of pbrx_images.stages.builder and pbrx_images.engine."""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

from pbrx_images import container_tools
from pbrx_images.engine import ImageInfo, tar_files
from pbrx_images.plan import wheel_volume
from pbrx_images.project.source import archive_source
from pbrx_images.stages import builder
from pbrx_images.stages.builder import failed_wheels, image_config_changes

# --------------------------------------------------------------------------
# failed_wheels

PIP_INSTALL_FAILURE = """\
Collecting psycopg2==2.9.9
  Downloading psycopg2-2.9.9.tar.gz (384 kB)
Building wheels for collected packages: psycopg2, lxml
  Building wheel for psycopg2 (setup.py) ... error
  error: subprocess-exited-with-error

  \u00d7 python setup.py bdist_wheel did not run successfully.
  \u2502 exit code: 1
  \u2570\u2500> [4 lines of output]
      Error: pg_config executable not found.
      [end of output]

  note: This error originates from a subprocess, and is likely not a problem with pip.
  ERROR: Failed building wheel for psycopg2
  Running setup.py clean for psycopg2
  Building wheel for lxml (setup.py) ... error
  ERROR: Failed building wheel for lxml
Failed to build psycopg2 lxml
ERROR: Could not build wheels for psycopg2, lxml, which is required to install \
pyproject.toml-based projects
"""


def test_failed_building_wheel_line():
    assert failed_wheels("  ERROR: Failed building wheel for psycopg2\n") == ["psycopg2"]


def test_failed_to_build_line_with_several_names():
    assert failed_wheels("Failed to build psycopg2 lxml\n") == ["psycopg2", "lxml"]


def test_each_name_once_in_order_of_appearance():
    assert failed_wheels(PIP_INSTALL_FAILURE) == ["psycopg2", "lxml"]


def test_names_with_dots_dashes_and_underscores():
    output = ("ERROR: Failed building wheel for zope.interface\n"
              "ERROR: Failed building wheel for pydantic-core\n"
              "Failed to build zope.interface pydantic-core my_pkg\n")
    assert failed_wheels(output) == ["zope.interface", "pydantic-core", "my_pkg"]


def test_windows_line_endings():
    assert failed_wheels("ERROR: Failed building wheel for lxml\r\n") == ["lxml"]


@pytest.mark.parametrize("output", [
    "",
    "Successfully built six\n",
    "ERROR: Could not find a version that satisfies the requirement nope\n"
    "ERROR: No matching distribution found for nope\n",
    "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io\n",
])
def test_no_wheel_failure(output):
    assert failed_wheels(output) == []


def test_pip_wheel_summary_line_is_not_a_name():
    output = ("  ERROR: Failed building wheel for psycopg2\n"
              "  Running setup.py clean for psycopg2\n"
              "Failed to build psycopg2\n"
              "ERROR: Failed to build one or more wheels\n")
    assert failed_wheels(output) == ["psycopg2"]


def test_could_not_build_wheels_line():
    output = ("ERROR: Could not build wheels for psycopg2, lxml, which is required to install "
              "pyproject.toml-based projects\n")
    assert failed_wheels(output) == ["psycopg2", "lxml"]


def test_pip_24_install_summary_line():
    output = ("ERROR: Failed to build installable wheels for some pyproject.toml based "
              "projects (pyarrow, lxml)\n")
    assert failed_wheels(output) == ["pyarrow", "lxml"]


def test_pip_diagnostic_summary_is_not_a_list_of_names():
    output = ("  ERROR: Failed building wheel for pydantic-core\n"
              "Failed to build aiohttp pydantic-core\n"
              "error: failed-wheel-build-for-install\n"
              "\n"
              "\u00d7 Failed to build installable wheels for some pyproject.toml based projects\n"
              "\u2570\u2500> aiohttp, pydantic-core\n")
    assert failed_wheels(output) == ["pydantic-core", "aiohttp"]


def test_long_output_is_parsed_quickly():
    lines = ["Failed to build " + "a" * 5000 + " (",
             "Could not build wheels for " + "a, " * 3000,
             "Failed to build installable wheels for " + "(" * 1000,
             "Failed building wheel for " + "-" * 5000 + "!"] * 20
    started = time.monotonic()
    failed_wheels("\n".join(lines + ["x" * 100] * 20000))
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------
# image_config_changes


def image(entrypoint=("docker-entrypoint.sh",), cmd=("python3",)) -> ImageInfo:
    return ImageInfo(id="sha256:" + "a" * 64, entrypoint=entrypoint, cmd=cmd,
                     env=("PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"), user="",
                     size=123, digest="sha256:" + "a" * 64)


def test_changes_restore_the_base_entrypoint_and_cmd():
    assert image_config_changes(image()) == [
        'ENTRYPOINT ["docker-entrypoint.sh"]',
        'CMD ["python3"]',
    ]


def test_changes_for_a_base_without_entrypoint_or_cmd():
    assert image_config_changes(image(entrypoint=None, cmd=None)) == [
        "ENTRYPOINT []", "CMD []"]


def test_changes_are_json_arrays():
    changes = image_config_changes(image(entrypoint=("/bin/sh", "-c"),
                                         cmd=('echo "hi there"', "a\\b")))
    assert changes[0].startswith("ENTRYPOINT ")
    assert json.loads(changes[0][len("ENTRYPOINT "):]) == ["/bin/sh", "-c"]
    assert json.loads(changes[1][len("CMD "):]) == ['echo "hi there"', "a\\b"]


def test_changes_override_entrypoint_and_cmd():
    changes = image_config_changes(image(), ("/usr/bin/dumb-init", "--"), ("foo-api",))
    assert changes == ['ENTRYPOINT ["/usr/bin/dumb-init", "--"]', 'CMD ["foo-api"]']


def test_empty_overrides_clear_the_base_values():
    assert image_config_changes(image(), (), ()) == ["ENTRYPOINT []", "CMD []"]


def test_override_only_one_of_them():
    assert image_config_changes(image(), cmd=("foo",)) == [
        'ENTRYPOINT ["docker-entrypoint.sh"]', 'CMD ["foo"]']
    assert image_config_changes(image(), entrypoint=("tini",)) == [
        'ENTRYPOINT ["tini"]', 'CMD ["python3"]']


def test_env_lines_follow_entrypoint_and_cmd():
    changes = image_config_changes(image(), env={"PATH": "/opt/venv/bin:/usr/bin",
                                                 "VIRTUAL_ENV": "/opt/venv"})
    assert changes == [
        'ENTRYPOINT ["docker-entrypoint.sh"]',
        'CMD ["python3"]',
        'ENV PATH="/opt/venv/bin:/usr/bin"',
        'ENV VIRTUAL_ENV="/opt/venv"',
    ]


def test_values_with_spaces_and_quotes_are_quoted_and_labels_sorted():
    changes = image_config_changes(image(), env={"GREETING": 'say "hi" there'},
                                   labels={"z.last": "2", "a.first": "one two"})
    assert changes[2:] == ['ENV GREETING="say \\"hi\\" there"',
                           'LABEL a.first="one two"', 'LABEL z.last="2"']


def test_no_env_lines_by_default():
    assert not any(change.startswith("ENV") for change in image_config_changes(image()))
    assert not any(change.startswith("ENV")
                   for change in image_config_changes(image(), env={}))


# --------------------------------------------------------------------------
# engine.tar_files


def read_tar(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return archive.getmembers()


def test_tar_files_creates_parents_once_before_their_files():
    data = tar_files({"/tmp/pbrx-images-pip/pip.conf": b"[global]\n",
                      "/tmp/pbrx-images-pip/ca.pem": b"CERT",
                      "/etc/pip.conf": b""})
    names = [(member.name, member.isdir()) for member in read_tar(data)]
    assert names == [
        ("etc", True),
        ("etc/pip.conf", False),
        ("tmp", True),
        ("tmp/pbrx-images-pip", True),
        ("tmp/pbrx-images-pip/ca.pem", False),
        ("tmp/pbrx-images-pip/pip.conf", False),
    ]


def test_tar_files_modes_and_owner():
    members = {member.name: member
               for member in read_tar(tar_files({"/a/b/c.txt": b"x"}, mode=0o600))}
    assert members["a"].mode == 0o755
    assert members["a/b"].mode == 0o755
    assert members["a/b/c.txt"].mode == 0o600
    assert members["a/b/c.txt"].isfile()
    for member in members.values():
        assert (member.uid, member.gid) == (0, 0)


def test_tar_files_default_mode():
    (member,) = read_tar(tar_files({"/Dockerfile": b"FROM scratch\n"}))
    assert member.name == "Dockerfile"
    assert member.mode == 0o644


def test_tar_files_content_round_trip():
    files = {"/run/x/lock.txt": b"six==1.16.0\n", "/run/x/empty": b"",
             "/run/x/bin": bytes(range(256)) * 100}
    with tarfile.open(fileobj=io.BytesIO(tar_files(files))) as archive:
        for path, content in files.items():
            handle = archive.extractfile(path.lstrip("/"))
            assert handle is not None
            assert handle.read() == content


def test_tar_files_empty():
    assert read_tar(tar_files({})) == []


def test_tar_files_puts_a_tree_under_its_directory(tmp_path):
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "mod.py").write_text("x = 1\n")
    (project / "pkg" / "mod.py").chmod(0o755)
    (project / "link").symlink_to("pkg/mod.py")
    os.link(project / "pkg" / "mod.py", project / "hard.py")
    tree = archive_source(project, prefix=".").data
    data = tar_files({"/tmp/tools/tool.py": b"print()\n"}, trees={"/tmp/project": tree})
    members = {member.name: member for member in read_tar(data)}
    assert set(members) == {"tmp", "tmp/tools", "tmp/tools/tool.py", "tmp/project",
                            "tmp/project/hard.py", "tmp/project/link", "tmp/project/pkg",
                            "tmp/project/pkg/mod.py"}
    assert members["tmp/project"].isdir()
    assert members["tmp/project/hard.py"].mode == 0o755
    assert members["tmp/project/link"].linkname == "pkg/mod.py"  # relative: as it was
    # the second name of a hard link names the first by its new path
    assert members["tmp/project/pkg/mod.py"].islnk()
    assert members["tmp/project/pkg/mod.py"].linkname == "tmp/project/hard.py"
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        handle = archive.extractfile("tmp/project/pkg/mod.py")
        assert handle is not None and handle.read() == b"x = 1\n"


def test_lock_record_is_read_from_the_marked_line():
    output = 'noise\npbrx-images-lock:{"lock": ["a==1", "b @ git+https://x@1"], ' \
             '"wheels": ["a-1-py3-none-any.whl"], "pip": "pip-24-py3-none-any.whl", ' \
             '"sha256": {"a-1-py3-none-any.whl": "ab12"}}\n'
    lock, pip, digests = builder._lock_record(output)
    assert lock.requirements == ("a==1", "b @ git+https://x@1")
    assert pip == "pip-24-py3-none-any.whl"
    assert digests == {"a-1-py3-none-any.whl": "ab12"}
    assert builder._lock_record("") is None
    assert builder._lock_record("pbrx-images-lock:{broken") is None


def test_a_lock_record_without_the_digest_of_a_wheel_is_not_reused():
    assert builder._lock_record(
        'pbrx-images-lock:{"lock": ["a==1"], "wheels": ["a-1-py3-none-any.whl"], '
        '"pip": "pip-24-py3-none-any.whl", "sha256": {}}') is None
    assert builder._lock_record(
        'pbrx-images-lock:{"lock": ["a==1"], "wheels": ["a-1-py3-none-any.whl"], '
        '"pip": "pip-24-py3-none-any.whl"}') is None


def test_sha256sums_are_keyed_by_file_name():
    output = ("e3b0  ./a-1-py3-none-any.whl\n"
              "ab12 *./b-2-cp311-cp311-linux_x86_64.whl\n\n")
    assert builder._sha256sums(output) == {"a-1-py3-none-any.whl": "e3b0",
                                           "b-2-cp311-cp311-linux_x86_64.whl": "ab12"}


def _cache_tool(tmp_path, *arguments):
    tool = tmp_path / "wheel_cache.py"
    tool.write_bytes(container_tools.source("wheel_cache.py"))
    return subprocess.run([sys.executable, str(tool)] + [str(item) for item in arguments],
                          capture_output=True, text=True, check=True).stdout


def test_cache_tool_reuses_a_record_only_when_every_wheel_is_there(tmp_path):
    cache, run = tmp_path / "wheels", tmp_path / "wheels" / "runs" / "r1"
    run.mkdir(parents=True)
    record = {"lock": ["a==1"], "wheels": ["a-1-py3-none-any.whl"],
              "pip": "pip-24-py3-none-any.whl", "sha256": {"a-1-py3-none-any.whl": "ca97"}}
    (run / "lock-record.json").write_text(json.dumps(record))
    _cache_tool(tmp_path, "remember", run / "lock-record.json", cache / "locks" / "k.json")
    assert json.loads((cache / "locks" / "k.json").read_text()) == record
    (cache / "a-1-py3-none-any.whl").write_bytes(b"a")
    assert _cache_tool(tmp_path, "reuse", cache / "locks" / "k.json", cache, run) == ""
    assert not (run / "a-1-py3-none-any.whl").exists()  # pip's wheel is missing
    (cache / "pip-24-py3-none-any.whl").write_bytes(b"not a zip")
    assert _cache_tool(tmp_path, "reuse", cache / "locks" / "k.json", cache, run) == ""
    _pip_wheel(cache / "pip-24-py3-none-any.whl")
    output = _cache_tool(tmp_path, "reuse", cache / "locks" / "k.json", cache, run)
    assert builder._lock_record(output)[0].requirements == ("a==1",)
    assert (run / "a-1-py3-none-any.whl").read_bytes() == b"a"
    assert (run / "tools" / "pip-24-py3-none-any.whl").read_bytes() == \
        (cache / "pip-24-py3-none-any.whl").read_bytes()
    assert (cache / "pip" / "pip-24-py3-none-any" / "pip" / "__main__.py").is_file()
    assert (run / "lock.txt").read_text() == builder.Lock(("a==1",)).text()
    assert _cache_tool(tmp_path, "reuse", cache / "locks" / "none.json", cache, run) == ""


def test_cache_tool_start_prunes_and_names_the_cached_project_wheel(tmp_path):
    cache = tmp_path / "wheels"
    stale, current = cache / "runs" / "old", cache / "runs" / "new"
    for directory in (stale, current):
        directory.mkdir(parents=True)
    os.utime(stale, (time.time() - 7200,) * 2)
    project = cache / "projects" / "abc"
    assert _cache_tool(tmp_path, "start", cache, 3600, DAY, project) == "\n"
    assert not stale.exists() and current.exists()
    project.mkdir(parents=True)
    (project / "p-1-py3-none-any.whl").write_bytes(b"p")
    os.utime(project, (time.time() - 2 * 3600,) * 2)
    assert _cache_tool(tmp_path, "start", cache, 3600, DAY, project) == \
        "p-1-py3-none-any.whl\n"
    assert time.time() - project.stat().st_mtime < 600  # used now


DAY = 24 * 3600


def _age(path, days):
    os.utime(path, (time.time() - days * DAY,) * 2)
    return path


def _unused_cache(cache):
    """A wheel cache with one old and one recent thing of each kind."""
    things = {}
    for age in ("old", "new"):
        wheel = cache / ("%s-1-py3-none-any.whl" % age)
        lock = cache / "locks" / ("%s.json" % age)
        lock.parent.mkdir(parents=True, exist_ok=True)
        wheel.write_bytes(b"w")
        lock.write_text("{}")
        directories = [cache / kind / age for kind in ("projects", "build-envs", "pip")]
        for directory in directories:
            (directory / "bin").mkdir(parents=True)
            (directory / "bin" / "python").write_text("")
        things[age] = [wheel, lock] + directories
    for path in things["old"]:
        _age(path, 40)
    return things


def test_cache_tool_start_removes_what_no_build_used_for_long(tmp_path):
    cache = tmp_path / "wheels"
    things = _unused_cache(cache)
    _cache_tool(tmp_path, "start", cache, DAY, 30 * DAY, cache / "projects" / "none")
    assert [path for path in things["old"] if os.path.lexists(path)] == []
    assert all(path.exists() for path in things["new"])
    assert all((path / "bin" / "python").exists() for path in things["new"] if path.is_dir())
    assert sorted(path.name for path in (cache / "build-envs").iterdir()) == ["new"]


def test_cache_tool_prunes_directories_whole_and_leaves_what_it_cannot_rename(tmp_path):
    cache = tmp_path / "wheels"
    env = cache / "build-envs" / "k"
    (env / "bin").mkdir(parents=True)
    _age(env, 40)
    (cache / "build-envs" / "k.old-unused" / "lib").mkdir(parents=True)  # a cut-short removal
    _cache_tool(tmp_path, "start", cache, DAY, 30 * DAY, cache / "projects" / "none")
    assert (env / "bin").is_dir()  # not half removed: kept until the rename can be done
    _age(cache / "build-envs" / "k.old-unused", 2)
    _cache_tool(tmp_path, "start", cache, DAY, 30 * DAY, cache / "projects" / "none")
    assert list((cache / "build-envs").iterdir()) == []


def test_cache_tool_marks_what_a_build_takes_from_the_cache_as_used(tmp_path):
    cache, run = tmp_path / "wheels", tmp_path / "wheels" / "runs" / "r1"
    (run / "tools").mkdir(parents=True)
    record = {"lock": ["a==1"], "wheels": ["a-1-py3-none-any.whl"],
              "pip": "pip-24-py3-none-any.whl", "sha256": {"a-1-py3-none-any.whl": "ca97"}}
    (cache / "locks").mkdir()
    (cache / "locks" / "k.json").write_text(json.dumps(record))
    (cache / "a-1-py3-none-any.whl").write_bytes(b"a")
    _pip_wheel(cache / "pip-24-py3-none-any.whl")
    _cache_tool(tmp_path, "unpack", cache / "pip-24-py3-none-any.whl",
                cache / "pip" / "pip-24-py3-none-any", "r0")
    cached = [cache / "locks" / "k.json", cache / "a-1-py3-none-any.whl",
              cache / "pip-24-py3-none-any.whl", cache / "pip" / "pip-24-py3-none-any"]
    for path in cached:
        _age(path, 40)
    assert _cache_tool(tmp_path, "reuse", cache / "locks" / "k.json", cache, run)
    assert [path for path in cached if time.time() - path.stat().st_mtime > DAY] == []
    # a wheel pip took from the cache (find-links) is marked by publish
    (run / "b-1-py3-none-any.whl").write_bytes(b"b")
    (cache / "b-1-py3-none-any.whl").write_bytes(b"b")
    _age(cache / "b-1-py3-none-any.whl", 40)
    _cache_tool(tmp_path, "publish", run, cache, "r1", "p-1-py3-none-any.whl")
    assert time.time() - (cache / "b-1-py3-none-any.whl").stat().st_mtime < DAY


def test_cache_tool_does_not_reuse_a_record_whose_wheel_goes_while_copying(tmp_path):
    cache, run = tmp_path / "wheels", tmp_path / "wheels" / "runs" / "r1"
    run.mkdir(parents=True)
    record = {"lock": ["a==1"], "wheels": ["a-1-py3-none-any.whl"],
              "pip": "pip-24-py3-none-any.whl", "sha256": {}}
    (cache / "locks").mkdir()
    (cache / "locks" / "k.json").write_text(json.dumps(record))
    (cache / "a-1-py3-none-any.whl").write_bytes(b"a")
    (run / "a-1-py3-none-any.whl").mkdir()  # the copy fails, as when the wheel is pruned
    _pip_wheel(cache / "pip-24-py3-none-any.whl")
    assert _cache_tool(tmp_path, "reuse", cache / "locks" / "k.json", cache, run) == ""


def test_cache_tool_project_stores_a_new_wheel_and_copies_it_into_the_run(tmp_path):
    built, run = tmp_path / "built", tmp_path / "wheels" / "runs" / "r1"
    built.mkdir()
    run.mkdir(parents=True)
    (built / "p-1-py3-none-any.whl").write_bytes(b"p")
    stored = tmp_path / "wheels" / "projects" / "abc"
    assert _cache_tool(tmp_path, "project", built, run, stored, "r1") == \
        "p-1-py3-none-any.whl\n"
    assert (stored / "p-1-py3-none-any.whl").read_bytes() == b"p"
    assert (run / "p-1-py3-none-any.whl").read_bytes() == b"p"
    (run / "p-1-py3-none-any.whl").unlink()
    assert _cache_tool(tmp_path, "project", stored, run) == "p-1-py3-none-any.whl\n"
    assert (run / "p-1-py3-none-any.whl").read_bytes() == b"p"


def _pip_wheel(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pip/__init__.py", "__version__ = '26.3'\n")
        archive.writestr("pip/__main__.py", "print('pip')\n")
        archive.writestr("pip-26.3.dist-info/METADATA", "Name: pip\nVersion: 26.3\n")
    return path


def test_cache_tool_unpacks_pip_compiled_without_its_metadata(tmp_path):
    wheel = _pip_wheel(tmp_path / "pip-26.3-py3-none-any.whl")
    destination = tmp_path / "wheels" / "pip" / "pip-26.3-py3-none-any"
    _cache_tool(tmp_path, "unpack", wheel, destination, "r1")
    assert sorted(path.name for path in destination.iterdir()) == ["pip"]
    assert (destination / "pip" / "__main__.py").read_text() == "print('pip')\n"
    assert list((destination / "pip" / "__pycache__").glob("__main__.*.pyc"))
    assert wheel_volume.pip_directory(wheel.name) == \
        wheel_volume.WHEELS + "/pip/pip-26.3-py3-none-any"
    (destination / "pip" / "__main__.py").write_text("kept\n")
    _cache_tool(tmp_path, "unpack", wheel, destination, "r2")  # there already: kept
    assert (destination / "pip" / "__main__.py").read_text() == "kept\n"
    assert [path.name for path in destination.parent.iterdir()] == [destination.name]


def test_cache_tool_settles_a_directory_once_or_replaces_it(tmp_path):
    destination = tmp_path / "build-envs" / "k"
    destination.parent.mkdir()

    def made(name):
        directory = tmp_path / name
        directory.mkdir()
        (directory / "which").write_text(name)
        return directory

    _cache_tool(tmp_path, "settle", made("first"), destination, "r1")
    assert (destination / "which").read_text() == "first"
    _cache_tool(tmp_path, "settle", made("second"), destination, "r2")  # another came first
    assert (destination / "which").read_text() == "first"
    assert not (tmp_path / "second").exists()
    _cache_tool(tmp_path, "settle", made("third"), destination, "r3", "1")  # --refresh
    assert (destination / "which").read_text() == "third"
    assert sorted(path.name for path in destination.parent.iterdir()) == ["k"]


def _build_hook(tmp_path, project, *arguments):
    hook = tmp_path / "tools" / "build_wheel.py"
    hook.parent.mkdir(exist_ok=True)
    hook.write_bytes(container_tools.source("build_wheel.py"))
    return subprocess.run([sys.executable, str(hook)] + [str(item) for item in arguments],
                          capture_output=True, text=True, cwd=str(project))


def test_build_hook_finds_an_in_tree_backend_and_its_object(tmp_path):
    project = tmp_path / "project"
    (project / "_backend").mkdir(parents=True)
    (project / "_backend" / "mybackend.py").write_text(
        "import os\n"
        "class hooks:\n"
        "    @staticmethod\n"
        "    def build_wheel(directory, config_settings=None, metadata_directory=None):\n"
        "        open(os.path.join(directory, 'x-1-py3-none-any.whl'), 'w').close()\n"
        "        return 'x-1-py3-none-any.whl'\n")
    done = _build_hook(tmp_path, project, "mybackend:hooks", "out", "[]", "_backend")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "x-1-py3-none-any.whl"
    assert (project / "out" / "x-1-py3-none-any.whl").is_file()


def test_build_hook_fails_when_the_backend_is_missing(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    done = _build_hook(tmp_path, project, "no_such_backend_here", "out", "[]")
    assert done.returncode != 0 and "no_such_backend_here" in done.stderr


def test_build_hook_does_not_import_from_its_own_directory(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "beside.py").write_text("def build_wheel(directory):\n    return 'no'\n")
    done = _build_hook(tmp_path, project, "beside", "out", "[]")
    assert done.returncode != 0 and "beside" in done.stderr


ASKING_BACKEND = (
    "import os\n"
    "ASKED = []\n"
    "def get_requires_for_build_wheel(config_settings=None):\n"
    "    ASKED.append(1)  # in the child: the builder's process never sees it\n"
    "    return ['pbr>=2', 'wheel']\n"
    "def build_wheel(directory, config_settings=None, metadata_directory=None):\n"
    "    assert not ASKED\n"
    "    open(os.path.join(directory, 'x-1-py3-none-any.whl'), 'w').close()\n"
    "    return 'x-1-py3-none-any.whl'\n")


def test_build_hook_names_what_the_backend_asks_for_and_builds_once_it_is_there(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "asking.py").write_text(ASKING_BACKEND)
    lacking = _build_hook(tmp_path, project, "asking", "out", '["wheel"]', ".")
    assert lacking.returncode == 3
    failure = builder.CommandFailed("hook", 3, lacking.stdout + lacking.stderr)
    assert builder._build_requires_asked(failure) == ["pbr>=2", "wheel"]
    assert not (project / "out").exists()
    done = _build_hook(tmp_path, project, "asking", "out", '["wheel", "pbr>=2"]', ".")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "x-1-py3-none-any.whl"


def test_build_hook_fails_when_the_backend_cannot_say_what_it_needs(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "broken.py").write_text(
        "def get_requires_for_build_wheel(config_settings=None):\n"
        "    raise RuntimeError('setup.py is broken')\n"
        "def build_wheel(directory, config_settings=None, metadata_directory=None):\n"
        "    return 'never'\n")
    done = _build_hook(tmp_path, project, "broken", "out", "[]", ".")
    assert done.returncode not in (0, 3)
    assert "setup.py is broken" in done.stderr and "never" not in done.stdout


@pytest.mark.parametrize("exit_code, output, expected", [
    (3, "noise\npbrx-images-build-requires: [\"pbr\"]\n", ["pbr"]),
    (1, "pbrx-images-build-requires: [\"pbr\"]\n", None),
    (3, "no mark\n", None),
    (3, "pbrx-images-build-requires: [unclosed\n", None),
])
def test_build_requires_asked(exit_code, output, expected):
    failure = builder.CommandFailed("hook", exit_code, output)
    assert builder._build_requires_asked(failure) == expected


@pytest.mark.parametrize("name", ["build_wheel.py", "wheel_cache.py",
                                  "python_distributions.py"])
def test_container_tools_run_on_the_oldest_python3_of_a_base_image(name):
    """They run with the image's python3: Python 3.6 syntax at most, the standard library."""
    tree = ast.parse(container_tools.source(name), name, feature_version=(3, 6))
    imported = {alias.name.partition(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.partition(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    # pkg_resources: python_distributions' fallback where importlib.metadata is missing
    # (Python < 3.8, whose virtualenvs carry setuptools)
    assert imported <= set(sys.stdlib_module_names) - {"__future__"} | {"pkg_resources"}, \
        imported
