"""The clean view of a data folder (notebook step "Get the data", through
``helpers.data.find_data_dir``).

When some files of a data folder cannot be used as they are (unreadable, 16-bit, hidden junk),
the notebook trains on a *clean view* instead: a folder with the same class layout holding
links to the usable originals and 8-bit copies of high-bit-depth ones. The originals are never
moved, changed or deleted.

A view cannot lie: each builder works in a temporary folder of its own, writes the marker (the
stamp of the check results and the listing of the view) last and renames the folder into
place; a view is used only when its marker matches both the check results and what it holds.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from helpers.files import (
    NoSpaceError,
    atomic_write,
    check_writable_folder,
    is_no_space,
    no_space_message,
    printable,
)
from helpers.imagefile import DataFolderError, to_8bit

__all__ = ["SKIPPED_FILE", "VIEW_MARKER", "CheckedFolder", "make_clean_view"]

SKIPPED_FILE = "skipped_files.txt"  # written into a clean view: what was left out and why
VIEW_MARKER = ".kit_view.json"  # written last into a finished clean view


class CheckedFolder(Protocol):
    """What a view is made from: ``helpers.data.FolderReport`` (paths relative to ``root``)."""

    root: Path
    good: list[str]
    converted: dict[str, str]
    bad: dict[str, str]
    entries: dict[str, Any]  # rel -> [*change key, status, why]


def _place(src: Path, dest: Path, how: list[str]) -> None:
    """Put ``src`` at ``dest`` as a symlink, else a hard link, else a copy (``how`` remembers
    which works here, so a system without symlinks pays for the failed try once)."""
    while True:
        try:
            if how[0] == "symlink":
                os.symlink(src, dest)
            elif how[0] == "hardlink":
                os.link(src, dest)
            else:
                shutil.copy2(src, dest)
            return
        except OSError:
            if how[0] == "copy":
                raise
            how[0] = "hardlink" if how[0] == "symlink" else "copy"


def _listing(view: Path) -> tuple[int, str]:
    """(number of entries, hash of their sorted relative paths) in a clean view, marker left
    out: what a finished view's marker records, so a view is used only when it is whole."""
    names = []
    for dirpath, dirnames, filenames in os.walk(view):  # links are listed, not followed
        rel = Path(dirpath).relative_to(view).as_posix()
        # the kit's own files at the top (the marker, the fast loader's caches) are not content
        names += [
            f"{rel}/{f}" for f in filenames + dirnames if not (rel == "." and f.startswith(".kit_"))
        ]
    names.sort()
    return len(names), hashlib.sha1("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest()


def _view_is(view: Path, stamp: str) -> bool:
    """True when ``view`` is a finished clean view of ``stamp`` holding all it should."""
    try:
        marker = json.loads((view / VIEW_MARKER).read_text())
        if marker.get("stamp") != stamp:
            return False
        return list(_listing(view)) == marker.get("listing")
    except (OSError, ValueError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def _remove_abandoned(parent: Path, name: str) -> None:
    """Half-built or set-aside views of ``name`` whose process is gone (killed, or Ctrl-C'd)."""
    for p in parent.glob(f".{name}.*-*-*"):
        kind, _, rest = p.name[len(name) + 2 :].partition("-")
        pid = rest.split("-", 1)[0]
        if kind in ("building", "old") and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def make_clean_view(report: CheckedFolder, view_dir: str | os.PathLike) -> Path:
    """Build (or reuse) ``view_dir``: the usable images of ``report.root``, same class layout.

    Good images are symlinks to the originals (hard links or copies where symlinks are not
    allowed), high-bit-depth ones are 8-bit copies, unreadable ones are left out and listed in
    ``view_dir/skipped_files.txt``. The originals are never moved, changed or deleted. The view
    is rebuilt only when the check results change. Returns ``view_dir`` for ImageFolder.

    Each call builds in a temporary folder of its own and writes the marker (the stamp of the
    check results, and the view's listing) last, then renames the folder into place: processes
    building the same view at once each end with a whole view, and a view is used only when its
    marker matches both the check results and what the folder holds. A full disk raises
    ``NoSpaceError`` and leaves nothing behind; a read-only folder, ``NotWritableError``.
    """
    view = Path(view_dir)
    root = report.root.resolve()
    usable = sorted(report.good) + sorted(report.converted)
    # The change key of every usable file (its entry less status and reason) is in the stamp:
    # copies (converted images, or all of them where links are not allowed) must follow changes
    # to their originals.
    stamp = hashlib.sha1(
        json.dumps(
            [
                str(root),
                [[rel] + report.entries.get(rel, [])[:-2] for rel in usable],
                sorted(report.bad),
            ]
        ).encode()
    ).hexdigest()
    if _view_is(view, stamp):
        return view
    if view.exists() and not (view / VIEW_MARKER).exists():
        raise DataFolderError(
            f"{view} exists and was not made by the kit; remove it or choose another clean_dir."
        )
    parent = check_writable_folder(view.parent, "clean_dir (the clean view's folder)")
    _remove_abandoned(parent, view.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{view.name}.building-{os.getpid()}-", dir=parent))
    try:
        _fill_view(report, root, tmp, stamp)
        _swap_in(tmp, view, stamp)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_no_space(exc):
            copies = sum(os.path.getsize(root / rel) for rel in report.converted)
            needed = copies + 4096 * (len(usable) + 1)  # links and folders take a block each
            raise NoSpaceError(no_space_message(view, needed)) from None
        raise
    return view


def _fill_view(report: CheckedFolder, root: Path, tmp: Path, stamp: str) -> None:

    how = ["symlink"]
    for rel in report.good:
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        _place(root / rel, dest, how)
    for rel in report.converted:
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        to_8bit(root / rel, dest)
    # A file in the view's root is invisible to ImageFolder (it only lists folders there).
    with atomic_write(tmp / SKIPPED_FILE, "w") as f:
        f.write(
            printable(
                f"Files in {root} left out of training, and why:\n"
                + "".join(f"{rel}\t{why}\n" for rel, why in sorted(report.bad.items()))
            )
        )
    marker = {"stamp": stamp, "source": str(root), "linked_by": how[0], "listing": _listing(tmp)}
    with atomic_write(tmp / VIEW_MARKER, "w") as f:  # last: the view is whole from here on
        f.write(json.dumps(marker))


def _swap_in(tmp: Path, view: Path, stamp: str) -> None:
    """Rename the finished ``tmp`` to ``view``; an older view there is set aside and removed.
    When another process put the same view in place first, ours is dropped."""
    for _ in range(20):
        try:
            os.rename(tmp, view)  # atomic; fails when view is a folder that holds anything
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if _view_is(view, stamp):  # another process finished the same view: use it
            shutil.rmtree(tmp, ignore_errors=True)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{view.name}.old-{os.getpid()}-", dir=view.parent))
        with contextlib.suppress(FileNotFoundError):  # another process set it aside first
            os.rename(view, old / "view")
        shutil.rmtree(old, ignore_errors=True)  # links and copies only: never follows links
    raise DataFolderError(f"Could not put the clean view in place at {view}: try again.")
