"""The fast path of an app change: the last build's images with the project's layer patched.

Each project is built, changed and built again, step by step; every step
records what the build said and the images it left.  A fast step must give
the same image IDs as a full build (``--no-cache`` or ``--refresh``) of the
same tree, and its images must run; a change the fast path cannot prove
must go down the full path and say why in one line.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.engine.helpers import (build_report, leftover_containers, remove_images, remove_volume,
                                  run_image, write_python_project)

pytestmark = pytest.mark.engine

PREFIX = "pbrx-fast-test"
TAG = "fast"
#: The step only the fast path has, and one only the full path has.
FAST_STEP = "==> Patch the project's layer: "
FULL_STEP = "==> Wheels of the project and its dependencies"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]


@dataclass
class Build:
    exit_code: int
    stderr: str
    ids: dict[str, str]
    ran: tuple[int, str] | None = None  #: a script image's exit code and output

    @property
    def fast(self) -> bool:
        return FAST_STEP in self.stderr and FULL_STEP not in self.stderr

    @property
    def full(self) -> bool:
        return FULL_STEP in self.stderr

    def said(self, reason: str) -> bool:
        return "Full build: " + reason in self.stderr


def images(name: str, *scripts: str) -> list[str]:
    return ["%s/%s:%s" % (PREFIX, image, TAG) for image in (name + "-base",) + scripts]


class Steps:
    """Builds of one project, each recorded under the name of the step."""

    def __init__(self, project: Path, base_image: str, cache: Path) -> None:
        self.project, self.base_image, self.cache = project, base_image, cache
        self.builds: dict[str, Build] = {}

    def build(self, step: str, *extra: str) -> Build:
        env = dict(os.environ, XDG_CACHE_HOME=str(self.cache))
        env.pop("SOURCE_DATE_EPOCH", None)
        run, report = build_report(str(self.project), "--base-image", self.base_image,
                                   "--prefix", PREFIX, "--tag", TAG, *extra, env=env)
        ids = {"%s:%s" % (image["name"], image["tag"]): image["id"]
               for image in report.get("images", ())}
        built = self.builds[step] = Build(run.exit_code, run.output, ids)
        return built

    def edit(self, relative: str, text: str) -> None:
        (self.project / relative).write_text(text)

    def git(self, *args: str) -> None:
        subprocess.run(GIT + ["-C", str(self.project), *args], check=True,
                       stdout=subprocess.DEVNULL)


# -- a setuptools project: modules, package data, a script with an extra, one with CMD only --

APP = "fastapp"
APP_IMAGES = images(APP, APP + "-hello", APP + "-plain")
CLI = ("from importlib import resources\n\n"
       "WORD = %r\n\n\n"
       "def main():\n"
       "    import six  # a dependency: in the base image's layers\n"
       "    data = resources.files('fastapp').joinpath('data/greeting.txt').read_text()\n"
       "    print(WORD, data.strip(), six.__name__)\n")


@pytest.fixture(scope="module")
def app(tmp_path_factory, docker_client, base_image):
    root = tmp_path_factory.mktemp("fastapp")
    project = write_python_project(
        root / APP, APP,
        {APP + "/__init__.py": "", APP + "/cli.py": CLI % "one",
         APP + "/data/greeting.txt": "hello\n"},
        dependencies=["six"],
        scripts={APP + "-hello": APP + ".cli:main", APP + "-plain": APP + ".cli:main"},
        extras={APP + "-hello": ["idna"]})
    with open(project / "pyproject.toml", "a") as handle:
        handle.write('\n[tool.setuptools.package-data]\nfastapp = ["data/*.txt"]\n')
    remove_images(docker_client, APP_IMAGES)
    remove_volume(docker_client, "pbrx-images-wheels-%s" % APP)
    steps = Steps(project, base_image, root / "cache")
    steps.build("first")
    steps.edit(APP + "/cli.py", CLI % "two")
    steps.build("module edited")
    steps.builds["module edited"].ran = run_image(docker_client, APP_IMAGES[1])
    steps.build("module edited, no cache", "--no-cache")
    steps.edit(APP + "/data/greeting.txt", "good morning\n")
    steps.build("data edited")
    steps.builds["data edited"].ran = run_image(docker_client, APP_IMAGES[2])
    steps.build("data edited, refresh", "--refresh")
    steps.edit(APP + "/extra.py", "X = 1\n")
    steps.build("module added")
    (project / APP / "extra.py").unlink()
    steps.build("module removed")
    steps.edit("pyproject.toml", (project / "pyproject.toml").read_text().replace(
        'version = "0.1"', 'version = "0.1"\ndescription = "a fast app"'))
    steps.build("pyproject changed")
    steps.edit(APP + "/cli.py", CLI % "three" + "def broken(:\n")
    steps.build("syntax error")
    yield steps.builds
    remove_images(docker_client, APP_IMAGES)
    remove_volume(docker_client, "pbrx-images-wheels-%s" % APP)


def test_every_build_succeeds_and_leaves_no_container(app, docker_client):
    for step, built in app.items():
        assert built.exit_code == 0, (step, built.stderr[-3000:])
    assert leftover_containers(docker_client) == []


def test_the_first_build_is_full_and_says_why(app):
    assert app["first"].full
    assert app["first"].said("no earlier build of this project to start from: the project's "
                             "wheel is built.")


def test_a_changed_module_takes_the_fast_path_and_its_images_run(app):
    edited = app["module edited"]
    assert edited.fast, edited.stderr
    assert FAST_STEP + APP + "/cli.py" in edited.stderr
    assert edited.ids != app["first"].ids and sorted(edited.ids) == sorted(APP_IMAGES)
    assert edited.ran == (0, "two hello six\n")


def test_the_fast_path_gives_the_images_of_a_clean_full_build(app):
    assert app["module edited, no cache"].full
    assert app["module edited, no cache"].ids == app["module edited"].ids
    assert app["data edited, refresh"].full
    assert app["data edited, refresh"].ids == app["data edited"].ids


def test_changed_package_data_takes_the_fast_path(app):
    edited = app["data edited"]
    assert edited.fast, edited.stderr
    assert edited.ran == (0, "two good morning six\n")


@pytest.mark.parametrize("step, reason", [
    ("module added", "fastapp/extra.py is new: the project's wheel is built."),
    ("module removed", "fastapp/extra.py was removed: the project's wheel is built."),
    ("pyproject changed", "pyproject.toml changed: the project's wheel is built."),
    ("syntax error", "a changed module does not compile ("),
])
def test_what_the_fast_path_cannot_prove_is_a_full_build_that_says_why(app, step, reason):
    built = app[step]
    assert built.full, built.stderr
    assert built.said(reason), built.stderr
    # (only a module that does not compile is found out once the patch has begun)
    assert (FAST_STEP in built.stderr) == (step == "syntax error")
    assert built.stderr.count("Full build: ") == 1


# -- versions from git: pbr (a new commit) and setuptools-scm (a dirty tree) --

PBR_IMAGES = images("pbrdemo", "pbrdemo-api", "pbrdemo-manage", "pbrdemo-worker")


@pytest.fixture(scope="module")
def pbr(tmp_path_factory, docker_client, base_image):
    root = tmp_path_factory.mktemp("fastpbr")
    project = root / "pbrdemo"
    shutil.copytree(ROOT / "tests" / "fixtures" / "pbrdemo", project)
    remove_images(docker_client, PBR_IMAGES)
    steps = Steps(project, base_image, root / "cache")
    steps.git("init", "-q")
    steps.git("add", ".")
    steps.git("commit", "-qm", "first")
    steps.git("tag", "1.0.0")
    steps.build("first")
    cmd = project / "pbrdemo" / "cmd.py"
    steps.edit("pbrdemo/cmd.py", cmd.read_text() + "# a change, committed\n")
    steps.git("commit", "-qam", "second")
    steps.build("new commit")
    steps.edit("pbrdemo/cmd.py", cmd.read_text() + "# a change, not committed\n")
    steps.build("dirty")
    yield steps.builds
    remove_images(docker_client, PBR_IMAGES)


def test_a_new_commit_of_a_pbr_project_is_a_full_build(pbr):
    for step, built in pbr.items():
        assert built.exit_code == 0, (step, built.stderr[-3000:])
    assert pbr["new commit"].full
    assert pbr["new commit"].said("the git commit (in the labels) changed since the last "
                                  "build: every image is built.")
    assert "pbrdemo 1.0.1.dev1" in pbr["new commit"].stderr  # pbr's version moved


def test_a_pbr_tree_that_turns_dirty_is_a_full_build(pbr):
    assert pbr["dirty"].full
    assert pbr["dirty"].said("the version comes from git, and git's answer may have changed")


SCM = "fastscm"
SCM_IMAGES = images(SCM)


@pytest.fixture(scope="module")
def scm(tmp_path_factory, docker_client, base_image):
    root = tmp_path_factory.mktemp("fastscm")
    project = root / SCM
    (project / SCM).mkdir(parents=True)
    (project / SCM / "__init__.py").write_text("VALUE = 1\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64", "setuptools-scm>=8"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "%s"\ndynamic = ["version"]\n\n[tool.setuptools_scm]\n' % SCM)
    remove_images(docker_client, SCM_IMAGES)
    steps = Steps(project, base_image, root / "cache")
    steps.git("init", "-q")
    steps.git("add", ".")
    steps.git("commit", "-qm", "first")
    steps.build("first")
    steps.edit(SCM + "/__init__.py", "VALUE = 2\n")
    steps.build("dirty")
    steps.edit(SCM + "/__init__.py", "VALUE = 3\n")
    steps.build("dirty again")
    steps.build("dirty again, refresh", "--refresh")
    yield steps.builds
    remove_images(docker_client, SCM_IMAGES)


def test_a_setuptools_scm_tree_that_turns_dirty_is_a_full_build_then_fast(scm):
    for step, built in scm.items():
        assert built.exit_code == 0, (step, built.stderr[-3000:])
    dirty = scm["dirty"]
    assert dirty.full and dirty.said("the version comes from git, and git's answer may have "
                                     "changed")
    assert ".d20" in dirty.stderr  # setuptools-scm's version of a dirty tree has the date
    assert scm["dirty again"].fast, scm["dirty again"].stderr
    assert scm["dirty again, refresh"].full
    assert scm["dirty again, refresh"].ids == scm["dirty again"].ids


# -- a compiled extension of the project's own --

EXT = "fastext"
EXT_IMAGES = images(EXT)


@pytest.fixture(scope="module")
def ext(tmp_path_factory, docker_client, base_image):
    root = tmp_path_factory.mktemp("fastext")
    project = root / EXT
    (project / EXT).mkdir(parents=True)
    (project / EXT / "__init__.py").write_text("VALUE = 1\n")
    (project / "speed.c").write_text(
        "#include <Python.h>\n"
        "static struct PyModuleDef m = {PyModuleDef_HEAD_INIT, \"_speed\", 0, -1, 0};\n"
        "PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&m); }\n")
    (project / "bindep.txt").write_text("gcc [compile]\npython3-dev [compile platform:dpkg]\n")
    (project / "setup.py").write_text(
        "from setuptools import Extension, setup\n"
        "setup(name='%s', version='1.0', packages=['%s'],\n"
        "      ext_modules=[Extension('%s._speed', ['speed.c'])])\n" % (EXT, EXT, EXT))
    remove_images(docker_client, EXT_IMAGES)
    steps = Steps(project, base_image, root / "cache")
    steps.build("first")
    steps.edit(EXT + "/__init__.py", "VALUE = 2\n")
    steps.build("module edited")
    yield steps.builds
    remove_images(docker_client, EXT_IMAGES)


def test_a_project_with_a_compiled_extension_takes_the_full_path(ext):
    for step, built in ext.items():
        assert built.exit_code == 0, (step, built.stderr[-3000:])
    edited = ext["module edited"]
    assert edited.full
    assert edited.said("the project has compiled extensions (_speed.cpython-311-")
