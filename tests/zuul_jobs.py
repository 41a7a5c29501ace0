"""Running the Zuul jobs' playbooks with ansible-playbook, the way an executor would.

A Zuul executor runs each playbook of a job with ``ansible-playbook``: the
job's variables (its own merged with its parents') in the inventory, the
``zuul`` variables and the job's secrets as extra vars (``-e @file``), the
project's ``roles/`` on the role path.  ``JobDir`` fakes that: an inventory of
one host, localhost over the local connection, variables read from zuul.d the
way Zuul merges them, and ``tests/ansible/library`` on the module path for the
stand-in of Zuul's built-in ``zuul_return`` (it writes what the job returns to
``work/results.json``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
STAND_INS = ROOT / "tests" / "ansible" / "library"
# How the tests name this repository in zuul.projects (a required project).
PBRX_IMAGES = {"name": "pbrx/pbrx-images", "short_name": "pbrx-images",
               "canonical_hostname": "opendev.example.org",
               "canonical_name": "opendev.example.org/pbrx/pbrx-images",
               "src_dir": str(ROOT), "required": True, "checkout": "main"}


def zuul_config() -> list[dict]:
    """Every item of every file in zuul.d, in file order."""
    items = []
    for path in sorted((ROOT / "zuul.d").glob("*.yaml")):
        items.extend(yaml.safe_load(path.read_text()) or [])
    return items


def jobs() -> dict[str, dict]:
    return {item["job"]["name"]: item["job"] for item in zuul_config() if "job" in item}


def merge(parent, child):
    """Zuul's merge of job variables: mappings key by key, the child wins."""
    if isinstance(parent, dict) and isinstance(child, dict):
        merged = dict(parent)
        for key, value in child.items():
            merged[key] = merge(parent.get(key), value)
        return merged
    return child


def job_vars(name: str) -> dict:
    """The variables of a job defined in zuul.d, its parents' merged under them."""
    known = jobs()
    chain = []
    while name in known:
        chain.append(known[name])
        name = known[name].get("parent")
    result: dict = {}
    for job in reversed(chain):
        result = merge(result, job.get("vars", {}))
    return result


def project_entry(name: str, src_dir: Path) -> dict:
    return {"name": name, "short_name": name.split("/")[-1],
            "canonical_hostname": "review.example.org",
            "canonical_name": "review.example.org/" + name,
            "src_dir": str(src_dir), "required": False, "checkout": "main"}


@dataclass
class PlaybookRun:
    exit_code: int
    output: str
    returned: dict  # what zuul_return was given: {"data": ..., "secret_data": ...}


class JobDir:
    """A fake executor job directory: ``work/`` with the results file, temp dirs."""

    def __init__(self, path: Path):
        self.path = path
        self.work = path / "work"
        self.tmp = path / "tmp"
        for directory in (self.work / "logs", self.tmp, path / "ansible-home"):
            directory.mkdir(parents=True, exist_ok=True)
        (path / "ansible.cfg").write_text("[defaults]\n")

    def zuul_vars(self, project: dict, job: str, **extra) -> dict:
        zuul = {"project": project,
                "projects": {project["canonical_name"]: project,
                             PBRX_IMAGES["canonical_name"]: PBRX_IMAGES},
                "job": job, "pipeline": "check", "branch": "main",
                "build": "0123456789abcdef", "buildset": "fedcba9876543210",
                "executor": {"work_root": str(self.work),
                             "log_root": str(self.work / "logs"),
                             "src_root": str(self.work / "src"),
                             "hostname": "localhost"}}
        zuul.update(extra)
        return {"zuul": zuul}

    def run(self, playbook: str, job: str, zuul: dict, overrides: dict | None = None,
            secrets: dict | None = None, verbosity: int = 0,
            timeout: int = 900) -> PlaybookRun:
        """``ansible-playbook`` on ``playbook`` as ``job``, with ``overrides``
        as a child job's variables would be."""
        results = self.work / "results.json"
        if results.exists():
            results.unlink()
        inventory = {"all": {
            "hosts": {"localhost": {"ansible_connection": "local",
                                    "ansible_python_interpreter": sys.executable}},
            "vars": merge(job_vars(job), overrides or {})}}
        (self.path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
        (self.path / "zuul-vars.json").write_text(json.dumps(zuul))
        command = [str(ANSIBLE_PLAYBOOK), "-i", str(self.path / "inventory.yaml"),
                   "-e", "@" + str(self.path / "zuul-vars.json")]
        if secrets is not None:
            (self.path / "secrets.json").write_text(json.dumps(secrets))
            command += ["-e", "@" + str(self.path / "secrets.json")]
        if verbosity:
            command.append("-" + "v" * verbosity)
        command.append(str(ROOT / "playbooks" / playbook))
        env = dict(os.environ,
                   ANSIBLE_CONFIG=str(self.path / "ansible.cfg"),
                   ANSIBLE_HOME=str(self.path / "ansible-home"),
                   ANSIBLE_LOCAL_TEMP=str(self.tmp / "ansible-local"),
                   ANSIBLE_REMOTE_TEMP=str(self.tmp / "ansible-remote"),
                   ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
                   ANSIBLE_LIBRARY=str(STAND_INS),
                   ANSIBLE_NOCOLOR="1",
                   ANSIBLE_RETRY_FILES_ENABLED="0",
                   TMPDIR=str(self.tmp),
                   ZUUL_JOBDIR=str(self.path))
        env.pop("ANSIBLE_FORCE_COLOR", None)
        completed = subprocess.run(command, cwd=self.path, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   timeout=timeout)
        output = completed.stdout.decode("utf-8", "replace")
        sys.stdout.write(output)  # shown by pytest when a test fails
        returned = json.loads(results.read_text()) if results.exists() else {}
        return PlaybookRun(completed.returncode, output, returned)
