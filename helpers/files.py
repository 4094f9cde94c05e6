"""Small file and argument utilities shared by the whole kit.

- ``atomic_write``: write a file so that readers only ever see the old or the new whole file.
- ``positive_int`` / ``check_positive_int``: one way to validate counts on the command line and
  in Python calls.
"""

from __future__ import annotations

import argparse
import contextlib
import numbers
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "check_positive_int", "positive_int"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    The temporary name is unique (``.NAME.XXXX.tmp``), so two processes writing the same file
    never share a temp file: the last rename wins and neither crashes. On any error the
    temporary file is removed and the old ``path`` (if any) is left untouched.

    Yields the open file object (``mode`` is ``"wb"`` or ``"w"``; text is UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file private (0600); give it the permissions open() would have
        os.chmod(fd, 0o666 & ~_umask())
        with open(fd, mode, encoding="utf-8" if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the rename must not land before the bytes do
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum`` (bools rejected), else raise ValueError
    with a message that names the argument and what was given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, not {value!r}.")
    return int(value)


def positive_int(text: str) -> int:
    """argparse ``type=`` for a whole number >= 1: a bad value gives one clear usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
