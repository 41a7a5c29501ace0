"""What the package declares it needs (requirements.txt, read by pbr)."""
from __future__ import annotations

import ast
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT


def declared() -> dict[str, Requirement]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and
                    not line.lstrip().startswith("#")]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def imported_modules() -> set[str]:
    """Top-level names of every module the package imports, at any depth of its code.

    ``container_tools/`` is left out: its programs run in build containers, with
    the image's Python, not with the package's requirements.
    """
    found = set()
    tools = ROOT / "pbrx_images" / "container_tools"
    for path in (ROOT / "pbrx_images").rglob("*.py"):
        if tools in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.partition(".")[0])
    return found - {"pbrx_images"}


@pytest.mark.skipif(sys.version_info < (3, 10), reason="sys.stdlib_module_names: 3.10")
def test_every_module_the_package_imports_is_declared():
    providers = metadata.packages_distributions()
    names = set(declared())
    undeclared = {}
    for module in sorted(imported_modules() - set(sys.stdlib_module_names)):
        distributions = {canonicalize_name(name) for name in providers.get(module, [module])}
        if not distributions & names:
            undeclared[module] = sorted(distributions)
    assert undeclared == {}


@pytest.mark.parametrize("name, allowed, refused", [
    ("docker", ["7.1.0", "7.2.0"], ["6.1.3", "7.0.0"]),  # 7.0 breaks with requests 2.32
    ("bindep", ["2.11.0", "2.14.0"], ["3.0.0"]),  # private parts of it are used
])
def test_versions(name, allowed, refused):
    specifier = declared()[name].specifier
    assert [version for version in allowed if version not in specifier] == []
    assert [version for version in refused if version in specifier] == []
