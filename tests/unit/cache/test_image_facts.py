"""The client's facts about images, by image ID."""
from __future__ import annotations

import os

from pbrx_images.cache.image_facts import RECIPE, ImageFacts

IMAGE = "sha256:" + "ab" * 32


def test_what_was_put_is_got_by_kind_and_id(tmp_path):
    facts = ImageFacts(tmp_path / "facts")
    assert facts.get("base", IMAGE) is None
    facts.put("base", IMAGE, {"os_release": "ID=debian\n", "manager": "apt"})
    assert facts.get("base", IMAGE) == {"os_release": "ID=debian\n", "manager": "apt"}
    assert facts.get("sbom", IMAGE) is None
    assert facts.get("base", "sha256:" + "cd" * 32) is None
    assert [path.name for path in (tmp_path / "facts").iterdir()] == [
        "base-%s-%s.json" % (RECIPE, "ab" * 32)]


def test_disabled_facts_are_not_read_but_still_kept(tmp_path):
    ImageFacts(tmp_path).put("base", IMAGE, [1])
    disabled = ImageFacts(tmp_path, enabled=False)
    assert disabled.get("base", IMAGE) is None
    disabled.put("base", IMAGE, [2])
    assert ImageFacts(tmp_path).get("base", IMAGE) == [2]


def test_a_damaged_file_is_no_fact(tmp_path):
    facts = ImageFacts(tmp_path)
    facts.put("base", IMAGE, {"a": 1})
    path = next(tmp_path.iterdir())
    path.write_text("{not json")
    assert facts.get("base", IMAGE) is None


def test_an_unwritable_directory_is_skipped(tmp_path):
    (tmp_path / "file").write_text("")
    facts = ImageFacts(tmp_path / "file" / "facts")
    facts.put("base", IMAGE, {"a": 1})  # no error
    assert facts.get("base", IMAGE) is None


def test_prune_removes_what_was_not_used(tmp_path):
    facts = ImageFacts(tmp_path)
    facts.put("base", IMAGE, 1)
    facts.put("sbom", IMAGE, 2)
    old = next(path for path in tmp_path.iterdir() if path.name.startswith("base-"))
    os.utime(old, (0, 0))
    facts.prune(max_age=3600)
    assert facts.get("base", IMAGE) is None and facts.get("sbom", IMAGE) == 2
