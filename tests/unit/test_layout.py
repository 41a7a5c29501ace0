"""The package's layout: which packages may import what (see the README's map)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "pbrx_images"
#: Packages of pure code: no Docker, no engine, no stage.
PURE = ("project", "plan", "oci")


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code, as dotted names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update("%s.%s" % (node.module, alias.name) for alias in node.names)
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_the_engine_package_imports_the_docker_sdk():
    outside = {str(path.relative_to(ROOT)) for path in modules()
               if path.parent.name != "engine"
               and any(name == "docker" or name.startswith("docker.")
                       for name in imports(path))}
    assert outside == set()


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_import_no_engine_and_no_stage(package):
    found = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        wrong = sorted(name for name in imports(path) if name.startswith(
            ("pbrx_images.engine", "pbrx_images.stages", "pbrx_images.pipeline", "docker")))
        if wrong:
            found[str(path.relative_to(ROOT))] = wrong
    assert found == {}
