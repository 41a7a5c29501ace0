"""The command's own behaviour, where no engine is needed."""
from __future__ import annotations

import subprocess
import sys

import pytest


def run_cli(*args, env=None, cwd=None):
    completed = subprocess.run([sys.executable, "-m", "pbrx_images.cli", *args], env=env,
                               cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=120)
    return completed.returncode, completed.stdout.decode()


def error_line(output):
    lines = [line for line in output.splitlines() if line.startswith("build-images: error: ")]
    assert len(lines) == 1, output
    return lines[0]


def test_help_and_version():
    code, output = run_cli("--help")
    assert code == 0 and "--base-image" in output and "PROJECT_DIR" in output
    code, output = run_cli("--version")
    assert code == 0 and output.startswith("build-images ")


def test_python_m_pbrx_images_is_the_command():
    completed = subprocess.run([sys.executable, "-m", "pbrx_images", "--version"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and completed.stdout.startswith("build-images ")
    completed = subprocess.run([sys.executable, "-m", "pbrx_images", "/nonexistent/dir"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode != 0 and "build-images: error: " in completed.stderr


def test_not_a_python_project(tmp_path):
    code, output = run_cli(str(tmp_path))
    assert code == 1
    assert "not a Python project" in error_line(output)
    assert "Traceback" not in output


def test_missing_project_dir(tmp_path):
    code, output = run_cli(str(tmp_path / "nope"))
    assert code == 1
    assert "does not exist" in error_line(output)


def test_debug_shows_traceback(tmp_path):
    code, output = run_cli(str(tmp_path), "--debug")
    assert code == 1 and "Traceback" in output


def test_bindep_syntax_error_names_file_and_line(tmp_path):
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = demo\n")
    (tmp_path / "bindep.txt").write_text("gcc [compile]\nlibpq5 [platform:dpkg\n")
    code, output = run_cli(str(tmp_path))
    assert code == 1
    line = error_line(output)
    assert "bindep.txt" in line and "line 2" in line
    assert "Traceback" not in output


def test_no_engine(tmp_path):
    import os

    (tmp_path / "setup.cfg").write_text("[metadata]\nname = demo\n")
    env = dict(os.environ, DOCKER_HOST="unix://%s/no-engine.sock" % tmp_path)
    code, output = run_cli(str(tmp_path), env=env)
    assert code == 1
    assert "No Docker engine answers" in error_line(output)
    assert "Traceback" not in output


@pytest.mark.parametrize("option", [["--tag", "bad tag"], ["--prefix", "UPPER/Case"]])
def test_invalid_names(tmp_path, option):
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = demo\n")
    code, output = run_cli(str(tmp_path), *option)
    assert code == 1
    assert "not a valid" in error_line(output)


def test_quiet_and_verbose_exclude_each_other(tmp_path):
    code, output = run_cli(str(tmp_path), "-q", "-v")
    assert code == 2 and "not allowed with argument" in output


@pytest.mark.parametrize("option", ["-q", "--quiet", "-v", "--verbose"])
def test_errors_shown_whatever_the_verbosity(tmp_path, option):
    code, output = run_cli(str(tmp_path), option)
    assert code == 1
    assert "not a Python project" in error_line(output)
    assert "Traceback" not in output


def test_help_documents_quiet_and_verbose():
    code, output = run_cli("--help")
    assert code == 0 and "--quiet" in output and "--verbose" in output


@pytest.mark.parametrize("prefix", [[], ["--prefix", "team"], ["--prefix", "team/sub"]])
def test_push_to_docker_hub_by_default_is_refused_before_the_engine(tmp_path, prefix):
    import os

    (tmp_path / "setup.cfg").write_text("[metadata]\nname = demo\n")
    env = dict(os.environ, DOCKER_HOST="unix://%s/no-engine.sock" % tmp_path)
    code, output = run_cli(str(tmp_path), "--push", *prefix, env=env)
    assert code == 1
    line = error_line(output)
    assert "would send" in line and "to Docker Hub" in line and "docker.io/" in line
    assert "No Docker engine" not in output  # refused before the engine is contacted


def test_push_to_docker_hub_spelt_out_is_accepted(tmp_path):
    import os

    (tmp_path / "setup.cfg").write_text("[metadata]\nname = demo\n")
    env = dict(os.environ, DOCKER_HOST="unix://%s/no-engine.sock" % tmp_path)
    code, output = run_cli(str(tmp_path), "--push", "--prefix", "docker.io/team", env=env)
    assert code == 1
    assert "No Docker engine answers" in error_line(output)  # got past the check


def test_the_library_api_is_the_package_and_imports_no_docker_until_used():
    import subprocess
    import sys

    code = ("import sys, pbrx_images; assert 'docker' not in sys.modules; "
            "from pbrx_images import Options, build, dry_run, resolve_options, BuildError; "
            "import pbrx_images.pipeline as p; assert build is p.build and dry_run is p.dry_run; "
            "assert 'build' in dir(pbrx_images); print('ok')")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (completed.returncode, completed.stdout.strip()) == (0, "ok"), completed.stderr


def test_an_unknown_name_of_the_package_is_an_attribute_error():
    import pbrx_images

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        pbrx_images.nothing  # noqa: B018
