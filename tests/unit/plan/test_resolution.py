"""pip's answer for an image: read from its report, kept, and reused only when valid."""
from __future__ import annotations

import dataclasses

import pytest

from pbrx_images.errors import BuildError
from pbrx_images.plan import resolution
from pbrx_images.plan.lock import Lock
from pbrx_images.plan.wheel_volume import WheelBuild
from pbrx_images.project.metadata import ProjectMetadata

RUN = "/run/pbrx-images/wheels/runs/r1"
PROJECT_WHEEL = "pg_tool-1.0.0-py3-none-any.whl"
DEPENDENCY_WHEEL = "tabulate-0.10.0-py3-none-any.whl"


def wheel_build(version="1.0.0", wheel=PROJECT_WHEEL, lock=("tabulate==0.10.0",),
                digests=None):
    metadata = ProjectMetadata("pg_tool", version, ("pgtool",), ("pgtool",), "wheel")
    return WheelBuild(metadata, wheel, Lock(tuple(lock)), "pip-26.3-py3-none-any.whl",
                      digests if digests is not None else
                      {wheel: "11" * 32, DEPENDENCY_WHEEL: "22" * 32}, "lock-key")


def report(*items):
    return {"install": [{"metadata": {"name": name, "version": version},
                         "download_info": {"url": url}} for name, version, url in items]}


def test_from_report_reads_names_versions_and_digests():
    wanted = resolution.from_report(report(
        ("pg_tool", "1.0.0", "file://%s/%s" % (RUN, PROJECT_WHEEL)),
        ("Tabulate", "0.10.0", "file://%s/%s" % (RUN, DEPENDENCY_WHEEL))), wheel_build())
    assert wanted == {
        "pg-tool": resolution.Wanted(RUN + "/" + PROJECT_WHEEL, "11" * 32, "pg_tool", "1.0.0"),
        "tabulate": resolution.Wanted(RUN + "/" + DEPENDENCY_WHEEL, "22" * 32, "Tabulate",
                                      "0.10.0"),
    }


@pytest.mark.parametrize("url", ["https://files.example/tabulate-0.10.0-py3-none-any.whl",
                                 "file://%s/other-1-py3-none-any.whl" % RUN])
def test_from_report_refuses_a_wheel_not_in_the_run(url):
    with pytest.raises(BuildError, match="not from the run's wheels"):
        resolution.from_report(report(("tabulate", "0.10.0", url)), wheel_build())


def test_a_code_change_keeps_the_key():
    """A new project wheel (other version, other file) decides nothing pip answers."""
    installed = {"pg-tool": ("pg_tool", "1.0.0"), "tabulate": ("tabulate", "0.10.0")}
    changed = wheel_build(version="1.0.1.dev3", wheel="pg_tool-1.0.1.dev3-py3-none-any.whl")
    assert resolution.key(wheel_build(), "pgtool", "sha256:runtime", installed) == \
        resolution.key(changed, "pgtool", "sha256:runtime",
                       dict(installed, **{"pg-tool": ("pg_tool", "1.0.1.dev3")}))


@pytest.mark.parametrize("change", [
    {"extra": "other"},
    {"extra": None},
    {"venv_image": "sha256:another"},
    {"installed": {"tabulate": ("tabulate", "0.9.0")}},
    {"installed": {}},
    {"wheels": wheel_build(lock=("tabulate==0.9.0",))},
    {"wheels": dataclasses.replace(wheel_build(), pip_wheel="pip-25-py3-none-any.whl")},
    {"wheels": dataclasses.replace(wheel_build(), lock_key="another")},
])
def test_what_decides_the_answer_changes_the_key(change):
    arguments = {"wheels": wheel_build(), "extra": "pgtool", "venv_image": "sha256:runtime",
                 "installed": {"tabulate": ("tabulate", "0.10.0")}}
    assert resolution.key(**arguments) != resolution.key(**dict(arguments, **change))


def test_kept_answer_names_the_project_as_such_and_reads_back_for_a_new_wheel():
    wanted = resolution.from_report(report(
        ("pg_tool", "1.0.0", "file://%s/%s" % (RUN, PROJECT_WHEEL)),
        ("tabulate", "0.10.0", "file://%s/%s" % (RUN, DEPENDENCY_WHEEL))), wheel_build())
    kept = resolution.to_json(wanted, wheel_build())
    assert kept["wanted"]["pg-tool"] == {"project": True}
    new_wheel = "pg_tool-1.0.1-py3-none-any.whl"
    later = wheel_build(version="1.0.1", wheel=new_wheel,
                        digests={new_wheel: "33" * 32, DEPENDENCY_WHEEL: "22" * 32})
    assert resolution.from_json(kept, later, "/run/pbrx-images/wheels/runs/r2") == {
        "pg-tool": resolution.Wanted("/run/pbrx-images/wheels/runs/r2/" + new_wheel,
                                     "33" * 32, "pg_tool", "1.0.1"),
        "tabulate": resolution.Wanted("/run/pbrx-images/wheels/runs/r2/" + DEPENDENCY_WHEEL,
                                      "22" * 32, "tabulate", "0.10.0"),
    }


@pytest.mark.parametrize("kept", [
    None, {}, {"wanted": []}, {"wanted": {"tabulate": {"wheel": DEPENDENCY_WHEEL}}},
    {"wanted": {"tabulate": {"wheel": "tabulate-0.9.0-py3-none-any.whl", "name": "tabulate",
                             "version": "0.9.0"}}},
])
def test_a_kept_answer_that_does_not_fit_the_run_is_not_used(kept):
    assert resolution.from_json(kept, wheel_build(), RUN) is None
