"""Tests for pbrx_images.plan.cache_keys: each key follows every input, and only those."""

from __future__ import annotations

import pytest

from pbrx_images.plan import cache_keys
from pbrx_images.plan.cache_keys import cache_key

# --------------------------------------------------------------------------
# cache_key

PARTS = ("1", "sha256:abc", "apt", "libpq-dev gcc git", "e3b0c442")


def test_cache_key_is_stable_and_short():
    assert cache_key(*PARTS) == cache_key(*PARTS)
    key = cache_key(*PARTS)
    assert len(key) == 16
    assert all(char in "0123456789abcdef" for char in key)


@pytest.mark.parametrize("index", range(len(PARTS)))
def test_cache_key_sensitive_to_each_part(index):
    changed = list(PARTS)
    changed[index] += "x"
    assert cache_key(*changed) != cache_key(*PARTS)


def test_cache_key_sensitive_to_order_and_boundaries():
    assert cache_key("a", "b") != cache_key("b", "a")
    assert cache_key("ab", "c") != cache_key("a", "bc")
    assert cache_key("a", "") != cache_key("a")


# --------------------------------------------------------------------------
# the builder image's constraints


def test_builder_keeps_only_constraints_on_its_own_tools():
    text = (b"# pins\npsycopg2==2.9.10\nPip==24.0  # the builder's pip\n"
            b"tabulate==0.9.0\nsetuptools<70\n--only-binary :all:\nWHEEL==0.43\n\n")
    assert cache_keys.build_tool_constraints(text) == (b"Pip==24.0\nsetuptools<70\n"
                                                       b"--only-binary :all:\nWHEEL==0.43\n")


def test_bumping_a_dependency_keeps_the_builder_image():
    assert cache_keys.build_tool_constraints(b"tabulate==0.9.0\n") == \
        cache_keys.build_tool_constraints(b"tabulate==0.10.0\n") == b""


# ---- the lock of the same requirements, reused ----------------------------------------

LOCK_ARGS = dict(builder_image="pbrx-images-cache/builder:0123", project="App_Name",
                 requires=("psycopg2>=2.9", 'tabulate; extra == "report"'),
                 extras=("report",), constraints=b"tabulate<1\n",
                 pip_files={"/tmp/pbrx-images-pip/pip.conf": b"[global]\n"},
                 pip_environment={"PIP_INDEX_URL": "https://index.example/simple"})


def _lock_key(**changes):
    values = dict(LOCK_ARGS, **changes)
    return cache_keys.lock_key(values["builder_image"], values["project"], values["requires"],
                               values["extras"], values["constraints"], values["pip_files"],
                               values["pip_environment"])


def test_lock_key_ignores_order_and_name_spelling():
    assert _lock_key() == _lock_key(project="app-name",
                                    requires=tuple(reversed(LOCK_ARGS["requires"])))


@pytest.mark.parametrize("change", [
    {"builder_image": "pbrx-images-cache/builder:4567"},
    {"project": "other"},
    {"requires": ("psycopg2>=2.9",)},
    {"extras": ()},
    {"constraints": b"tabulate<2\n"},
    {"pip_files": {"/tmp/pbrx-images-pip/pip.conf": b"[global]\nindex-url = x\n"}},
    {"pip_environment": {}},
])
def test_lock_key_follows_every_input_of_a_resolution(change):
    assert _lock_key(**change) != _lock_key()


def test_lock_key_boundaries_between_parts():
    assert _lock_key(requires=("a", "b"), extras=()) != _lock_key(requires=("a",),
                                                                  extras=("b",))


def test_build_env_key_names_what_goes_into_the_environment():
    key = cache_keys.build_env_key("builder:1", ["setuptools>=61", "wheel"], {}, {})
    assert key == cache_keys.build_env_key("builder:1", ["wheel", "setuptools>=61"], {}, {})
    assert len(key) == 32
    for other in (cache_keys.build_env_key("builder:2", ["setuptools>=61", "wheel"], {}, {}),
                  cache_keys.build_env_key("builder:1", ["setuptools>=61"], {}, {}),
                  cache_keys.build_env_key("builder:1", ["setuptools>=61", "wheel"],
                                           {"/etc/pip.conf": b"[global]\n"}, {}),
                  cache_keys.build_env_key("builder:1", ["setuptools>=61", "wheel"], {},
                                           {"PIP_INDEX_URL": "https://mirror/simple"})):
        assert other != key
