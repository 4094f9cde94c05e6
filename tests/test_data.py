"""Specification of helpers.data: which folder the notebook trains on, and what happens to odd,
broken and misplaced image files on the way into ImageFolder."""

import contextlib
import functools
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import cleanview, data
from helpers.data import DataFolderError, check_image_folder, find_data_dir, main
from helpers.notebook import load_solution
from tests import imagefiles


@functools.cache
def get_dataloader():
    """The notebook's own get_dataloader (the solution), read once."""
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution()["get_dataloader"]


def load_all(folder):
    """Every image the notebook's get_dataloader reads from ``folder``, at 32x32, in order."""
    ds = get_dataloader()(1, 32, str(folder)).dataset
    return [ds[i][0] for i in range(len(ds))], ds


def assert_images_ok(tensors):
    assert tensors, "expected at least one image"
    for t in tensors:
        assert t.shape == (3, 32, 32), f"expected a (3, 32, 32) tensor, got {tuple(t.shape)}"
        assert t.dtype == torch.float32
        assert t.min() >= 0.0 and t.max() <= 1.0, "ToTensor output must lie in [0, 1]"


@pytest.fixture
def find(tmp_path):
    """find_data_dir with the kit's caches inside tmp_path and no printing."""

    def _find(folder, **kw):
        kw.setdefault("builtin_dir", tmp_path / "kit" / "generated_faces")
        kw.setdefault("verbose", False)
        return find_data_dir(folder, **kw)

    return _find


@pytest.fixture
def root(tmp_path):
    """A data folder with one good image in the class folder 'celeba'."""
    r = tmp_path / "mydata"
    imagefiles.rgb_image(r / "celeba" / "000001.jpg", seed=1)
    return r


def snapshot(path):
    st = os.stat(path)
    return Path(path).read_bytes(), st.st_mtime_ns


# --- odd but readable images: used as they are -------------------------------------------------

READABLE = {
    "grayscale_L": lambda p: imagefiles.grayscale_png(p.with_suffix(".png")),
    "palette_P": lambda p: imagefiles.palette_png(p.with_suffix(".png")),
    "rgba": lambda p: imagefiles.rgba_png(p.with_suffix(".png")),
    "la": lambda p: imagefiles.la_png(p.with_suffix(".png")),
    "cmyk_jpeg": lambda p: imagefiles.cmyk_jpeg(p.with_suffix(".jpg")),
    "tiny_8x8": lambda p: imagefiles.rgb_image(p.with_suffix(".png"), size=(8, 8)),
    "huge_4000x4000": lambda p: imagefiles.flat_jpeg(p.with_suffix(".jpg")),
    "wide_non_square": lambda p: imagefiles.rgb_image(p.with_suffix(".jpg"), size=(90, 30)),
    "tall_non_square": lambda p: imagefiles.rgb_image(p.with_suffix(".png"), size=(25, 70)),
}


@pytest.mark.parametrize("kind", READABLE)
def test_odd_but_readable_image_is_used_as_is(kind, root, find):
    odd = READABLE[kind](root / "celeba" / "odd")
    chosen = find(root)
    assert chosen == root, "a folder without problems is given to ImageFolder unchanged"
    tensors, ds = load_all(chosen)
    assert len(ds) == 2 and str(odd) in [p for p, _ in ds.samples]
    assert_images_ok(tensors)


def test_sixteen_bit_image_is_read_through_an_8bit_copy_not_clipped_to_white(root, find):
    src = imagefiles.sixteen_bit_png(root / "celeba" / "deep.png")
    before = snapshot(src)
    chosen = find(root)
    assert chosen != root
    tensors, ds = load_all(chosen)
    deep = [t for t, (p, _) in zip(tensors, ds.samples) if p.endswith("deep.png")]
    assert len(deep) == 1
    assert_images_ok(deep)
    # The source is a 0..65535 ramp: its 8-bit copy averages mid-grey. convert('RGB') on the
    # original would clip almost every pixel to 255.
    assert 0.35 < deep[0].mean() < 0.65
    assert snapshot(src) == before


# --- broken files: skipped, reported, never touched ----------------------------------------------

BROKEN = {
    "zero_bytes": (lambda p: imagefiles.zero_bytes(p.with_suffix(".jpg")), "empty file"),
    "truncated_jpeg": (
        lambda p: imagefiles.truncated_jpeg(p.with_suffix(".jpg")),
        "truncated JPEG",
    ),
    "truncated_png": (lambda p: imagefiles.truncated_png(p.with_suffix(".png")), "PNG"),
    "text_named_jpg": (lambda p: imagefiles.text_as_jpg(p.with_suffix(".jpg")), "not an image"),
}


@pytest.mark.parametrize("kind", BROKEN)
def test_unreadable_file_is_skipped_reported_and_left_untouched(kind, root, find, capsys):
    make, reason = BROKEN[kind]
    bad = make(root / "celeba" / "broken")
    before = snapshot(bad)
    chosen = find(root, verbose=True)
    out = capsys.readouterr().out
    assert "Skipped 1 unreadable file" in out and bad.name in out and reason in out
    assert chosen != root and not chosen.is_relative_to(root), (
        "the clean view lives outside the data folder, so ImageFolder never sees it as a class"
    )
    tensors, ds = load_all(chosen)
    assert [Path(p).name for p, _ in ds.samples] == ["000001.jpg"]
    assert_images_ok(tensors)
    assert snapshot(bad) == before, "the original file must not be changed"
    listed = (chosen / cleanview.SKIPPED_FILE).read_text()
    assert f"celeba/{bad.name}" in listed and reason in listed


def test_image_past_pils_decompression_bomb_limit_is_skipped(root, monkeypatch):
    # PIL refuses images over 2 * MAX_IMAGE_PIXELS before decoding them, and so would the
    # loader during training. A small limit stands in for a truly enormous file.
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 40)
    imagefiles.flat_jpeg(root / "celeba" / "enormous.jpg", size=(200, 200))
    report = check_image_folder(root, progress=False)
    assert report.bad == {
        "celeba/enormous.jpg": "too large: PIL refuses it as a possible decompression bomb"
    }
    assert report.good == ["celeba/000001.jpg"]


def test_broken_symlink_is_skipped(root, find):
    (root / "celeba" / "gone.jpg").symlink_to(root / "nowhere.jpg")
    report = check_image_folder(root, progress=False)
    assert report.bad == {"celeba/gone.jpg": "missing (a broken link?)"}
    assert len(load_all(find(root))[1]) == 1


def test_report_names_each_unreadable_file_with_its_reason(root):
    imagefiles.zero_bytes(root / "celeba" / "a.jpg")
    imagefiles.truncated_jpeg(root / "celeba" / "b.jpg")
    report = check_image_folder(root, progress=False)
    assert report.bad == {"celeba/a.jpg": "empty file", "celeba/b.jpg": "truncated JPEG"}
    assert report.good == ["celeba/000001.jpg"]
    assert "celeba/a.jpg (empty file), celeba/b.jpg (truncated JPEG)" in report.bad_summary()


def test_clean_view_is_rebuilt_when_a_file_breaks_later(root, find):
    imagefiles.rgb_image(root / "celeba" / "000002.jpg", seed=2)
    assert find(root) == root
    imagefiles.truncated_jpeg(root / "celeba" / "000002.jpg")
    view = find(root)
    assert [Path(p).name for p, _ in load_all(view)[1].samples] == ["000001.jpg"]
    imagefiles.rgb_image(root / "celeba" / "000003.jpg", seed=3)
    assert [Path(p).name for p, _ in load_all(find(root))[1].samples] == [
        "000001.jpg",
        "000003.jpg",
    ]


def test_clean_view_falls_back_to_copies_where_links_are_not_allowed(root, find, monkeypatch):
    imagefiles.zero_bytes(root / "celeba" / "bad.jpg")

    def refuse(*args, **kwargs):
        raise OSError("links are not allowed here")

    monkeypatch.setattr(os, "symlink", refuse)
    monkeypatch.setattr(os, "link", refuse)
    view = find(root)
    copy = view / "celeba" / "000001.jpg"
    assert copy.is_file() and not copy.is_symlink()
    assert copy.read_bytes() == (root / "celeba" / "000001.jpg").read_bytes()


# --- files ImageFolder does not read ----------------------------------------------------------


def test_non_image_files_are_ignored_not_counted_as_bad(root, find):
    (root / "celeba" / "notes.txt").write_text("hello")
    (root / "celeba" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "README.txt").write_text("my faces")
    report = check_image_folder(root, progress=False)
    assert report.bad == {}
    assert sorted(report.ignored) == ["README.txt", "celeba/.DS_Store", "celeba/notes.txt"]
    assert find(root) == root


def test_hidden_image_files_and_folders_are_left_out(root, find):
    # macOS leaves ._name.jpg resource forks; Jupyter leaves .ipynb_checkpoints/. ImageFolder
    # would load the first (and fail) and treat the second as an empty class (and stop).
    (root / "celeba" / "._000001.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / ".ipynb_checkpoints").mkdir()
    chosen = find(root)
    tensors, ds = load_all(chosen)
    assert ds.classes == ["celeba"] and len(ds) == 1
    assert_images_ok(tensors)


# --- folders ImageFolder cannot use: plain errors ------------------------------------------------


def test_missing_folder_given_explicitly_is_an_error_not_a_fallback(tmp_path, find):
    with pytest.raises(FileNotFoundError) as err:
        find(tmp_path / "no_such_folder")
    msg = str(err.value)
    assert "no_such_folder does not exist" in msg and "prepare-celeba" in msg


def test_empty_folder_is_an_error_that_shows_the_layout(tmp_path, find):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFolderError, match="is empty") as err:
        find(tmp_path / "empty")
    assert "<class>/<image>" in str(err.value) and "celeba/" in str(err.value)


def test_images_without_a_class_subfolder_are_an_error_that_says_where_to_move_them(tmp_path, find):
    flat = tmp_path / "flat"
    (tmp_path / "other").mkdir()  # the parent holds other folders too: moving is the fix
    for i in range(3):
        imagefiles.rgb_image(flat / f"{i:06d}.jpg", seed=i)
    with pytest.raises(DataFolderError) as err:
        find(flat)
    msg = str(err.value)
    assert "directly" in msg and "class subfolder" in msg
    # No shell glob: `mv DIR/*.* DIR/celeba/` fails with "Argument list too long" on CelebA.
    assert msg.endswith(
        f"Fix: move them into {flat}/celeba/, for example with (any number of "
        f"files): mkdir {flat}/celeba && find {flat} -maxdepth 1 -type f -exec "
        f"sh -c 'mv \"$@\" {flat}/celeba/' sh {{}} +"
    )


def test_the_suggested_move_command_works_and_keeps_every_image(tmp_path, find):
    flat = tmp_path / "flat"
    (tmp_path / "other").mkdir()
    for i in range(3):
        imagefiles.rgb_image(flat / f"{i:06d}.jpg", seed=i)
    with pytest.raises(DataFolderError) as err:
        find(flat)
    command = str(err.value).split("(any number of files): ")[1]
    subprocess.run(command, shell=True, check=True, timeout=60)
    assert sorted(p.name for p in (flat / "celeba").iterdir()) == [f"{i:06d}.jpg" for i in range(3)]
    assert find(flat) == flat


def test_pointing_at_the_class_folder_itself_suggests_its_parent(tmp_path, find):
    cls = tmp_path / "processed_celeba_small" / "celeba"
    for i in range(3):
        imagefiles.rgb_image(cls / f"{i:06d}.jpg", seed=i)
    with pytest.raises(DataFolderError) as err:
        find(cls)
    msg = str(err.value)
    assert "celeba/celeba" not in msg
    assert msg.endswith(
        f"{cls} looks like the class folder itself: pass the folder above it "
        f"instead, data_dir='{cls.parent}' (ImageFolder then reads "
        f"{cls.parent}/celeba/<image>)."
    )


def test_file_instead_of_folder_is_an_error(tmp_path, find):
    zipped = tmp_path / "processed_celeba_small.zip"
    zipped.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    with pytest.raises(DataFolderError, match="is a file, not a folder") as err:
        find(zipped)
    assert "unzip" in str(err.value)


def test_folder_with_only_unreadable_images_is_an_error(tmp_path, find):
    bad = tmp_path / "bad"
    imagefiles.zero_bytes(bad / "celeba" / "a.jpg")
    imagefiles.text_as_jpg(bad / "celeba" / "b.jpg")
    with pytest.raises(DataFolderError, match="None of the 2 images") as err:
        find(bad)
    assert "a.jpg (empty file)" in str(err.value)


def test_folder_without_any_image_file_is_an_error(tmp_path, find):
    (tmp_path / "docs" / "celeba").mkdir(parents=True)
    (tmp_path / "docs" / "celeba" / "list.txt").write_text("000001.jpg")
    with pytest.raises(DataFolderError, match="No images in"):
        find(tmp_path / "docs")


# --- the default folder: real CelebA or the built-in faces ---------------------------------------


def test_default_folder_with_images_is_used_and_named_real_celeba(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # relative paths start from the notebook's folder
    for i in range(1, 4):
        imagefiles.rgb_image(
            tmp_path / "processed_celeba_small" / "celeba" / f"{i:06d}.jpg", seed=i
        )
    chosen = find_data_dir()
    assert chosen == Path("processed_celeba_small/")
    assert (
        capsys.readouterr().out.strip()
        == "Using real CelebA from processed_celeba_small/ (3 images)"
    )


def test_missing_default_folder_falls_back_to_the_builtin_faces(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "processed_celeba_small").mkdir()  # present but empty counts as missing
    chosen = find_data_dir(builtin_dir="data/generated_faces", n_builtin=6)
    out = capsys.readouterr().out
    assert chosen == Path("data/generated_faces")
    assert (
        "No images in processed_celeba_small/: using the built-in generated faces in "
        "data/generated_faces (6 images). To train on real faces, see 'Real CelebA' in README.md "
        "or docs/data.md."
    ) in out
    # The notebook's get_dataloader reads a relative folder from the kit's folder, not the cwd
    tensors, ds = load_all(tmp_path / chosen)
    assert len(ds) == 6
    assert_images_ok(tensors)


# --- the check cache ----------------------------------------------------------------------------


def test_second_check_of_an_unchanged_folder_opens_nothing(root):
    imagefiles.rgb_image(root / "celeba" / "000002.png", seed=2)
    first = check_image_folder(root, progress=False)
    again = check_image_folder(root, progress=False)
    assert first.checked == 2 and again.checked == 0
    assert again.good == first.good
    assert (root / data.CHECK_FILE).is_file()


def test_modified_or_new_file_is_checked_again(root):
    check_image_folder(root, progress=False)
    target = root / "celeba" / "000001.jpg"
    imagefiles.truncated_jpeg(target)
    os.utime(target, ns=(1, 1))  # a different mtime even on coarse-clock file systems
    imagefiles.rgb_image(root / "celeba" / "000009.jpg", seed=9)
    report = check_image_folder(root, progress=False)
    assert report.checked == 2
    assert report.bad == {"celeba/000001.jpg": "truncated JPEG"}


def test_first_check_of_many_files_shares_the_work_between_processes(tmp_path):
    many = tmp_path / "many"
    for i in range(data.POOL_MIN_FILES):
        imagefiles.rgb_image(many / "c" / f"{i:06d}.png", size=(8, 8), seed=i)
    imagefiles.zero_bytes(many / "c" / "empty.png")
    report = check_image_folder(many, workers=2, progress=False)
    assert report.checked == data.POOL_MIN_FILES + 1
    assert len(report.good) == data.POOL_MIN_FILES and list(report.bad) == ["c/empty.png"]


# --- command line ---------------------------------------------------------------------------------


def test_check_command_prints_the_report(root, capsys):
    imagefiles.truncated_jpeg(root / "celeba" / "cut.jpg")
    assert main(["check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "1 usable image" in out and "celeba/cut.jpg: truncated JPEG" in out


def test_check_command_on_a_missing_folder_explains_and_exits_nonzero(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command, flags",
    [
        ("prepare-celeba", ["SOURCE", "--out", "--size", "--limit", "--workers"]),
        ("check", ["FOLDER", "--workers"]),
    ],
)
def test_help_explains_every_flag(command, flags, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    for flag in flags:
        assert flag in out


def test_module_runs_as_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "helpers", "data", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=60,
    )
    assert done.returncode == 0
    for command in ("prepare-celeba", "check"):
        assert command in done.stdout


# --- faults and bad input (issue 11) ------------------------------------------------------------


@pytest.fixture
def read_only_mount(monkeypatch):
    """Make `folder` behave like a read-only mount (Kaggle inputs, Docker :ro, read-only NFS):
    creating, renaming or deleting anything inside it fails with EROFS, even for files that do
    not exist, and os.access still says yes (root ignores permission bits)."""
    import errno
    import tempfile

    def mount(folder):
        folder = str(folder)

        def inside(path):
            return os.path.abspath(os.fspath(path)).startswith(folder)

        def refuse(path):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))

        real_mkstemp, real_unlink = tempfile.mkstemp, Path.unlink
        real_open, real_replace = os.open, os.replace

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and inside(dir):
                refuse(dir)
            return real_mkstemp(*args, dir=dir, **kwargs)

        def unlink(self, missing_ok=False):
            if inside(self):
                refuse(self)
            return real_unlink(self, missing_ok=missing_ok)

        def open_(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
                refuse(path)
            return real_open(path, flags, *args, **kwargs)

        def replace(src, dst, *args, **kwargs):
            if inside(dst):
                refuse(dst)
            return real_replace(src, dst, *args, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(Path, "unlink", unlink)
        monkeypatch.setattr(os, "open", open_)
        monkeypatch.setattr(os, "replace", replace)

    return mount


def test_read_only_mount_is_checked_and_used_without_a_cache(root, find, capsys, read_only_mount):
    imagefiles.truncated_jpeg(root / "celeba" / "cut.jpg")
    before = {p.name: snapshot(p) for p in (root / "celeba").iterdir()}
    read_only_mount(root)
    chosen = find(root, verbose=True)  # unreadable file: a clean view outside the mount
    out = capsys.readouterr().out
    assert chosen != root and "Using real CelebA from" in out and "cut.jpg (truncated JPEG)" in out
    assert main(["check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "checked 2 files this time\n" in out and "results cached" not in out
    assert {p.name: snapshot(p) for p in (root / "celeba").iterdir()} == before
    assert sorted(p.name for p in root.iterdir()) == ["celeba"], "something was written there"


def test_non_utf8_file_names_are_checked_and_printed_on_a_strict_utf8_terminal(root, find):
    latin1 = os.fsdecode(b"Zo\xeb.png")  # as a zip made on Windows extracts on Linux
    imagefiles.truncated_png(root / "celeba" / latin1)
    imagefiles.rgb_image(root / "celeba" / os.fsdecode(b"Ren\xe9.png"), seed=3)
    command = "import sys; from helpers.data import main; sys.exit(main(['check', sys.argv[1]]))"
    env = {
        **os.environ,
        "PYTHONIOENCODING": "utf-8:strict",
        "PYTHONPATH": str(data.Path(data.__file__).resolve().parents[1]),
    }
    done = subprocess.run(
        [sys.executable, "-c", command, str(root)], capture_output=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    out = done.stdout.decode("utf-8")  # strict: valid UTF-8
    assert "2 usable images" in out and "celeba/Zo\\xeb.png: truncated PNG" in out
    view = find(root)
    skipped = (view / cleanview.SKIPPED_FILE).read_text(encoding="utf-8")
    assert "celeba/Zo\\xeb.png\ttruncated PNG" in skipped
    assert len(load_all(view)[1]) == 2


def test_symlink_loop_is_followed_once(tmp_path, find, capsys):
    root = tmp_path / "data"
    for i in range(20):
        imagefiles.rgb_image(root / "celeba" / f"{i:06d}.png", size=(8, 8), seed=i)
    os.symlink("..", root / "celeba" / "loop")
    report = check_image_folder(root, progress=False)
    assert report.n_images == 20 and report.loops == ["celeba/loop/"]
    chosen = find(root, verbose=True)
    out = capsys.readouterr().out
    assert len(load_all(chosen)[1]) == 20
    assert (
        "Followed each folder once: celeba/loop/ leads back to a folder already read "
        "(a symlink loop or a second link to it), so its images are not counted again"
    ) in out


def test_float_image_in_0_1_trains_as_its_picture_not_black(root, find):
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 1, 40 * 40, dtype=np.float32).reshape(40, 40)
    Image.fromarray(ramp, mode="F").save(root / "celeba" / "float.tif")
    report = check_image_folder(root, progress=False)
    assert report.converted == {
        "celeba/float.tif": "F (floating-point) image: an 8-bit copy scaled from its range is used"
    }
    tensors, ds = load_all(find(root))
    (image,) = [t for t, (p, _) in zip(tensors, ds.samples) if p.endswith("float.tif")]
    assert 0.4 < image.mean() < 0.6, "a [0, 1] float image must not train as black"


def test_check_with_zero_workers_is_one_line_and_exit_2(root, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["check", str(root), "--workers", "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "python -m helpers data check: error: argument --workers: "
        "must be at least 1, not 0 (see python -m helpers data "
        "check --help)\n"
    )
