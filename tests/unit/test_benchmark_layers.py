"""Tests for the layer arithmetic of tools/benchmark (the benchmark itself never runs here)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
import tarfile
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "benchmark"


@pytest.fixture(scope="module")
def benchmark() -> Iterator[ModuleType]:
    loader = SourceFileLoader("pbrx_benchmark", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up there
    try:
        loader.exec_module(module)
        yield module
    finally:
        del sys.modules[loader.name]


def layer_tar(entries: dict[str, bytes | None]) -> bytes:
    """A layer: path -> content, or None for a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for path, content in entries.items():
            info = tarfile.TarInfo(path)
            if content is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def layers(benchmark: ModuleType, *tars: bytes) -> list:
    return [benchmark.read_layer(io.BytesIO(data)) for data in tars]


def test_read_layer_gives_the_diff_id_size_and_whiteouts(benchmark: ModuleType) -> None:
    data = layer_tar({"./etc/": None, "./etc/a": b"abc", "etc/.wh.b": b"",
                      "opt/.wh..wh..opq": b""})
    layer = benchmark.read_layer(io.BytesIO(data))
    assert layer.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert layer.size == len(data)
    assert layer.entries == {"etc": ("dir", 0), "etc/a": ("file", 3)}
    assert layer.whiteouts == {"etc/b"}
    assert layer.opaque == {"opt"}


def test_nothing_is_dead_when_later_layers_only_add(benchmark: ModuleType) -> None:
    result = benchmark.dead_bytes(layers(
        benchmark, layer_tar({"a": None, "a/x": b"12345"}),
        layer_tar({"a": None, "a/y": b"12"})))
    assert result == [0, 0]


def test_overwritten_deleted_and_hidden_files_are_dead(benchmark: ModuleType) -> None:
    result = benchmark.dead_bytes(layers(
        benchmark,
        layer_tar({"w": b"1", "d/x": b"22", "e/y": b"333", "f/z": b"4444", "keep": b"55555"}),
        layer_tar({"w": b"new"}),  # overwritten
        layer_tar({"d/.wh.x": b"", "e": b"now a file"}),  # deleted; parent replaced
        layer_tar({"f/.wh..wh..opq": b""})))  # parent emptied
    assert result == [1 + 2 + 3 + 4, 0, 0, 0]


def test_whiteouts_do_not_reach_layers_above_them(benchmark: ModuleType) -> None:
    result = benchmark.dead_bytes(layers(
        benchmark, layer_tar({"d/.wh.x": b""}), layer_tar({"d/x": b"123"})))
    assert result == [0, 0]


def test_read_saved_image_reads_every_layer_of_an_export(benchmark: ModuleType) -> None:
    first, second = layer_tar({"a": b"1"}), layer_tar({"b": b"22"})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (("one/layer.tar", first), ("two/layer.tar", second),
                           ("manifest.json", b"[]")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    chunks = [data[i:i + 777] for i in range(0, len(data), 777)]
    result = benchmark.read_saved_image(chunks)
    assert sorted(result) == sorted("sha256:" + hashlib.sha256(d).hexdigest()
                                    for d in (first, second))


def test_table_says_which_targets_are_met(benchmark: ModuleType) -> None:
    rows = [benchmark.Row("cold build", 10.0, 20.0, "s", "<= 1.0x Dockerfile", True),
            benchmark.Row("new bytes", 2_500_000, 1000, "bytes", "<= 100 KB", False),
            benchmark.Row("same IDs", True, False, "bool", "identical", True)]
    lines = benchmark.table(rows).splitlines()
    assert lines[1].split() == ["cold", "build", "10.0", "s", "20.0", "s", "0.50", "<=",
                                "1.0x", "Dockerfile", "yes"]
    assert lines[2].split()[2:] == ["2.5", "MB", "1.0", "KB", "2500.00", "<=", "100", "KB",
                                    "NO"]
    assert lines[3].split()[2:] == ["yes", "no", "-", "identical", "yes"]
