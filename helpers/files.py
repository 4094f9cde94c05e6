"""Small file and argument utilities shared by the whole kit.

- ``atomic_write``: write a file so that readers only ever see the old or the new whole file;
  a full disk raises ``NoSpaceError`` with one line naming the file and the room to free.
- ``write_text_atomic`` / ``write_bytes_atomic``: the same for a whole text or byte string.
- ``NoSpaceError``, ``is_no_space``, ``no_space_message``: one way to say the disk is full.
- ``printable``: a file name safe to print on any terminal.
- ``check_writable_folder``: a folder the kit must write into, with a clear error and hint when
  it is a file or read-only.
- ``positive_int`` / ``check_positive_int``: one way to validate counts on the command line and
  in Python calls.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import numbers
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "NoSpaceError",
    "NotWritableError",
    "atomic_write",
    "check_positive_int",
    "check_writable_folder",
    "is_no_space",
    "no_space_message",
    "positive_int",
    "printable",
    "write_bytes_atomic",
    "write_text_atomic",
]


class NoSpaceError(OSError):
    """A disk filled up while writing; the message names the file and how much room to free.

    Its errno is ENOSPC, so code that checks ``is_no_space`` or catches OSError still sees it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self):  # raised in a worker process, it is pickled back with its message
        return type(self), (self.strerror,)


class NotWritableError(OSError):
    """A folder the kit must write into is a file, or cannot be written; the message says what
    to do. Made as ``NotWritableError(errno, message)``."""

    def __str__(self) -> str:
        return str(self.strerror if self.strerror is not None else self.args[0])


def is_no_space(exc: BaseException) -> bool:
    """True for 'no space left on device' and 'disk quota exceeded' errors."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def no_space_message(path: str | os.PathLike[str], needed_bytes: int = 0) -> str:
    """'No space left on device while writing PATH; free N MB and rerun'.

    ``needed_bytes`` is what the write still needs; N is at least 1.
    """
    mb = max(1, -(-int(needed_bytes) // 2**20))
    return f"No space left on device while writing {path}; free {mb:,} MB and rerun"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    The temporary name is unique (``.NAME.XXXX.tmp``), so two processes writing the same file
    never share a temp file: the last rename wins and neither crashes. On any error the
    temporary file is removed and the old ``path`` (if any) is left untouched.

    Yields the open file object (``mode`` is ``"wb"`` or ``"w"``; text is UTF-8). A full disk
    raises ``NoSpaceError`` ("No space left on device while writing PATH; free N MB and
    rerun", N at least what was written so far) and leaves the old file as it was.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if is_no_space(exc):
            raise NoSpaceError(no_space_message(path)) from exc
        raise
    tmp = Path(tmp_name)
    written = 0
    try:
        # mkstemp makes the file private (0600); give it the permissions open() would have
        os.chmod(fd, 0o666 & ~_umask())
        with open(fd, mode, encoding="utf-8" if mode == "w" else None) as f:
            try:
                yield f
                f.flush()
                os.fsync(f.fileno())  # the rename must not land before the bytes do
            finally:
                with contextlib.suppress(OSError, ValueError):
                    written = os.fstat(fd).st_size
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if is_no_space(exc) and not isinstance(exc, NoSpaceError):
            raise NoSpaceError(no_space_message(path, written)) from exc
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; a full disk raises ``NoSpaceError`` saying how many
    MB to free (the whole size of ``data``, less what is free)."""
    try:
        with atomic_write(path, "wb") as f:
            f.write(data)
    except NoSpaceError as exc:
        raise NoSpaceError(no_space_message(path, _short_of(path, len(data)))) from exc


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends kept as they are) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def _short_of(path: str | os.PathLike[str], needed: int) -> int:
    """How many more bytes the folder of ``path`` needs to hold ``needed`` bytes."""
    import shutil

    try:
        free = shutil.disk_usage(Path(path).parent).free
    except OSError:
        return needed
    return max(needed - free, 1)


def check_writable_folder(folder: str | os.PathLike[str], what: str = "--out") -> Path:
    """Make ``folder`` (and its parents) if needed and return it; raise ``NotWritableError`` with
    a clear message when it is a file, or cannot be made or written (a read-only kit folder
    gets a hint to copy the kit, or to choose ``what`` elsewhere)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotWritableError(
            errno.ENOTDIR,
            f"{folder} is a file, not a folder: choose a folder for {what} (it is made if "
            f"missing), or move the file away.",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".kit_write_test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if is_no_space(exc):
            raise NoSpaceError(no_space_message(folder)) from exc
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            raise NotWritableError(
                errno.ENOTDIR,
                f"{folder} cannot be made: a part of its path is a file, not a folder "
                f"({exc.filename}). Choose another folder for {what}.",
            ) from exc
        raise NotWritableError(
            exc.errno,
            f"Cannot write to {folder} ({exc.strerror or exc}). If the kit's folder is "
            f"read-only (a shared or mounted copy), copy the kit to a folder you own "
            f"(cp -r KIT ~/dcgan-kit) and work there, or choose a writable folder for {what}.",
        ) from exc
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def printable(text: str) -> str:
    """``text`` safe for any terminal: bytes of a file name that are not UTF-8 (a Latin-1
    ``Zo\\xeb.png`` from a Windows zip) are shown as ``\\xNN`` instead of crashing the print."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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
