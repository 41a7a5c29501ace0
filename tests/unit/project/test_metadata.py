"""Tests for pbrx_images.project.metadata."""

from __future__ import annotations

import os
import re
import textwrap
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbrx_images.errors import BuildError, ProjectError
from pbrx_images.project.metadata import (ProjectMetadata, find_extra, image_name,
                                          normalize_extra, read_project)
from pbrx_images.project.wheel_metadata import CoreMetadata, core_metadata, read_wheel

PBR_SETUP_CFG = """\
[metadata]
name = foo
summary = Foo service
description_file =
    README.rst
author = OpenStack
author_email = openstack-discuss@lists.openstack.org
python_requires = >=3.9
classifier =
    Environment :: OpenStack
    Programming Language :: Python :: 3

[files]
packages =
    foo
data_files =
    etc/foo = etc/foo/api-paste.ini

[entry_points]
console_scripts =
    foo-api = foo.api:main
    foo-manage = foo.cmd:main
oslo.config.opts =
    foo = foo.conf.opts:list_opts

[extras]
foo_base =
    oslo.vmware>=3.0  # Apache-2.0
foo-manage =
    python-barbicanclient>=5.0.0  # Apache-2.0

[tool:pytest]
addopts = -ra %(here)s
"""

PBR_SETUP_PY = """\
import setuptools

setuptools.setup(
    setup_requires=['pbr>=2.0.0'],
    pbr=True)
"""

SETUPTOOLS_SETUP_CFG = """\
[metadata]
name = bar-tool
version = 2.1.0
description = A tool

[options]
packages = find:
install_requires =
    requests

[options.entry_points]
console_scripts =
    bar = bar_tool.cli:main
    bar-admin = bar_tool.admin:main [admin]
gui_scripts =
    bar-gui = bar_tool.gui:main

[options.extras_require]
admin =
    rich
Docs.Extra =
    sphinx
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative name -> text) below ``directory``."""
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


# --------------------------------------------------------------------------
# setup.cfg


def test_pbr_setup_cfg(tmp_path: Path) -> None:
    write(tmp_path, {"setup.cfg": PBR_SETUP_CFG, "setup.py": PBR_SETUP_PY})

    assert read_project(tmp_path) == ProjectMetadata(
        name="foo",
        version=None,  # pbr takes it from git
        console_scripts=("foo-api", "foo-manage"),
        extras=("foo_base", "foo-manage"),
        source="setup.cfg",
    )


def test_pbr_console_scripts_on_the_first_line(tmp_path: Path) -> None:
    write(tmp_path, {
        "setup.cfg": """\
            [metadata]
            name = foo
            version = 1.0

            [entry_points]
            console_scripts = foo-api = foo.api:main
                # a comment
                foo-manage=foo.cmd:main

                foo-api = foo.api:other
            """,
        "setup.py": PBR_SETUP_PY,
    })

    metadata = read_project(tmp_path)

    assert metadata.version == "1.0"
    assert metadata.console_scripts == ("foo-api", "foo-manage")
    assert metadata.extras is None  # setup.py could declare them


def test_setuptools_setup_cfg(tmp_path: Path) -> None:
    write(tmp_path, {"setup.cfg": SETUPTOOLS_SETUP_CFG})

    assert read_project(tmp_path) == ProjectMetadata(
        name="bar-tool",
        version="2.1.0",
        console_scripts=("bar", "bar-admin"),
        extras=("admin", "Docs.Extra"),
        source="setup.cfg",
    )


def test_setup_cfg_without_entry_points_and_without_setup_py(tmp_path: Path) -> None:
    write(tmp_path, {"setup.cfg": "[metadata]\nname = quiet\n"})

    metadata = read_project(tmp_path)

    assert metadata.console_scripts == ()
    assert metadata.extras == ()


def test_setup_cfg_with_entry_points_but_no_console_scripts(tmp_path: Path) -> None:
    write(tmp_path, {
        "setup.cfg": "[metadata]\nname = lib\n[entry_points]\nfoo.plugins =\n  a = lib:A\n",
        "setup.py": PBR_SETUP_PY,
    })

    assert read_project(tmp_path).console_scripts == ()


def test_setup_cfg_with_computed_version_and_entry_points_file(tmp_path: Path) -> None:
    write(tmp_path, {
        "setup.cfg": """\
            [metadata]
            name = baz
            version = attr: baz.__version__

            [options]
            entry_points = file: entry_points.cfg
            """,
    })

    metadata = read_project(tmp_path)

    assert metadata.name == "baz"
    assert metadata.version is None
    assert metadata.console_scripts is None


def test_setup_py_only(tmp_path: Path) -> None:
    write(tmp_path, {"setup.py": "from setuptools import setup\nsetup(name='old')\n"})

    assert read_project(tmp_path) == ProjectMetadata(None, None, None, None, "setup.py")


def test_malformed_console_script(tmp_path: Path) -> None:
    write(tmp_path, {
        "setup.cfg": """\
            [metadata]
            name = foo
            [entry_points]
            console_scripts =
                foo-api foo.api:main
            """,
    })

    with pytest.raises(ProjectError) as caught:
        read_project(tmp_path)

    message = str(caught.value)
    assert "setup.cfg [entry_points]" in message
    assert "'foo-api foo.api:main'" in message


# --------------------------------------------------------------------------
# pyproject.toml


def test_pyproject_static(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": """\
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "qux"
            version = "0.3"
            dependencies = ["click"]

            [project.scripts]
            qux = "qux.cli:main"
            qux-worker = "qux.worker:main"

            [project.gui-scripts]
            qux-gui = "qux.gui:main"

            [project.optional-dependencies]
            Server_Side = ["uvicorn"]
            test = ["pytest"]
            """,
    })

    assert read_project(tmp_path) == ProjectMetadata(
        name="qux",
        version="0.3",
        console_scripts=("qux", "qux-worker"),
        extras=("Server_Side", "test"),
        source="pyproject.toml",
    )


def test_pyproject_without_scripts_has_none(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[project]\nname = "lib"\nversion = "1"\n'})

    metadata = read_project(tmp_path)

    assert metadata.console_scripts == ()
    assert metadata.extras == ()


def test_pyproject_dynamic_fields_are_unknown(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": """\
            [project]
            name = "dyn"
            dynamic = ["version", "scripts", "optional-dependencies"]
            """,
    })

    assert read_project(tmp_path) == ProjectMetadata(
        name="dyn", version=None, console_scripts=None, extras=None, source="pyproject.toml"
    )


def test_pyproject_dynamic_fields_come_from_setup_cfg(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": """\
            [build-system]
            requires = ["pbr>=6.1", "setuptools"]
            build-backend = "pbr.build"

            [project]
            name = "foo"
            description = "Foo service"
            dynamic = ["version", "scripts", "optional-dependencies"]
            """,
        "setup.cfg": PBR_SETUP_CFG.replace("name = foo", "name = ignored\nversion = 9.9"),
        "setup.py": PBR_SETUP_PY,
    })

    assert read_project(tmp_path) == ProjectMetadata(
        name="foo",  # [project] wins
        version="9.9",
        console_scripts=("foo-api", "foo-manage"),
        extras=("foo_base", "foo-manage"),
        source="pyproject.toml, setup.cfg",
    )


def test_pyproject_static_fields_win_over_setup_cfg(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": """\
            [project]
            name = "bar-tool"
            version = "3.0"
            dynamic = ["optional-dependencies"]

            [project.scripts]
            bar = "bar_tool.cli:main"
            """,
        "setup.cfg": SETUPTOOLS_SETUP_CFG,
    })

    assert read_project(tmp_path) == ProjectMetadata(
        name="bar-tool",
        version="3.0",
        console_scripts=("bar",),
        extras=("admin", "Docs.Extra"),
        source="pyproject.toml, setup.cfg",
    )


def test_pyproject_dynamic_field_missing_from_setup_cfg_stays_unknown(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": '[project]\nname = "x"\ndynamic = ["version"]\n',
        "setup.cfg": "[flake8]\nmax-line-length = 99\n",
        "setup.py": "import setuptools\nsetuptools.setup()\n",
    })

    metadata = read_project(tmp_path)

    assert metadata.version is None
    assert metadata.source == "pyproject.toml"


def test_pyproject_without_project_table_uses_setup_cfg(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": '[build-system]\nrequires = ["pbr>=5.8", "setuptools"]\n',
        "setup.cfg": PBR_SETUP_CFG,
        "setup.py": PBR_SETUP_PY,
    })

    metadata = read_project(tmp_path)

    assert metadata.name == "foo"
    assert metadata.source == "setup.cfg"


def test_pyproject_without_project_table_alone(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[tool.poetry]\nname = "p"\n'})

    assert read_project(tmp_path) == ProjectMetadata(None, None, None, None, "pyproject.toml")


def test_pyproject_wrong_types(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[project]\nname = "x"\nscripts = ["x"]\n'})

    with pytest.raises(ProjectError, match=r"toml: \[project\] scripts must be a table"):
        read_project(tmp_path)


# --------------------------------------------------------------------------
# Errors


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        read_project(tmp_path / "nope")


def test_file_instead_of_directory(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text("")

    with pytest.raises(ProjectError, match="is not a directory"):
        read_project(tmp_path / "setup.py")


def test_not_a_python_project(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hello")

    with pytest.raises(ProjectError) as caught:
        read_project(tmp_path)

    assert str(caught.value) == (
        f"{tmp_path} is not a Python project: it has no pyproject.toml, setup.cfg or setup.py."
    )


def test_setup_cfg_syntax_error(tmp_path: Path) -> None:
    write(tmp_path, {
        "setup.cfg": "[metadata]\nname = foo\n\nthis line is wrong\n[extras]\n",
        "setup.py": PBR_SETUP_PY,
    })

    with pytest.raises(ProjectError) as caught:
        read_project(tmp_path)

    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'setup.cfg'} line 4 cannot be parsed")
    assert "'this line is wrong'" in message


def test_setup_cfg_without_section_header(tmp_path: Path) -> None:
    write(tmp_path, {"setup.cfg": "# comment\nname = foo\n"})

    with pytest.raises(ProjectError, match=r"setup\.cfg line 2 \('name = foo'\) comes before"):
        read_project(tmp_path)


def test_setup_cfg_duplicate_key(tmp_path: Path) -> None:
    write(tmp_path, {"setup.cfg": "[metadata]\nname = foo\nversion = 1\nname = bar\n"})

    with pytest.raises(ProjectError) as caught:
        read_project(tmp_path)

    assert "setup.cfg line 4 repeats the key 'name' of section [metadata]" in str(caught.value)


def test_pyproject_syntax_error(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[project]\nname = "x"\nversion = 1.0.0\n'})

    with pytest.raises(ProjectError) as caught:
        read_project(tmp_path)

    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'pyproject.toml'} is not valid TOML")
    assert "line 3" in message
    assert message.endswith("; fix the syntax.")


def test_pyproject_error_at_end_of_document(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[project]\nname = "x'})

    with pytest.raises(ProjectError, match="at the end of the file"):
        read_project(tmp_path)


def test_setup_cfg_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_bytes(b"[metadata]\nname = caf\xe9\n")

    with pytest.raises(ProjectError, match="is not UTF-8 text"):
        read_project(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_setup_cfg(tmp_path: Path) -> None:
    path = tmp_path / "setup.cfg"
    path.write_text("[metadata]\nname = foo\n")
    path.chmod(0)

    with pytest.raises(ProjectError, match="cannot be read"):
        read_project(tmp_path)


def test_setup_cfg_read_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = foo\n")

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refuse)

    with pytest.raises(ProjectError) as caught:
        read_project(tmp_path)

    assert str(caught.value) == (
        f"{tmp_path / 'setup.cfg'} cannot be read (Permission denied); check that it is a"
        f" readable file."
    )


def test_setup_cfg_that_is_a_directory_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").mkdir()
    (tmp_path / "pyproject.toml").mkdir()

    with pytest.raises(ProjectError, match="is not a Python project"):
        read_project(tmp_path)


# --------------------------------------------------------------------------
# Wheels


def make_wheel(
    path: Path,
    metadata: str,
    entry_points: str | None = None,
    dist_info: str = "foo-1.2.3.dist-info",
) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr("foo/__init__.py", "")
        wheel.writestr(f"{dist_info}/METADATA", textwrap.dedent(metadata))
        wheel.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
        if entry_points is not None:
            wheel.writestr(f"{dist_info}/entry_points.txt", textwrap.dedent(entry_points))
        wheel.writestr(f"{dist_info}/RECORD", "")
    return path


FOO_METADATA = """\
    Metadata-Version: 2.1
    Name: foo
    Version: 1.2.3
    Summary: Foo service
    Requires-Python: >=3.9
    Requires-Dist: oslo.config>=9.0
    Requires-Dist: oslo.vmware>=3.0; extra == "foo-base"
    Provides-Extra: foo-base
    Provides-Extra: foo-manage

    Foo
    ===

    Provides-Extra: not-a-header
    """

FOO_ENTRY_POINTS = """\
    [console_scripts]
    foo-api = foo.api:main
    foo-manage = foo.cmd:main

    [oslo.config.opts]
    foo = foo.conf.opts:list_opts
    """


def test_read_wheel(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "foo-1.2.3-py3-none-any.whl", FOO_METADATA, FOO_ENTRY_POINTS)

    assert read_wheel(wheel) == ProjectMetadata(
        name="foo",
        version="1.2.3",
        console_scripts=("foo-api", "foo-manage"),
        extras=("foo-base", "foo-manage"),
        source="wheel",
        requires=("oslo.config>=9.0", 'oslo.vmware>=3.0; extra == "foo-base"'),
    )


def test_read_wheel_without_entry_points(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "foo-1.2.3-py3-none-any.whl", "Metadata-Version: 2.1\nName: foo\nVersion: 1\n"
    )

    metadata = read_wheel(wheel)

    assert metadata.console_scripts == ()
    assert metadata.extras == ()


def test_read_wheel_with_only_other_entry_points(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "foo-1.2.3-py3-none-any.whl",
        FOO_METADATA,
        "[oslo.config.opts]\nfoo = foo.conf.opts:list_opts\n",
    )

    assert read_wheel(wheel).console_scripts == ()


def test_corrupt_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "foo-1.2.3-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 this is not really a zip file")

    with pytest.raises(BuildError, match="is not a valid wheel"):
        read_wheel(wheel)


def test_truncated_wheel(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "foo-1.2.3-py3-none-any.whl", FOO_METADATA, FOO_ENTRY_POINTS)
    wheel.write_bytes(wheel.read_bytes()[:-40])

    with pytest.raises(BuildError, match="is not a valid wheel"):
        read_wheel(wheel)


def test_missing_wheel(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="cannot be read"):
        read_wheel(tmp_path / "foo-1.2.3-py3-none-any.whl")


def test_wheel_without_metadata(tmp_path: Path) -> None:
    wheel = tmp_path / "foo-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("foo/__init__.py", "")

    with pytest.raises(BuildError, match=r"has no \*\.dist-info/METADATA"):
        read_wheel(wheel)


def test_wheel_with_broken_entry_points(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "foo-1.2.3-py3-none-any.whl", FOO_METADATA, "foo-api = foo.api:main\n"
    )

    with pytest.raises(BuildError, match="entry_points.txt"):
        read_wheel(wheel)


def test_wheel_with_several_dist_info_directories(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "foo-1.2.3-py3-none-any.whl", FOO_METADATA, FOO_ENTRY_POINTS)
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("vendored-0.1.dist-info/METADATA", "Name: vendored\nVersion: 0.1\n")

    assert read_wheel(wheel).name == "foo"


# --------------------------------------------------------------------------
# Extras and names


@pytest.mark.parametrize("wanted", ["foo_manage", "foo-manage", "Foo.Manage", "FOO__-manage"])
def test_find_extra_matches_pep_685(wanted: str) -> None:
    assert find_extra(("foo_base", "foo-manage"), wanted) == "foo-manage"
    assert find_extra(["foo_base", "Foo_Manage"], wanted) == "Foo_Manage"


def test_find_extra_without_match() -> None:
    assert find_extra(("foo_base", "foo-manage"), "foo") is None
    assert find_extra((), "foo") is None


def test_normalize_extra() -> None:
    assert normalize_extra("Foo.Bar__baz-") == "foo-bar-baz-"


@given(st.text())
def test_normalize_extra_is_idempotent(name: str) -> None:
    assert normalize_extra(normalize_extra(name)) == normalize_extra(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("foo", "foo"),
        ("foo-api", "foo-api"),
        ("Foo_API", "foo-api"),
        ("oslo.config", "oslo-config"),
        ("--foo--", "foo"),
        ("a__b..c  d", "a-b-c-d"),
        ("café", "caf"),
        ("2fa", "2fa"),
    ],
)
def test_image_name(name: str, expected: str) -> None:
    assert image_name(name) == expected


@pytest.mark.parametrize("name", ["", "---", "___", "é"])
def test_image_name_without_letters_or_digits(name: str) -> None:
    with pytest.raises(ProjectError, match="cannot be used in an image name"):
        image_name(name)


DOCKER_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"


@given(st.text(min_size=1))
def test_image_name_is_a_docker_path_component(name: str) -> None:
    try:
        result = image_name(name)
    except ProjectError:
        return
    assert re.fullmatch(DOCKER_COMPONENT, result)


def test_core_metadata_reads_the_fields_used_here() -> None:
    data = (b"Metadata-Version: 2.1\nName: Foo.Bar\nVersion: 1.0\nProvides-Extra: cli\n"
            b"Provides-Extra: d\nRequires-Dist: click; extra == 'cli'\nRequires-Dist: idna\n"
            b"\nName: not a header, the description\n")
    assert core_metadata(data) == CoreMetadata(
        "Foo.Bar", "1.0", ("cli", "d"), ("click; extra == 'cli'", "idna"))


def test_core_metadata_takes_the_first_of_a_doubled_field_and_odd_bytes() -> None:
    found = core_metadata(b"Name: first\nName: second\nVersion: 1.\xff\n\n")
    assert (found.name, found.version, found.extras) == ("first", "1.\xff", ())


def test_installed_distributions_are_named_by_their_metadata() -> None:
    """The layer's name comes from METADATA, read by the same reader as a wheel's."""
    import io

    from pbrx_images.oci.layer import distributions
    from pbrx_images.oci.tar import Entry, Tree

    site = "opt/venv/lib/python3.11/site-packages/"
    metadata = b"Metadata-Version: 2.1\nName: Zope.Interface\nVersion: 7.2\n\n"
    tree = Tree(io.BytesIO(), {
        site + "zope.interface-7.2.dist-info/METADATA": Entry(
            site + "zope.interface-7.2.dist-info/METADATA", "file", 0o644, len(metadata),
            data=metadata),
        site + "bare-1.0.dist-info/RECORD": Entry(site + "bare-1.0.dist-info/RECORD", "file",
                                                  0o644, data=b"")})
    found = distributions(tree, [site + "zope.interface-7.2.dist-info/RECORD",
                                 site + "bare-1.0.dist-info/RECORD"])
    assert [(d.name, d.version) for d in found] == [("bare", "1.0"), ("Zope.Interface", "7.2")]
