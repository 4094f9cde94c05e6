"""Specification of helpers.files: atomic writes and the one positive-integer check."""

import argparse
import os
import stat

import pytest

from helpers.files import atomic_write, check_positive_int, positive_int


def test_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with atomic_write(path, "w") as f:
        f.write("new")
        assert path.read_text() == "old", "readers see the old file until the write is done"
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(OSError), atomic_write(path) as f:
        f.write(b"half")
        raise OSError(28, "No space left on device")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_two_writers_of_one_file_do_not_share_a_temp_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    with atomic_write(path) as first, atomic_write(path) as second:
        assert first.name != second.name
        first.write(b"1")
        second.write(b"2")
    assert path.read_bytes() == b"1"  # the last rename wins; neither writer crashed


def test_the_file_gets_the_permissions_open_would_give(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "shared.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == 0o644


def test_only_binary_or_text_write_modes(tmp_path):
    with pytest.raises(ValueError, match="'wb' or 'w'"), atomic_write(tmp_path / "x", "a"):
        pass


@pytest.mark.parametrize("bad", [0, -3, True, 2.5, "4"])
def test_check_positive_int_names_the_argument_and_the_value(bad):
    with pytest.raises(
        ValueError, match=rf"n_epochs must be a whole number of at least 1, not {bad!r}"
    ):
        check_positive_int(bad, "n_epochs")


def test_check_positive_int_returns_a_good_value():
    assert check_positive_int(3, "workers") == 3
    assert check_positive_int(8, "size", minimum=8) == 8


@pytest.mark.parametrize(("text", "why"), [("0", "at least 1, not 0"), ("x", "not 'x'")])
def test_positive_int_is_one_clear_usage_error(text, why):
    with pytest.raises(argparse.ArgumentTypeError, match=why):
        positive_int(text)
    assert positive_int("12") == 12
