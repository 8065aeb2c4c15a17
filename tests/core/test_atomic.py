"""Atomic writes: a reader sees the old file or the whole new one, never a part."""

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.atomic import atomic_write_bytes, atomic_write_json, atomic_write_with


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=4096))
def test_bytes_round_trip(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("a") / "sub" / "out.bin"
    atomic_write_bytes(path, data)
    assert path.read_bytes() == data


@settings(max_examples=30, deadline=None)
@given(obj=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
))
def test_json_round_trip(tmp_path_factory, obj):
    path = tmp_path_factory.mktemp("j") / "out.json"
    atomic_write_json(path, obj)
    assert json.loads(path.read_text()) == obj


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_bytes(path, b"old")

    def half_then_fail(f):
        f.write(b"partial new content")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["results.json"]


def test_written_file_gets_umask_mode_not_private(tmp_path):
    from harness import atomic

    path = atomic_write_bytes(tmp_path / "r.json", b"{}")
    assert (path.stat().st_mode & 0o777) == 0o666 & ~atomic._UMASK
    assert path.stat().st_mode & 0o044  # readable by others under the usual umasks
