"""What the wheel step says it took from the shared cache."""
from __future__ import annotations

from pbrx_images.cache.shared import NO_ENTRY, SharedCache
from pbrx_images.stages.shared_wheels import describe


def cache() -> SharedCache:
    return SharedCache("127.0.0.1:1/team/cache", None, None)


def test_without_the_project_wheel_the_wheels_are_built_and_the_reason_is_given():
    shared = cache()
    assert describe(shared, None, None) == ("the project's wheel: the shared cache could not "
                                            "be used; the wheels are built")
    shared.tally.misses.append(("project-wheel", "k", NO_ENTRY))
    assert describe(shared, None, None) == ("the project's wheel: no entry for this key; the "
                                            "wheels are built")


def test_without_the_lock_the_dependencies_are_resolved():
    shared = cache()
    shared.tally.misses.append(("lock", "k", "unverifiable: the wheel six is not the one"))
    assert describe(shared, ("w.whl", b""), None) == (
        "the project's wheel, but not the lock of its requirements (unverifiable: the wheel "
        "six is not the one): the dependencies are resolved and built")


def test_with_both_no_builder_image_is_needed():
    assert describe(cache(), ("w.whl", b""), ({}, {})).endswith("no builder image is needed")
