"""The package as its ecosystem expects it: license text, type information, classifiers."""
from __future__ import annotations

import configparser
import sys

from tests.conftest import ROOT


def _metadata() -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return parser["metadata"]


def test_the_license_file_is_the_license_setup_cfg_declares():
    assert _metadata()["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_package_says_it_is_typed():
    assert (ROOT / "pbrx_images" / "py.typed").is_file()  # PEP 561
    assert "Typing :: Typed" in _metadata()["classifier"]


def test_the_classifiers_name_the_python_the_tests_run_on():
    version = "Programming Language :: Python :: %d.%d" % sys.version_info[:2]
    assert version in _metadata()["classifier"].splitlines(), (
        "setup.cfg's classifiers should name the Python CI runs")
    low = tuple(int(part) for part in _metadata()["python_requires"].lstrip(">=").split("."))
    assert sys.version_info[:2] >= low
