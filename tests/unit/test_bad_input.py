"""Bad input that ``build-images`` rejects before it contacts the Docker engine.

Every case runs the command in a child process whose ``DOCKER_HOST`` points at
a socket that does not exist, so no engine is needed: a case that wrongly got
as far as the engine would fail with "No Docker engine answers" instead of
its own message.  The child's pip configuration and log directory are
confined to the test's temporary directory.

Each case must give: exit status 1, exactly one ``build-images: error:``
line that is one sentence and names what is at fault (file, line, key,
option), and no traceback.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
NO_ENGINE = "unix:///nonexistent.sock"
ENGINE_MESSAGE = "No Docker engine answers"
PREFIX = "build-images: error: "

SETUP_CFG = "[metadata]\nname = demo\n"
PYPROJECT = '[project]\nname = "demo"\n'


def run_cli(args, cwd, env_extra=None):
    """Run ``build-images`` in a child; return its exit status and output."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PIP_", "DOCKER_"))}
    env.update(
        DOCKER_HOST=NO_ENGINE,
        PIP_CONFIG_FILE=os.devnull,
        XDG_CACHE_HOME=str(cwd / "cache"),
        XDG_CONFIG_DIRS=str(cwd / "xdg"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    env.update(env_extra or {})
    completed = subprocess.run([sys.executable, "-m", "pbrx_images.cli", *args], env=env,
                               cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=120)
    return completed.returncode, completed.stdout.decode("utf-8", "replace")


def error_line(output):
    lines = [line for line in output.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1, output
    return lines[0]


def project(files=None, setup_cfg=SETUP_CFG):
    """The files of a project in ``proj/``: a setup.cfg naming it plus ``files``."""
    result = {"proj/setup.cfg": setup_cfg} if setup_cfg is not None else {}
    result.update({"proj/" + name: content for name, content in (files or {}).items()})
    return result


def toml_project(text):
    return project({"pyproject.toml": text}, setup_cfg=None)


def case(case_id, files, fragments, args=("proj",), env=None, absent=(), marks=()):
    """One bad input.

    ``files`` maps paths below the temporary directory to their content (str
    or bytes), ``args`` are the command's arguments (run from that directory),
    ``fragments`` must all be in the error line and ``absent`` must not be.
    ``{tmp}`` in args, env values and fragments stands for the directory.
    """
    return pytest.param(files, tuple(args), dict(env or {}), tuple(fragments), tuple(absent),
                        id=case_id, marks=marks)


CASES = [
    # ---- bindep.txt syntax: the file name and the right line number -------
    case("bindep-unclosed-bracket",
         project({"bindep.txt": "gcc [compile]\nlibpq5 [platform:dpkg\n"}),
         ["bindep.txt line 2:", "libpq5 [platform:dpkg"]),
    case("bindep-stray-closing-bracket",
         project({"bindep.txt": "gcc [compile]\nlibpq5 platform:dpkg]\n"}),
         ["bindep.txt line 2:", "libpq5 platform:dpkg]"]),
    case("bindep-selector-before-package",
         project({"bindep.txt": "libpq5\n[compile] gcc\n"}),
         ["bindep.txt line 2:", "'['"]),
    case("bindep-selector-alone",
         project({"bindep.txt": "gcc [compile]\nlibpq5\n[platform:dpkg]\n"}),
         ["bindep.txt line 3:", "[platform:dpkg]"]),
    case("bindep-indented-line",
         project({"bindep.txt": "gcc [compile]\n    libpq5 [platform:dpkg]\n"}),
         ["bindep.txt line 2:", "must start the line"]),
    case("bindep-space-in-version",
         project({"bindep.txt": "gcc\nlibfoo >= 1.0\n"}),
         ["bindep.txt line 2:", "libfoo >= 1.0", "spaces"]),
    case("bindep-bang-alone",
         project({"bindep.txt": "gcc\n!\n"}),
         ["bindep.txt line 2:", "'!'"]),
    case("bindep-one-character-name",
         project({"bindep.txt": "gcc\nx [platform:dpkg]\n"}),
         ["bindep.txt line 2:", "two characters"]),
    case("bindep-two-selectors",
         project({"bindep.txt": "gcc\nlibfoo [platform:dpkg] [compile]\n"}),
         ["bindep.txt line 2:", "libfoo [platform:dpkg] [compile]"]),
    case("bindep-line-counts-comments-and-blanks",
         project({"bindep.txt": "# comment\n\ngcc [compile]\n\n# another\n"
                                "libfoo [platform:dpkg\nlibbar [\n"}),
         ["bindep.txt line 6:", "libfoo [platform:dpkg"]),
    case("bindep-last-line-without-newline",
         project({"bindep.txt": "gcc\nlibfoo [platform:dpkg"}),
         ["bindep.txt line 2:"]),
    case("bindep-form-feed-in-comment",
         project({"bindep.txt": "# intro \f more\ngcc\nlibfoo [platform:dpkg\n"}),
         ["bindep.txt line 3:", "libfoo [platform:dpkg"]),
    case("bindep-line-separator-in-comment",
         project({"bindep.txt": "# intro \u2028 more\ngcc\nlibfoo [platform:dpkg\n"}),
         ["bindep.txt line 3:", "libfoo [platform:dpkg"]),
    case("other-requirements-syntax-error",
         project({"other-requirements.txt": "gcc\nlibpq5 [platform:dpkg\n"}),
         ["other-requirements.txt line 2:"]),
    case("bindep-not-utf8",
         project({"bindep.txt": b"gcc\nlib\xff\xfe\n"}),
         ["bindep.txt", "UTF-8"]),

    # ---- setup.cfg ----------------------------------------------------------
    case("setup-cfg-junk-line",
         project(setup_cfg="[metadata]\nname = demo\nthis is not a key\n"),
         ["setup.cfg line 3", "this is not a key"]),
    case("setup-cfg-key-before-section",
         project(setup_cfg="name = demo\n[metadata]\n"),
         ["setup.cfg line 1", "name = demo", "section"]),
    case("setup-cfg-duplicate-section",
         project(setup_cfg="[metadata]\nname = demo\n\n[metadata]\nversion = 1\n"),
         ["setup.cfg line 4", "[metadata]"]),
    case("setup-cfg-duplicate-option",
         project(setup_cfg="[metadata]\nname = demo\nname = other\n"),
         ["setup.cfg line 3", "'name'", "[metadata]"]),
    case("setup-cfg-not-utf8",
         project(setup_cfg=b"[metadata]\nname = d\xe9mo\n"),
         ["setup.cfg", "UTF-8"]),
    case("setup-cfg-unclosed-section-header",
         project(setup_cfg="[metadata\nname = demo\n"),
         ["setup.cfg line 1", "[metadata"], absent=["before any"]),
    case("setup-cfg-bad-console-script",
         project(setup_cfg="[metadata]\nname = demo\n[entry_points]\n"
                           "console_scripts =\n    demo-cli\n"),
         ["setup.cfg", "[entry_points]", "demo-cli"]),
    case("setup-cfg-name-without-letters",
         project(setup_cfg="[metadata]\nname = ---\n"),
         ["'---'"]),

    # ---- pyproject.toml [project] -------------------------------------------
    case("pyproject-invalid-toml",
         toml_project('[project]\nname = "demo\nversion = "1"\n'),
         ["pyproject.toml", "line 2"]),
    case("pyproject-invalid-toml-at-end",
         toml_project('[project]\nname = "demo"\nclassifiers = [\n'),
         ["pyproject.toml", "end of the file"]),
    case("pyproject-not-utf8",
         toml_project(b'[project]\nname = "d\xe9mo"\n'),
         ["pyproject.toml", "UTF-8"]),
    case("pyproject-project-not-a-table",
         toml_project('project = "demo"\n'),
         ["pyproject.toml", "'project'", "table"]),
    case("pyproject-scripts-wrong-type",
         toml_project('[project]\nname = "demo"\nscripts = ["demo-cli"]\n'),
         ["pyproject.toml", "scripts", "table"]),
    case("pyproject-optional-dependencies-wrong-type",
         toml_project('[project]\nname = "demo"\noptional-dependencies = "all"\n'),
         ["pyproject.toml", "optional-dependencies", "table"]),
    case("pyproject-name-wrong-type",
         toml_project("[project]\nname = 3\n"),
         ["pyproject.toml", "name", "string"]),
    case("pyproject-version-wrong-type",
         toml_project('[project]\nname = "demo"\nversion = 1.0\n'),
         ["pyproject.toml", "version", "string"]),
    case("pyproject-dynamic-wrong-type",
         toml_project('[project]\nname = "demo"\ndynamic = "version"\n'),
         ["pyproject.toml", "dynamic"]),

    # ---- build-images settings in the project --------------------------------
    case("tool-settings-unknown-key",
         toml_project(PYPROJECT + '[tool.build-images]\ncolour = "blue"\n'),
         ["[tool.build-images]", "pyproject.toml", "'colour'"]),
    case("tool-settings-not-a-string",
         toml_project(PYPROJECT + "[tool.build-images]\ntag = 1\n"),
         ["[tool.build-images]", "pyproject.toml", "'tag'", "string"]),
    case("tool-settings-empty-string",
         toml_project(PYPROJECT + '[tool.build-images]\nprefix = ""\n'),
         ["[tool.build-images]", "pyproject.toml", "'prefix'"]),
    case("tool-build-images-not-a-table",
         toml_project(PYPROJECT + '[tool]\nbuild-images = "yes"\n'),
         ["[tool.build-images]", "pyproject.toml", "table"]),
    case("tool-not-a-table",
         toml_project('tool = 1\n' + PYPROJECT),
         ["pyproject.toml", "tool"]),
    case("setup-cfg-settings-unknown-key",
         project(setup_cfg=SETUP_CFG + "[build_images]\ncolour = blue\n"),
         ["[build_images]", "setup.cfg", "'colour'"]),
    case("setup-cfg-settings-empty-value",
         project(setup_cfg=SETUP_CFG + "[build_images]\ntag =\n"),
         ["[build_images]", "setup.cfg", "'tag'"]),
    case("setup-cfg-settings-invalid-tag",
         project(setup_cfg=SETUP_CFG + "[build_images]\ntag = release 1\n"),
         ["'release 1'", "setup.cfg"]),
    case("pyproject-settings-invalid-prefix",
         toml_project(PYPROJECT + '[tool.build-images]\nprefix = "Registry/Team"\n'),
         ["'Registry/Team'", "pyproject.toml"]),

    # ---- the project directory ------------------------------------------------
    case("not-a-python-project",
         {"proj/README.txt": "hello\n"},
         ["{tmp}/proj", "not a Python project"]),
    case("project-dir-missing",
         {}, ["{tmp}/missing", "does not exist"], args=["missing"]),
    case("project-dir-is-a-file",
         {"afile": "x\n"}, ["{tmp}/afile", "not a directory"], args=["afile"]),

    # ---- constraints ----------------------------------------------------------
    case("constraints-option-missing-file",
         project(), ["{tmp}/missing-constraints.txt"],
         args=["proj", "--constraints", "missing-constraints.txt"]),
    case("constraints-setting-missing-file",
         project(setup_cfg=SETUP_CFG + "[build_images]\nconstraints = upper.txt\n"),
         ["{tmp}/proj/upper.txt"]),
    case("constraints-tool-setting-missing-file",
         toml_project(PYPROJECT + '[tool.build-images]\nconstraints = "c/upper.txt"\n'),
         ["{tmp}/proj/c/upper.txt"]),
    case("constraints-option-is-a-directory",
         project({"cdir/x": "x\n"}), ["{tmp}/proj/cdir"],
         args=["proj", "--constraints", "proj/cdir"], absent=["does not exist"]),

    # ---- --tag and --prefix -----------------------------------------------------
    case("tag-with-space", project(), ["'bad tag'", "tag"], args=["proj", "--tag", "bad tag"]),
    case("tag-leading-dot", project(), ["'.v1'", "tag"], args=["proj", "--tag", ".v1"]),
    case("tag-leading-dash", project(), ["'-v1'", "tag"], args=["proj", "--tag=-v1"]),
    case("tag-129-characters", project(), ["'" + "a" * 129 + "'", "128"],
         args=["proj", "--tag", "a" * 129]),
    case("tag-trailing-newline", project(), ["'v1\\n'", "tag"], args=["proj", "--tag", "v1\n"]),
    case("tag-with-colon", project(), ["'v1:2'", "tag"], args=["proj", "--tag", "v1:2"]),
    case("tag-empty", project(), ["''", "tag"], args=["proj", "--tag", ""]),
    case("prefix-upper-case", project(), ["'Registry.example.com/team'", "prefix"],
         args=["proj", "--prefix", "Registry.example.com/team"]),
    case("prefix-trailing-colon", project(), ["'registry.example.com:'", "prefix"],
         args=["proj", "--prefix", "registry.example.com:"]),
    case("prefix-with-tag", project(), ["'registry/team:1.0'", "prefix"],
         args=["proj", "--prefix", "registry/team:1.0"]),
    case("prefix-with-space", project(), ["'reg istry'", "prefix"],
         args=["proj", "--prefix", "reg istry"]),

    # ---- the host's pip configuration ------------------------------------------
    case("pip-config-junk-line",
         project() | {"pip.conf": "[global]\nindex-url = https://pypi.example/simple\njunk\n"},
         ["{tmp}/pip.conf", "line 3", "PIP_CONFIG_FILE=/dev/null"],
         env={"PIP_CONFIG_FILE": "{tmp}/pip.conf"}),
    case("pip-config-key-before-section",
         project() | {"pip.conf": "index-url = https://pypi.example/simple\n"},
         ["{tmp}/pip.conf", "line 1", "PIP_CONFIG_FILE=/dev/null"],
         env={"PIP_CONFIG_FILE": "{tmp}/pip.conf"}),
    case("pip-config-duplicate-option",
         project() | {"pip.conf": "[global]\ntimeout = 1\ntimeout = 2\n"},
         ["{tmp}/pip.conf", "line 3", "PIP_CONFIG_FILE=/dev/null"],
         env={"PIP_CONFIG_FILE": "{tmp}/pip.conf"}),
    case("pip-config-not-utf8",
         project() | {"pip.conf": b"[global]\ntimeout = \xff\n"},
         ["{tmp}/pip.conf", "PIP_CONFIG_FILE=/dev/null"],
         env={"PIP_CONFIG_FILE": "{tmp}/pip.conf", "LC_ALL": "C.UTF-8"}),
]


def _fill(text, tmp):
    return text.replace("{tmp}", str(tmp))


@pytest.mark.parametrize("files, args, env, fragments, absent", CASES)
def test_bad_input(tmp_path, files, args, env, fragments, absent):
    tmp = tmp_path.resolve()
    for name, content in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    code, output = run_cli([_fill(arg, tmp) for arg in args], tmp,
                           {key: _fill(value, tmp) for key, value in env.items()})

    assert "Traceback" not in output, output
    assert ENGINE_MESSAGE not in output, "the case got as far as the engine:\n" + output
    assert code == 1, output
    line = error_line(output)
    message = line[len(PREFIX):]
    for fragment in fragments:
        assert _fill(fragment, tmp) in line, output
    for fragment in absent:
        assert _fill(fragment, tmp) not in line, output
    # One sentence: it starts with something and ends with a full stop.
    assert message.strip() == message and message, output
    assert message.endswith("."), output
    assert "\r" not in line, output


def test_directory_name_without_letters_is_not_an_error(tmp_path):
    tmp = tmp_path.resolve()
    (tmp / "___").mkdir()
    (tmp / "___" / "setup.cfg").write_text(SETUP_CFG)
    code, output = run_cli(["___"], tmp)
    assert "Traceback" not in output, output
    # Everything is valid, so the build gets as far as the (absent) engine.
    assert ENGINE_MESSAGE in error_line(output), output
