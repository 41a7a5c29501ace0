"""The Zuul configuration, playbooks and roles hold together (no engine needed).

Zuul only finds a missing playbook, a misspelt role or an undocumented
variable when a job runs; these tests find them before.  The jobs themselves
run in tests/engine/test_zuul_jobs.py.
"""
from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import jinja2.meta
import pytest
import yaml

from tests.conftest import in_ci
from tests.zuul_jobs import (
    ANSIBLE_PLAYBOOK, ROOT, STAND_INS, JobDir, jobs, project_entry, zuul_config)

ROLES = ROOT / "roles"
PLAYBOOKS = ROOT / "playbooks"
YAML_FILES = sorted([*(ROOT / "zuul.d").glob("*.yaml"), *PLAYBOOKS.rglob("*.yaml"),
                     *ROLES.rglob("*.yaml")])
# Jobs this project's pipelines use from zuul-jobs (the standard library).
ZUUL_JOBS = {"base", "tox", "tox-pep8", "tox-py311"}
# Keys whose values Ansible evaluates as bare Jinja expressions.
EXPRESSION_KEYS = {"when", "that", "until", "changed_when", "failed_when"}
# Names Ansible, Zuul or Jinja provide.
PROVIDED = {"item", "ansible_facts", "zuul", "omit", "inventory_hostname", "hostvars",
            "lookup", "query", "namespace", "range", "dict", "lipsum"}
ROLEVAR = re.compile(r"^\s*\.\. zuul:rolevar:: (\S+)", re.M)


def missing(what: str) -> None:
    """Skip a test for want of a tool, but fail in CI, where the test extra has it."""
    message = "%s is not installed (the test extra has it)" % what
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def load(path: Path):
    return yaml.safe_load(path.read_text())


def test_yaml_files_parse():
    assert YAML_FILES
    for path in YAML_FILES:
        assert load(path) is not None, path


def playbook_paths(job: dict) -> list[str]:
    paths = []
    for key in ("pre-run", "run", "post-run", "cleanup-run"):
        value = job.get(key, [])
        paths.extend([value] if isinstance(value, str) else value)
    return [path if isinstance(path, str) else path["name"] for path in paths]


def test_jobs_name_playbooks_that_exist():
    defined = jobs()
    assert {"build-images", "build-images-upload"} <= set(defined)
    for name, job in defined.items():
        assert playbook_paths(job) or job.get("parent"), name
        for path in playbook_paths(job):
            assert (ROOT / path).is_file(), "%s: %s" % (name, path)


def test_parents_and_pipeline_jobs_are_defined():
    defined = jobs()
    for name, job in defined.items():
        if "parent" in job:
            assert job["parent"] in set(defined) | ZUUL_JOBS, name
    projects = [item["project"] for item in zuul_config() if "project" in item]
    assert projects
    for project in projects:
        for pipeline in project.values():
            if not isinstance(pipeline, dict):
                continue
            for entry in pipeline.get("jobs", []):
                name = entry if isinstance(entry, str) else next(iter(entry))
                assert name in set(defined) | ZUUL_JOBS, name
    check = [entry if isinstance(entry, str) else next(iter(entry))
             for entry in projects[0]["check"]["jobs"]]
    assert "pbrx-images-build-example" in check


def test_the_build_job_installs_this_repository():
    job = jobs()["build-images"]
    required = [entry if isinstance(entry, str) else entry["name"]
                for entry in job["required-projects"]]
    defaults = load(ROLES / "ensure-build-images" / "defaults" / "main.yaml")
    assert defaults["ensure_build_images_project"] in required


def walk_tasks(tasks):
    """Every task, blocks opened."""
    for task in tasks or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from walk_tasks(task.get(key))


def role_tasks(role: Path) -> list[tuple[Path, dict]]:
    return [(path, task) for path in sorted((role / "tasks").glob("*.yaml"))
            for task in walk_tasks(load(path))]


def test_playbooks_name_roles_and_task_files_that_exist():
    for path in PLAYBOOKS.rglob("*.yaml"):
        for play in load(path):
            for role in play.get("roles", []):
                name = role if isinstance(role, str) else role["role"]
                assert (ROLES / name / "tasks" / "main.yaml").is_file(), (path, name)
            for task in walk_tasks(play.get("tasks")):
                include = task.get("ansible.builtin.include_role")
                if include:
                    tasks_from = include.get("tasks_from", "main.yaml")
                    assert (ROLES / include["name"] / "tasks" / tasks_from).is_file(), \
                        (path, include)
    for role in ROLES.iterdir():
        for path, task in role_tasks(role):
            include = task.get("ansible.builtin.include_tasks")
            if include:
                assert (role / "tasks" / include).is_file(), (path, include)


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


class AnyName(dict):
    """Filters or tests by any name: Ansible's are not Jinja's."""

    def __contains__(self, name) -> bool:
        return True

    def __getitem__(self, name):
        return lambda *args, **kwargs: None

    def get(self, name, default=None):
        return self[name]


def variables_in(value, expression: bool = False) -> set[str]:
    env = jinja2.Environment()
    env.filters = AnyName(env.filters)
    env.tests = AnyName(env.tests)
    found: set[str] = set()
    for text in strings(value):
        if expression:
            text = "{{ %s }}" % text
        elif "{{" not in text and "{%" not in text:
            continue
        found |= jinja2.meta.find_undeclared_variables(env.parse(text))
    return found


def role_reads_and_sets(role: Path) -> tuple[set[str], set[str]]:
    reads: set[str] = set()
    sets: set[str] = set()
    for _, task in role_tasks(role):
        for key, value in task.items():
            if key in ("block", "rescue", "always"):
                continue
            reads |= variables_in(value, expression=key in EXPRESSION_KEYS)
            if key == "register":
                sets.add(value)
            if key == "vars":
                sets |= set(value)
            if key == "ansible.builtin.set_fact":
                sets |= set(value)
    return reads, sets


def test_every_variable_a_role_reads_is_documented_or_set():
    for role in sorted(ROLES.iterdir()):
        readme = role / "README.rst"
        assert readme.is_file(), role
        documented = set(ROLEVAR.findall(readme.read_text()))
        defaults_path = role / "defaults" / "main.yaml"
        defaults = load(defaults_path) if defaults_path.exists() else {}
        assert set(defaults) <= documented, (role.name, set(defaults) - documented)
        reads, sets = role_reads_and_sets(role)
        reads |= variables_in(defaults)
        undocumented = reads - documented - set(defaults) - sets - PROVIDED
        assert not undocumented, (role.name, undocumented)


def test_every_job_variable_is_read_by_a_role():
    """A misspelt job variable would be ignored silently."""
    readable = set()
    for role in ROLES.iterdir():
        readable |= set(ROLEVAR.findall((role / "README.rst").read_text()))
    for name, job in jobs().items():
        assert set(job.get("vars", {})) <= readable, name


def test_the_job_description_lists_the_build_variables():
    description = jobs()["build-images"]["description"]
    defaults = load(ROLES / "build-images" / "defaults" / "main.yaml")
    for name in set(defaults) - {"build_images_executable"}:
        assert ".. zuul:jobvar:: %s" % name in description


@pytest.mark.parametrize("extra, tag", [
    ({"tag": "1.2.3", "ref": "refs/tags/1.2.3"}, "1.2.3"),
    ({"change": "4242", "patchset": "3"}, "change_4242"),
    ({"ref": "refs/heads/main", "newrev": "abc"}, "latest"),
])
def test_upload_job_tag(tmp_path, extra, tag):
    """The upload job's tag: a git tag, else the change, else latest."""
    if not ANSIBLE_PLAYBOOK.exists():
        missing("ansible-core")
    playbook = tmp_path / "show-tag.yaml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "all", "gather_facts": False,
        "tasks": [{"ansible.builtin.copy": {"content": "{{ build_images_tag }}",
                                            "dest": str(tmp_path / "tag")}}]}]))
    job_dir = JobDir(tmp_path / "job")
    run = job_dir.run(str(playbook), "build-images-upload",
                      job_dir.zuul_vars(project_entry("demo/x", tmp_path), "upload", **extra))
    assert run.exit_code == 0
    assert (tmp_path / "tag").read_text() == tag


def test_the_sboms_go_where_fetch_output_collects_them(tmp_path):
    """The build role's default SBOM directory, evaluated by Ansible on this host."""
    if not ANSIBLE_PLAYBOOK.exists():
        missing("ansible-core")
    playbook = tmp_path / "show-sbom-dir.yaml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "all",
        "tasks": [
            {"ansible.builtin.include_vars": str(ROLES / "build-images" / "defaults" /
                                                 "main.yaml")},
            {"ansible.builtin.copy": {"content": "{{ build_images_sbom_dir }}",
                                      "dest": str(tmp_path / "sbom-dir")}}]}]))
    job_dir = JobDir(tmp_path / "job")
    run = job_dir.run(str(playbook), "build-images",
                      job_dir.zuul_vars(project_entry("demo/x", tmp_path), "build-images"))
    assert run.exit_code == 0
    home = pwd.getpwuid(os.getuid()).pw_dir
    assert (tmp_path / "sbom-dir").read_text() == home + "/zuul-output/artifacts/sbom"


def test_yamllint_is_clean():
    yamllint = shutil.which("yamllint", path=str(Path(sys.executable).parent)) or \
        shutil.which("yamllint")
    if not yamllint:
        missing("yamllint")
    completed = subprocess.run([yamllint, "--strict", "zuul.d", "playbooks", "roles"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert completed.returncode == 0, completed.stdout.decode()


def test_playbooks_pass_ansible_syntax_check(tmp_path):
    if not ANSIBLE_PLAYBOOK.exists():
        missing("ansible-core")
    playbooks = sorted(str(path) for path in PLAYBOOKS.rglob("*.yaml"))
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROLES), ANSIBLE_LIBRARY=str(STAND_INS),
               ANSIBLE_HOME=str(tmp_path), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"))
    completed = subprocess.run([str(ANSIBLE_PLAYBOOK), "--syntax-check", "-i", "localhost,",
                                *playbooks], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert completed.returncode == 0, completed.stdout.decode()
