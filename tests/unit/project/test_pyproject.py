"""Tests for pbrx_images.project.pyproject: pyproject.toml, read once."""
from __future__ import annotations

from pathlib import Path

import pytest

from pbrx_images.errors import ProjectError
from pbrx_images.project import inputs, pyproject
from pbrx_images.project.pyproject import (DEFAULT_BUILD_REQUIREMENTS, LEGACY_BUILD_BACKEND,
                                           read_pyproject)
from pbrx_images.project.settings import resolve
from pbrx_images.ui.output import Reporter


def test_a_project_without_pyproject_toml_has_an_empty_one(tmp_path: Path) -> None:
    read = read_pyproject(tmp_path)
    assert (read.present, read.path, dict(read.data)) == (False, tmp_path / "pyproject.toml", {})
    assert read.table("project") is None


def test_a_top_level_value_that_is_not_a_table_is_a_project_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('project = "x"\n')
    with pytest.raises(ProjectError, match=r"'project' must be a table \(\[project\]\)"):
        read_pyproject(tmp_path).table("project")


def test_a_build_parses_pyproject_toml_once(tmp_path: Path, monkeypatch) -> None:
    """Settings, metadata, build requirements and backend all come from one parse."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core"]\nbuild-backend = "flit_core.buildapi"\n\n'
        '[project]\nname = "once"\nversion = "1"\n\n[tool.build-images]\ntag = "t"\n')
    parsed = []
    loads = pyproject.tomllib.loads
    monkeypatch.setattr(pyproject.tomllib, "loads", lambda text: parsed.append(1) or loads(text))
    options = resolve(project)
    read = inputs.read_inputs(options, Reporter(quiet=True), {}, tmp_path)
    assert (options.tag, read.static.name) == ("t", "once")
    assert (read.build_requires, read.backend) == (("flit_core",), ("flit_core.buildapi", ()))
    assert len(parsed) == 1


@pytest.mark.parametrize("pyproject, expected", [
    (None, DEFAULT_BUILD_REQUIREMENTS),
    ('[project]\nname = "x"\n', DEFAULT_BUILD_REQUIREMENTS),
    ('[build-system]\nbuild-backend = "setuptools.build_meta"\n', DEFAULT_BUILD_REQUIREMENTS),
    ('[build-system]\nrequires = ["pbr>=6", "setuptools>=64"]\n', ("pbr>=6", "setuptools>=64")),
    ('[build-system]\nrequires = []\n', ()),
])
def test_build_requirements(tmp_path: Path, pyproject, expected) -> None:
    (tmp_path / "setup.py").write_text("")
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    assert read_pyproject(tmp_path).build_requirements() == expected


@pytest.mark.parametrize("pyproject, expected", [
    (None, (LEGACY_BUILD_BACKEND, ())),
    ('[project]\nname = "x"\n', (LEGACY_BUILD_BACKEND, ())),
    ('[build-system]\nrequires = ["setuptools"]\n', (LEGACY_BUILD_BACKEND, ())),
    ('[build-system]\nbuild-backend = "setuptools.build_meta"\n',
     ("setuptools.build_meta", ())),
    ('[build-system]\nbuild-backend = "backend:hooks.inner"\nbackend-path = ["_b", "."]\n',
     ("backend:hooks.inner", ("_b", "."))),
])
def test_build_backend(tmp_path: Path, pyproject, expected) -> None:
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    assert read_pyproject(tmp_path).build_backend() == expected


@pytest.mark.parametrize("pyproject, problem", [
    ('[build-system]\nbuild-backend = 1\n', "build-backend must name a module"),
    ('[build-system]\nbuild-backend = "a b"\n', "build-backend must name a module"),
    ('[build-system]\nbuild-backend = "x"\nbackend-path = "."\n', "backend-path"),
    ('[build-system]\nbuild-backend = "x"\nbackend-path = ["/opt"]\n', "backend-path"),
    ('[build-system]\nbuild-backend = "x"\nbackend-path = ["../up"]\n', "backend-path"),
])
def test_unusable_build_backend_is_a_project_error(tmp_path: Path, pyproject, problem) -> None:
    (tmp_path / "pyproject.toml").write_text(pyproject)
    with pytest.raises(ProjectError, match=problem):
        read_pyproject(tmp_path).build_backend()


@pytest.mark.parametrize("pyproject", ['[build-system]\nrequires = "setuptools"\n',
                                       '[build-system]\nrequires = [1]\n',
                                       '[build-system\n'])
def test_unusable_build_requirements_are_a_project_error(tmp_path: Path, pyproject) -> None:
    (tmp_path / "pyproject.toml").write_text(pyproject)
    with pytest.raises(ProjectError, match="pyproject.toml"):
        read_pyproject(tmp_path).build_requirements()
