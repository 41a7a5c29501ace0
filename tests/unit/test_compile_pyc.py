"""container_tools/compile_pyc.py writes the byte code pip's install writes."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from pbrx_images.container_tools import compile_pyc
from pbrx_images.plan.fast_path import pyc_path, record_hash

MODULE = b'"""A module."""\nimport os\n\n\ndef main(name="x"):\n    return [os.sep, name] * 2\n'


def wheel(directory: Path) -> Path:
    """A wheel of one module, written by hand (no build backend needed)."""
    path = directory / "tiny-1.0-py3-none-any.whl"
    files = {"tiny/__init__.py": b"", "tiny/mod.py": MODULE,
             "tiny-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tiny\nVersion: 1.0\n",
             "tiny-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\n"
                                         b"Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join("%s,%s,%d\n" % (name, record_hash(data), len(data))
                     for name, data in files.items()) + "tiny-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("tiny-1.0.dist-info/RECORD", record)
    return path


def test_the_byte_code_is_pips(tmp_path, capsys, monkeypatch):
    prefix = tmp_path / "prefix"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--disable-pip-version-check", "--prefix", str(prefix),
                    str(wheel(tmp_path))], check=True,
                   env=dict(os.environ, SOURCE_DATE_EPOCH="0", PIP_CONFIG_FILE=os.devnull))
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix),
                                                    "platbase": str(prefix)}))
    installed = site / "tiny" / "mod.py"
    by_pip = (site / pyc_path("tiny/mod.py", sys.implementation.cache_tag)).read_bytes()

    source = tmp_path / "mod.py"  # elsewhere: the byte code names the installed path
    source.write_bytes(MODULE)
    (tmp_path / "list.json").write_text(json.dumps([[str(source), str(installed)]]))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # as the installs run
    assert compile_pyc.main(["compile_pyc.py", str(tmp_path / "list.json")]) == 0
    line, = capsys.readouterr().out.splitlines()
    mark, path, data = line.split(" ")
    assert (mark, path) == ("pbrx-images-pyc:", str(installed))
    assert base64.b64decode(data) == by_pip
    # (and it is not the byte code of the same source at another path)
    assert compile_pyc.compile_one(str(source), str(source)) != by_pip
