"""Find and check the training images (notebook step "Get the data").

The notebook's ``get_dataloader`` hands a folder to ``torchvision.datasets.ImageFolder``, which
expects the layout ``root/<class>/<image>`` (for CelebA:
``processed_celeba_small/celeba/000001.jpg``).
``find_data_dir`` picks that folder:

* real images, when ``data_dir`` holds some (checked once, cached, unreadable files left out);
* otherwise the kit's built-in generated faces, made once by ``helpers.faces.make_faces``.

Command line (``python -m helpers data --help``; the built-in set: ``python -m helpers faces``)::

    python -m helpers data prepare-celeba img_align_celeba.zip   # -> processed_celeba_small/
    python -m helpers data check processed_celeba_small           # what ImageFolder will see
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from helpers.cleanview import SKIPPED_FILE, make_clean_view
from helpers.faces import BUILTIN_DIR
from helpers.faces import DEFAULT_N as N_BUILTIN
from helpers.files import NoSpaceError, NotWritableError, atomic_write, positive_int, printable
from helpers.imagefile import DataFolderError, DataFolderNotFoundError, check_image_file

__all__ = [
    "CHECK_FILE",
    "CHECK_VERSION",
    "DEFAULT_DATA_DIR",
    "JUNK_DIRS",
    "POOL_MIN_FILES",
    "DataFolderError",  # defined in helpers.imagefile; what find_data_dir and the checks raise
    "FolderReport",
    "check_image_folder",
    "find_data_dir",
    "main",
    "output_dir_for",
]

# Defaults in one place; the notebook and the CLI use these.
DEFAULT_DATA_DIR = "processed_celeba_small/"  # where Udacity's zip (and prepare-celeba) put CelebA
CHECK_FILE = ".kit_check.json"  # per-file check results, kept in the data folder
CHECK_VERSION = 3  # bump when check_image_file's verdicts or the change key below change
JUNK_DIRS = {"__MACOSX"}  # resource-fork folders macOS puts into zips
POOL_MIN_FILES = 256  # below this a process pool costs more than it saves


def _image_extensions() -> tuple[str, ...]:
    # Import late: torchvision pulls in torch, which the check workers and the CLI's
    # prepare-celeba do not need.
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return tuple(IMG_EXTENSIONS)


def _is_junk(name: str) -> bool:
    # Hidden files and folders (.DS_Store, ._000001.jpg, .ipynb_checkpoints) and macOS zip
    # debris are never training images, even when their names end in .jpg.
    return name.startswith(".") or name in JUNK_DIRS


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def _loops_note(loops: list[str]) -> str:
    return (
        f"followed each folder once: {', '.join(loops[:3])}{' ...' if len(loops) > 3 else ''} "
        f"leads back to a folder already read (a symlink loop or a second link to it), so "
        f"its images are not counted again"
    )


def _plural(n: int, word: str) -> str:
    return f"{_fmt_count(n)} {word}{'' if n == 1 else 's'}"


@dataclass
class FolderReport:
    """What ImageFolder would find in ``root`` (notebook step "Get the data").

    Paths are relative to ``root`` with '/' separators. ``good`` images load as they are,
    ``converted`` ones need an 8-bit copy (see ``check_image_file``), ``bad`` ones cannot be read
    (path -> reason). ``ignored`` are files ImageFolder skips or that are junk (hidden files,
    ``__MACOSX``); ``stray`` are images lying directly in ``root`` where ImageFolder never looks.
    ``checked`` counts the files opened by this call (0 when the cache was up to date).
    """

    root: Path
    classes: dict[str, int] = field(default_factory=dict)
    good: list[str] = field(default_factory=list)
    converted: dict[str, str] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)
    junk_images: list[str] = field(default_factory=list)
    junk_dirs: list[str] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)  # folders reached a second time, not read again
    checked: int = 0
    cache_file: Path | None = None
    # rel -> [*_change_key(file), status, why]
    entries: dict = field(default_factory=dict, repr=False)

    @property
    def n_images(self) -> int:
        """Images a training run will use (good + converted)."""
        return len(self.good) + len(self.converted)

    @property
    def needs_clean_view(self) -> bool:
        """True when ImageFolder on ``root`` itself would fail or see something other than the
        usable images: unreadable files, 16-bit images, hidden image files, or class folders
        without a usable image (ImageFolder stops with an error on an empty class)."""
        return bool(
            self.bad
            or self.converted
            or self.junk_images
            or self.junk_dirs
            or self.empty_classes
            or self.loops
        )

    def bad_summary(self, limit: int = 3) -> str:
        """'a.jpg (empty file), b.jpg (truncated JPEG), ...' for the first ``limit`` bad files."""
        items = [f"{p} ({why})" for p, why in sorted(self.bad.items())]
        more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
        return printable(", ".join(items[:limit]) + more)

    def summary(self) -> str:
        """A few lines for ``python -m helpers data check``."""
        lines = [
            f"{self.root}: {_plural(self.n_images, 'usable image')} in "
            f"{_plural(len(self.classes), 'class folder')}"
            + (
                f" ({', '.join(f'{c}: {_fmt_count(n)}' for c, n in self.classes.items())})"
                if self.classes
                else ""
            )
        ]
        if self.converted:
            lines.append(
                f"  {_plural(len(self.converted), 'high-bit-depth image')} "
                "used through an 8-bit copy"
            )
        if self.bad:
            lines.append(f"  {_plural(len(self.bad), 'unreadable file')} (skipped):")
            lines += [f"    {p}: {why}" for p, why in sorted(self.bad.items())]
        if self.stray:
            lines.append(
                f"  {_plural(len(self.stray), 'image')} directly in the folder "
                "(ImageFolder ignores them; they belong in a class subfolder)"
            )
        if self.empty_classes:
            lines.append(
                f"  class folders without a usable image (left out): "
                f"{', '.join(self.empty_classes)}"
            )
        if self.junk_dirs or self.junk_images:
            lines.append(
                f"  hidden/junk left out: {', '.join(self.junk_dirs + self.junk_images[:3])}"
                + (" ..." if len(self.junk_images) > 3 else "")
            )
        if self.loops:
            lines.append(f"  {_loops_note(self.loops)}")
        if self.ignored:
            lines.append(f"  {_plural(len(self.ignored), 'other file')} ignored (not images)")
        lines.append(
            f"  checked {_plural(self.checked, 'file')} this time"
            + (f"; results cached in {self.cache_file}" if self.cache_file else "")
        )
        return printable("\n".join(lines))


def _identity(path) -> tuple[int, int]:
    """(device, inode) of the folder a path leads to, through any symlinks."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _scan(root: Path, extensions: tuple[str, ...], report: FolderReport) -> list[str]:
    """Walk ``root`` the way ImageFolder does; fill the layout fields, return candidate images."""
    candidates: list[str] = []
    # Each folder is read once: a symlink back up the tree (celeba/loop -> ..) or a second link
    # to a folder already read would otherwise list the same images again and again.
    seen = {_identity(root)}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        name = entry.name
        if entry.is_dir():  # follows symlinks, like ImageFolder's find_classes
            if _is_junk(name):
                report.junk_dirs.append(name + "/")
                continue
            if _identity(entry.path) in seen:
                report.loops.append(name + "/")
                continue
            seen.add(_identity(entry.path))
            report.classes[name] = 0
            # ImageFolder walks each class folder recursively, following links.
            for dirpath, dirnames, filenames in os.walk(entry.path, followlinks=True):
                rel_dir = Path(dirpath).relative_to(root).as_posix()
                for d in sorted(dirnames):
                    if _is_junk(d):
                        report.junk_dirs.append(f"{rel_dir}/{d}/")
                keep = []
                for d in sorted(d for d in dirnames if not _is_junk(d)):
                    ident = _identity(os.path.join(dirpath, d))
                    if ident in seen:
                        report.loops.append(f"{rel_dir}/{d}/")
                    else:
                        seen.add(ident)
                        keep.append(d)
                dirnames[:] = keep
                for f in sorted(filenames):
                    rel = f"{rel_dir}/{f}"
                    if not f.lower().endswith(extensions):
                        report.ignored.append(rel)
                    elif _is_junk(f):
                        report.junk_images.append(rel)
                    else:
                        candidates.append(rel)
        elif name.startswith(".kit_"):  # the kit's own records (CHECK_FILE, prepare-celeba's)
            continue
        elif name.lower().endswith(extensions) and not _is_junk(name):
            report.stray.append(name)
        else:
            report.ignored.append(name)
    return candidates


def _check_one(args: tuple[str, str]) -> tuple[str, str, str]:
    rel, path = args
    status, why = check_image_file(path)
    return rel, status, why


def _load_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        if data.get("version") == CHECK_VERSION and isinstance(data.get("files"), dict):
            return data["files"]
    except (OSError, ValueError):
        pass  # missing or damaged cache: everything is checked again
    return {}


def _save_cache(path: Path, files: dict) -> bool:
    try:
        with atomic_write(path, "w") as f:
            f.write(json.dumps({"version": CHECK_VERSION, "files": files}, separators=(",", ":")))
        return True
    except OSError:
        # A read-only data folder (chmod, or a read-only mount such as Kaggle's inputs): the
        # check still works, it is just not remembered. atomic_write left no temporary file.
        return False


def _flat_folder_fix(root: Path, shown: str) -> str:
    """What to do about images lying directly in ``root``: pass the parent when ``root`` is
    itself the class folder, else move them one folder down with a command that works for any
    number of files (``mv DIR/*.*`` fails with "Argument list too long" on all of CelebA)."""
    parent = root.resolve().parent
    siblings = [d for d in parent.iterdir() if d.is_dir() and not _is_junk(d.name)]
    if siblings == [root.resolve()] or [d.name for d in siblings] == [root.resolve().name]:
        above = Path(shown).parent
        return (
            f"{shown} looks like the class folder itself: pass the folder above it instead, "
            f"data_dir='{above}' (ImageFolder then reads {above}/{root.resolve().name}/"
            f"<image>)."
        )
    cls = "faces" if root.resolve().name == "celeba" else "celeba"
    q = shlex.quote(shown)
    dest = shlex.quote(f"{shown}/{cls}")
    return (
        f"Fix: move them into {shown}/{cls}/, for example with (any number of files): "
        f"mkdir {dest} && find {q} -maxdepth 1 -type f -exec sh -c 'mv \"$@\" {dest}/' sh "
        f"{{}} +"
    )


def _check_layout(report: FolderReport, shown: str) -> None:
    """Raise DataFolderError for the layouts ImageFolder cannot use."""
    try:
        _check_layout_or_raise(report, shown)
    except DataFolderError as err:
        raise DataFolderError(printable(str(err))) from None


def _check_layout_or_raise(report: FolderReport, shown: str) -> None:
    root = report.root
    n_found = len(report.good) + len(report.converted) + len(report.bad)
    if n_found == 0 and report.stray:
        example = report.stray[0]
        raise DataFolderError(
            f"{shown} holds {_plural(len(report.stray), 'image')} (e.g. {example}) directly "
            f"inside it, but ImageFolder expects them one folder down, in a class subfolder: "
            f"{shown}/<class>/<image>. {_flat_folder_fix(root, shown)}"
        )
    if n_found == 0:
        if not any(root.iterdir()):
            raise DataFolderError(
                f"The data folder {shown} is empty. Put the images in {shown}/celeba/ "
                f"(ImageFolder's layout is {shown}/<class>/<image>), for example with "
                f"python -m helpers data prepare-celeba img_align_celeba.zip --out {shown}"
            )
        others = report.ignored + report.junk_images
        seen = (
            f" (found only: {', '.join(others[:3])}{' ...' if len(others) > 3 else ''})"
            if others
            else ""
        )
        raise DataFolderError(
            f"No images in {shown}{seen}. ImageFolder reads {', '.join(_image_extensions())} "
            f"files laid out as {shown}/<class>/<image>, e.g. {shown}/celeba/000001.jpg."
        )
    if report.n_images == 0:
        raise DataFolderError(
            f"None of the {_plural(len(report.bad), 'image')} in {shown} can be read: "
            f"{report.bad_summary()}. Replace them with working image files "
            f"(python -m helpers data check {shown} lists every problem)."
        )


_KEY = 4  # entries start with the change key: size, mtime, ctime, inode


def _change_key(path: str | os.PathLike) -> list[int]:
    """What tells a changed file from the one checked before: size, modification time, status
    change time and inode. A rewrite that keeps the size and puts the old modification time
    back still moves the status change time (no program can set it); a content change that
    keeps all four (a disk fault under the file system) is only found by ``recheck``."""
    try:
        st = os.stat(path)
    except OSError:  # a broken symlink: ImageFolder would list it and then fail to open it
        return [-1, -1, -1, -1]
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def check_image_folder(
    root: str | os.PathLike,
    workers: int | None = None,
    progress: bool = True,
    cache_file: str | os.PathLike | None = None,
    recheck: bool = False,
) -> FolderReport:
    """Check every image ImageFolder would load from ``root`` (layout ``root/<class>/<image>``).

    Each file with an ImageFolder extension is opened with PIL (``check_image_file``). Results
    are cached in ``root/.kit_check.json`` keyed on path, size, modification and status-change
    time and inode (``_change_key``), so a second call re-opens only new or changed files;
    ``recheck=True`` re-opens every file. ``workers`` processes share a first scan
    of many files (default: all cores). Raises ``DataFolderError`` (with the fix in the message)
    when the path is missing or a file, the folder is empty, the images lie directly in
    ``root``, or no image can be read. Serves the notebook step "Get the data".
    """
    root = Path(root)
    shown = str(root).rstrip("/\\") or str(root)
    if not root.exists():
        raise DataFolderNotFoundError(
            f"The data folder {shown} does not exist (looked in {root.absolute()}). Check the "
            f"path (relative paths start from {Path.cwd()}), or make it: "
            f"python -m helpers data prepare-celeba img_align_celeba.zip --out {shown}"
        )
    if not root.is_dir():
        hint = ""
        if root.suffix.lower() == ".zip":
            hint = (
                f" If it is Udacity's processed_celeba_small.zip, unzip it first "
                f"(python -m zipfile -e {shown} .); if it is the official img_align_celeba.zip, "
                f"run python -m helpers data prepare-celeba {shown}."
            )
        raise DataFolderError(
            f"{shown} is a file, not a folder. ImageFolder needs a folder laid "
            f"out as <folder>/<class>/<image>.{hint}"
        )

    report = FolderReport(root=root)
    candidates = _scan(root, _image_extensions(), report)

    cache_path = Path(cache_file) if cache_file is not None else root / CHECK_FILE
    cached = {} if recheck else _load_cache(cache_path)
    fresh: dict[str, list] = {}
    todo: list[tuple[str, str]] = []
    for rel in candidates:
        key = _change_key(root / rel)
        hit = cached.get(rel)
        if hit is not None and hit[:_KEY] == key:
            fresh[rel] = hit
        else:
            fresh[rel] = key + ["?", ""]
            todo.append((rel, str(root / rel)))

    if todo:
        from tqdm.auto import tqdm

        n_workers = workers or os.cpu_count() or 1
        bar = {
            "total": len(todo),
            "desc": f"Checking {shown}",
            "unit": "img",
            "disable": not progress or len(todo) < POOL_MIN_FILES,
        }
        if n_workers > 1 and len(todo) >= POOL_MIN_FILES:
            import multiprocessing

            with multiprocessing.Pool(n_workers) as pool:
                results = list(tqdm(pool.imap_unordered(_check_one, todo, chunksize=64), **bar))
        else:
            results = list(tqdm(map(_check_one, todo), **bar))
        for rel, status, why in results:
            fresh[rel][_KEY:] = [status, why]
        report.checked = len(todo)

    if fresh != cached:
        report.cache_file = cache_path if _save_cache(cache_path, fresh) else None
    else:
        report.cache_file = cache_path

    report.entries = fresh
    for rel in candidates:
        status, why = fresh[rel][_KEY], fresh[rel][_KEY + 1]
        if status == "bad":
            report.bad[rel] = why
            continue
        if status == "convert":
            report.converted[rel] = why
        else:
            report.good.append(rel)
        report.classes[rel.split("/", 1)[0]] += 1
    report.empty_classes = [c for c, n in report.classes.items() if n == 0]
    report.classes = {c: n for c, n in report.classes.items() if n}
    _check_layout(report, shown)
    return report


def _view_dir_for(root: Path, clean_dir: Path) -> Path:
    # One view per source folder: the name for a reader, the hash so two folders with the same
    # name (say, two copies of processed_celeba_small) never share a view.
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]
    return clean_dir / f"{root.resolve().name}-{digest}"


def _count_images(root: Path) -> int:
    ext = _image_extensions()
    return sum(
        1
        for d in root.iterdir()
        if d.is_dir() and not _is_junk(d.name)
        for _, _, files in os.walk(d, followlinks=True)
        for f in files
        if f.lower().endswith(ext) and not _is_junk(f)
    )


def _holds_images(root: Path) -> bool:
    ext = _image_extensions()
    seen = set()
    for dirpath, dirnames, files in os.walk(root, followlinks=True):
        seen.add(_identity(dirpath))  # each folder once, even through a symlink loop
        dirnames[:] = [
            d
            for d in dirnames
            if not _is_junk(d) and _identity(os.path.join(dirpath, d)) not in seen
        ]
        if any(f.lower().endswith(ext) and not _is_junk(f) for f in files):
            return True
    return False


def find_data_dir(
    data_dir: str | os.PathLike = DEFAULT_DATA_DIR,
    builtin_dir: str | os.PathLike = BUILTIN_DIR,
    n_builtin: int = N_BUILTIN,
    verbose: bool = True,
    clean_dir: str | os.PathLike | None = None,
) -> Path:
    """Return the folder to give ``ImageFolder`` (notebook step "Get the data").

    * ``data_dir`` exists and holds images -> that folder after ``check_image_folder``; when
      some files are unreadable (or the folder holds junk ImageFolder would choke on), a clean
      view of the usable ones under ``clean_dir`` (default ``<builtin_dir>/../.clean``).
    * ``data_dir`` is the default and missing or without images -> the built-in generated
      faces, made once into ``builtin_dir`` (``n_builtin`` 64x64 PNGs) and reused after.
    * ``data_dir`` was given explicitly and does not exist -> ``FileNotFoundError``; other
      unusable folders -> ``DataFolderError``. Neither falls back silently.

    Prints one line saying which images are used and how many. Relative paths are taken from
    the current working directory (the notebook's folder).
    """
    data_path = Path(data_dir)
    shown = str(data_dir)
    is_default = data_path == Path(DEFAULT_DATA_DIR)
    say = (lambda text: print(printable(text))) if verbose else (lambda text: None)

    if not is_default or (data_path.exists() and _holds_images(data_path)):
        report = check_image_folder(data_path, progress=verbose)
        what = "real CelebA" if is_default or "celeba" in report.classes else "the images"
        if not report.needs_clean_view:
            say(f"Using {what} from {shown} ({_plural(report.n_images, 'image')})")
            return data_path
        clean_root = (
            Path(clean_dir) if clean_dir is not None else Path(builtin_dir).parent / ".clean"
        )
        view = make_clean_view(report, _view_dir_for(data_path, clean_root))
        say(
            f"Using {what} from {shown} ({_plural(report.n_images, 'image')}, "
            f"read through the clean view {view})"
        )
        if report.bad:
            say(
                f"Skipped {_plural(len(report.bad), 'unreadable file')} (listed in "
                f"{view / SKIPPED_FILE}): {report.bad_summary()}"
            )
        if report.converted:
            say(
                f"Using 8-bit copies of {_plural(len(report.converted), 'high-bit-depth image')} "
                "(the default loader would clip them to white)"
            )
        left_out = report.empty_classes + report.junk_dirs
        if left_out:
            say(f"Left out folders without usable images: {', '.join(left_out[:5])}")
        if report.loops:
            say(_loops_note(report.loops).capitalize())
        return view

    from helpers.faces import make_faces  # late: the built-in set is needed only as a fallback

    made = Path(make_faces(builtin_dir, n=n_builtin, progress=verbose))
    n = _count_images(made)
    say(
        f"No images in {shown}: using the built-in generated faces in {builtin_dir} "
        f"({_plural(n, 'image')}). To train on real faces, see 'Real CelebA' in README.md or "
        "docs/data.md."
    )
    return Path(builtin_dir)


def output_dir_for(data_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """The notebook's output folder for the data it trains on (its "Get the data" step).

    ``out_dir`` itself for the built-in faces, or when ``DCGAN_OUT`` chose it; for any other
    data a subfolder named after the data folder (``outputs/processed_celeba_small/``), made if
    needed: a run on CelebA never meets the built-in faces' checkpoint, nor overwrites their
    pictures.
    """
    from helpers.faces import is_builtin_set

    out = Path(out_dir)
    if os.environ.get("DCGAN_OUT") or is_builtin_set(data_dir):
        return out
    out = out / Path(data_dir).resolve().name
    out.mkdir(parents=True, exist_ok=True)
    return out


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (the problem and where to read more),
    with exit status 2 as argparse's own."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _image_size(text: str) -> int:
    """argparse ``type=`` for --size: a whole number of pixels, at least 8."""
    value = positive_int(text)
    if value < 8:
        raise argparse.ArgumentTypeError(
            f"must be at least 8 pixels (64 is the DCGAN size), not {value}"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m helpers data",
        description="Prepare and check the training images for the DCGAN notebook. "
        "ImageFolder reads <folder>/<class>/<image> "
        "(e.g. processed_celeba_small/celeba/000001.jpg).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prep = sub.add_parser(
        "prepare-celeba",
        help="turn the official CelebA download into the training folder",
        description="Crop the face out of each aligned 178x218 CelebA photo, resize it and save it "
        "as OUT/celeba/NNNNNN.jpg. Safe to rerun: finished images are skipped, so an "
        "interrupted run is completed by running it again.",
    )
    prep.add_argument(
        "source",
        metavar="SOURCE",
        help="img_align_celeba.zip as downloaded (read directly, not extracted), or "
        "the folder it was extracted to (holding the JPEGs or img_align_celeba/)",
    )
    prep.add_argument(
        "--out",
        default=None,
        help="folder to write; images go to OUT/celeba/ (default: the kit's own "
        f"{DEFAULT_DATA_DIR.rstrip('/')}/, where the notebook looks, from any working directory)",
    )
    prep.add_argument(
        "--size",
        type=_image_size,
        default=64,
        help="side of the square output images in pixels (default: %(default)s, the DCGAN size)",
    )
    prep.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="only the first N images in file-name order, for a quick try (default: all 202,599)",
    )
    prep.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="processes working in parallel (default: one per CPU core)",
    )

    chk = sub.add_parser(
        "check",
        help="list what ImageFolder will find in a folder, and every unreadable file",
        description="Open every image under FOLDER/<class>/ with PIL and report usable, "
        "unreadable and ignored files. Results are cached in FOLDER/.kit_check.json, "
        "so a rerun only opens new or changed files.",
    )
    chk.add_argument("folder", metavar="FOLDER", help="the folder you would give ImageFolder")
    chk.add_argument(
        "--recheck",
        action="store_true",
        help="re-open every file, not only new or changed ones (changes are found by size, "
        "modification and status-change time and inode; this also finds a file whose bytes "
        "changed under all four), and drop the fast loader's image caches of FOLDER so the "
        "next training run decodes every image again",
    )
    chk.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="processes for the first check of many files (default: one per CPU core)",
    )
    return p


def _where_to_train(out: str | None) -> str:
    """What the learner does next with prepare-celeba's folder: true from any working directory
    (the notebook works from the kit's folder, helpers.KIT_DIR)."""
    from helpers import KIT_DIR

    made = (KIT_DIR / DEFAULT_DATA_DIR if out is None else Path(out)).resolve()
    if made == (KIT_DIR / DEFAULT_DATA_DIR).resolve():
        return "The notebook finds it there (its default data_dir)."
    return f"Train on it with data_dir='{made}' in the notebook's \"Get the data\" cell."


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m helpers data``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "prepare-celeba":
            from helpers.celeba import prepare_celeba

            summary = prepare_celeba(
                args.source,
                out=args.out,
                size=args.size,
                limit=args.limit,
                workers=args.workers,
                progress=True,
            )
            if summary["written"] + summary["skipped"] > 0:
                print(_where_to_train(args.out))
            return 1 if summary["failed"] and not summary["written"] + summary["skipped"] else 0
        if args.command == "check":
            report = check_image_folder(args.folder, workers=args.workers, recheck=args.recheck)
            print(report.summary())
            if args.recheck:
                from helpers import KIT_DIR
                from helpers.fastdata import forget_caches

                dropped = forget_caches(args.folder)
                view = _view_dir_for(
                    Path(args.folder), KIT_DIR / Path(BUILTIN_DIR).parent / ".clean"
                )
                if view.is_dir():  # the notebook reads this folder through its clean view
                    dropped += forget_caches(view)
                print(
                    f"  dropped {_plural(dropped, 'image cache')} of the fast loader: the next "
                    "training run decodes every image again"
                )
            return 0
    except NoSpaceError as exc:
        print(printable(f"error: {exc}"), file=sys.stderr)
        return 1
    except (DataFolderError, FileNotFoundError, NotWritableError) as exc:
        print(printable(f"error: {exc}"), file=sys.stderr)
        return 2
    return 0
