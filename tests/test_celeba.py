"""Specification of helpers.celeba.prepare_celeba: the official aligned CelebA zip (or its
extracted folder) becomes processed_celeba_small/celeba/NNNNNN.jpg, face-cropped, resized,
resumable, with unreadable members reported instead of crashing the run."""

import contextlib
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from helpers.celeba import crop_box, format_summary, prepare_celeba
from helpers.data import DataFolderError, find_data_dir, main
from helpers.notebook import load_solution
from tests import imagefiles
from tests.tiny_training import train_one_epoch

N_GOOD = 12
GOOD = [f"{i:06d}.jpg" for i in range(1, N_GOOD + 1)]


@pytest.fixture(scope="module")
def celeba_zip(tmp_path_factory):
    """img_align_celeba.zip in miniature: 12 good 178x218 photos, 000013.jpg cut in half."""
    return imagefiles.fake_celeba_zip(
        tmp_path_factory.mktemp("download") / "img_align_celeba.zip", n=N_GOOD, truncated=(13,)
    )


def close(pixel, colour, tol=40):
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, colour))


def test_zip_becomes_square_rgb_jpegs_named_as_the_originals(celeba_zip, tmp_path):
    out = tmp_path / "processed"
    summary = prepare_celeba(celeba_zip, out=out, size=32, progress=False)
    assert summary["written"] == N_GOOD and summary["skipped"] == 0
    names = sorted(p.name for p in (out / "celeba").iterdir())
    assert names == GOOD
    for name in names:
        with Image.open(out / "celeba" / name) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (32, 32))


def test_crop_is_the_centred_108_square_of_the_aligned_photo(celeba_zip, tmp_path):
    assert crop_box(178, 218) == imagefiles.CELEBA_CROP
    out = tmp_path / "processed"
    prepare_celeba(celeba_zip, out=out, size=32, limit=3, progress=False)
    a = np.asarray(Image.open(out / "celeba" / "000003.jpg"))
    # The corners of the output are the crop's four quadrant colours: nothing from outside the
    # square (black) came in, and nothing of the square was cut off.
    q = imagefiles.QUADRANTS
    assert close(a[1, 1], q["top_left"]) and close(a[1, -2], q["top_right"])
    assert close(a[-2, 1], q["bottom_left"]) and close(a[-2, -2], q["bottom_right"])
    # The face blob sits in the middle, and its skin tone is that of photo number 3.
    assert close(a[16, 16], imagefiles.celeba_skin(3), tol=12)


def test_truncated_member_is_counted_as_failed_with_its_name(celeba_zip, tmp_path, capsys):
    summary = prepare_celeba(celeba_zip, out=tmp_path / "p", size=16)
    assert summary["failed"] == 1
    assert summary["failed_files"] == [("000013.jpg", "truncated JPEG")]
    assert not (tmp_path / "p" / "celeba" / "000013.jpg").exists()
    assert "failed 1: 000013.jpg (truncated JPEG)" in capsys.readouterr().out


def test_member_failing_the_zip_checksum_is_counted_as_failed(tmp_path):
    src = imagefiles.fake_celeba_zip(
        tmp_path / "img_align_celeba.zip", n=3, truncated=(), not_image=(4,)
    )
    imagefiles.corrupt_member_crc(src, "img_align_celeba/000002.jpg")
    summary = prepare_celeba(src, out=tmp_path / "p", size=16, progress=False)
    assert summary["written"] == 2
    reasons = dict(summary["failed_files"])
    assert set(reasons) == {"000002.jpg", "000004.jpg"}
    assert "damaged in the zip" in reasons["000002.jpg"]
    assert reasons["000004.jpg"] == "not an image (PIL cannot read it)"


def test_extracted_folder_gives_the_same_images_as_the_zip(celeba_zip, tmp_path):
    extracted = imagefiles.extract_zip(celeba_zip, tmp_path / "extracted")
    from_zip = prepare_celeba(celeba_zip, out=tmp_path / "a", size=16, progress=False)
    # Both the folder holding img_align_celeba/ and img_align_celeba/ itself are accepted.
    for src in (extracted, extracted / "img_align_celeba"):
        out = tmp_path / "b" / src.name
        assert prepare_celeba(src, out=out, size=16, progress=False) == from_zip
        for name in GOOD:
            assert (out / "celeba" / name).read_bytes() == (
                tmp_path / "a" / "celeba" / name
            ).read_bytes()


def test_limit_takes_the_first_images_in_name_order(celeba_zip, tmp_path):
    out = tmp_path / "p"
    summary = prepare_celeba(celeba_zip, out=out, size=16, limit=5, progress=False)
    assert summary["written"] == 5
    assert sorted(p.name for p in (out / "celeba").iterdir()) == GOOD[:5]


def test_rerun_skips_finished_images_and_redoes_only_missing_ones(celeba_zip, tmp_path):
    out = tmp_path / "p"
    prepare_celeba(celeba_zip, out=out, size=16, progress=False)
    again = prepare_celeba(celeba_zip, out=out, size=16, progress=False)
    assert again["written"] == 0 and again["skipped"] == N_GOOD
    (out / "celeba" / "000004.jpg").unlink()
    (out / "celeba" / "000009.jpg").unlink()
    # An interrupted run leaves at most hidden temporary files, which a rerun clears away.
    (out / "celeba" / ".000010.jpg.999.tmp").write_bytes(b"half")
    third = prepare_celeba(celeba_zip, out=out, size=16, progress=False)
    assert third["written"] == 2 and third["skipped"] == N_GOOD - 2
    assert sorted(p.name for p in (out / "celeba").iterdir()) == GOOD


def test_worker_processes_give_the_same_result(celeba_zip, tmp_path):
    one = prepare_celeba(celeba_zip, out=tmp_path / "one", size=16, workers=1, progress=False)
    two = prepare_celeba(celeba_zip, out=tmp_path / "two", size=16, workers=2, progress=False)
    assert one == two
    for name in GOOD:
        assert (tmp_path / "one" / "celeba" / name).read_bytes() == (
            tmp_path / "two" / "celeba" / name
        ).read_bytes()


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as err:
        prepare_celeba(tmp_path / "img_align_celeba.zip", out=tmp_path / "p", progress=False)
    assert "Real CelebA" in str(err.value)


def test_zip_without_celeba_jpegs_is_a_clear_error(tmp_path):
    wrong = tmp_path / "other.zip"
    with zipfile.ZipFile(wrong, "w") as zf:
        zf.writestr("list_attr_celeba.txt", "202599")
    with pytest.raises(DataFolderError, match="No JPEG images found"):
        prepare_celeba(wrong, out=tmp_path / "p", progress=False)


def test_damaged_zip_file_is_a_clear_error(tmp_path):
    broken = tmp_path / "img_align_celeba.zip"
    broken.write_bytes(b"PK\x03\x04 half a download")
    with pytest.raises(DataFolderError, match="not a readable zip"):
        prepare_celeba(broken, out=tmp_path / "p", progress=False)


def test_summary_line_lists_failed_files():
    text = format_summary(
        {
            "written": 1000,
            "skipped": 0,
            "failed": 2,
            "failed_files": [("000017.jpg", "truncated JPEG"), ("000020.jpg", "empty file")],
        }
    )
    assert text == (
        "written 1,000, skipped 0 (already done), failed 2: "
        "000017.jpg (truncated JPEG), 000020.jpg (empty file)"
    )


def test_command_line_prepares_the_folder(celeba_zip, tmp_path, capsys):
    out = tmp_path / "processed_celeba_small"
    assert (
        main(
            [
                "prepare-celeba",
                str(celeba_zip),
                "--out",
                str(out),
                "--size",
                "16",
                "--limit",
                "4",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (out / "celeba").iterdir()) == GOOD[:4]
    assert "written 4, skipped 0" in capsys.readouterr().out


def test_command_line_reports_a_missing_source_without_a_traceback(tmp_path, capsys):
    assert main(["prepare-celeba", str(tmp_path / "nope.zip"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def notebook():
    """The notebook's own definitions (get_dataloader, D, G, losses, train)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution()


def test_prepared_folder_is_found_loaded_and_trained_on(
    celeba_zip, tmp_path, monkeypatch, capsys, notebook
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("helpers.KIT_DIR", tmp_path)  # the notebook works from the kit's folder
    prepare_celeba(celeba_zip, size=64, progress=False)  # default out: processed_celeba_small
    capsys.readouterr()
    data_dir = find_data_dir(builtin_dir="kit/generated_faces")
    assert (
        capsys.readouterr().out.strip()
        == f"Using real CelebA from processed_celeba_small/ ({N_GOOD} images)"
    )
    # The notebook's own get_dataloader (read from the notebook), then one training epoch with the
    # notebook's networks, losses and train: prepare -> load -> train, end to end.
    loader = notebook["get_dataloader"](5, 32, data_dir)
    batches = list(loader)
    assert [len(x) for x, _ in batches] == [5, 5, 2]
    x, _ = batches[0]
    assert x.shape == (5, 3, 32, 32) and x.min() >= 0 and x.max() <= 1 and x.std() > 0.05
    losses, samples, g_changed = train_one_epoch(
        notebook, loader, z_size=16, conv_dim=8, sample_size=4
    )
    assert len(losses) == 3 and all(np.isfinite(pair).all() for pair in losses)
    assert samples[0].shape == (4, 3, 32, 32) and g_changed


# --- faults and bad input (issue 11) ------------------------------------------------------------


def test_half_size_celeba_gives_the_same_picture_as_full_size(tmp_path, capsys):
    full = tmp_path / "full" / "img_align_celeba"
    half = tmp_path / "half" / "img_align_celeba"
    for i in (1, 2):
        photo = imagefiles.celeba_photo(i)
        full.mkdir(parents=True, exist_ok=True)
        half.mkdir(parents=True, exist_ok=True)
        photo.save(full / f"{i:06d}.jpg", quality=98)
        photo.resize((89, 109), Image.Resampling.LANCZOS).save(half / f"{i:06d}.jpg", quality=98)
    assert crop_box(89, 109) == (17.5, 27.5, 71.5, 81.5)
    prepare_celeba(full.parent, out=tmp_path / "out_full", size=32, progress=False)
    prepare_celeba(half.parent, out=tmp_path / "out_half", size=32, progress=True)
    assert "Warning" not in capsys.readouterr().out, "89x109 is a known CelebA size"
    for i in (1, 2):
        a = np.asarray(Image.open(tmp_path / "out_full" / "celeba" / f"{i:06d}.jpg"), np.int16)
        b = np.asarray(Image.open(tmp_path / "out_half" / "celeba" / f"{i:06d}.jpg"), np.int16)
        q = imagefiles.QUADRANTS  # the half-size crop ends at the same quadrant corners
        assert close(b[1, 1], q["top_left"]) and close(b[-2, -2], q["bottom_right"])
        assert np.abs(a - b).mean() < 8, "the half-size copy is framed differently"


def test_unrecognised_image_size_is_cropped_the_same_way_with_one_warning(tmp_path, capsys):
    src = tmp_path / "download"
    imagefiles.rgb_image(src / "000001.jpg", size=(200, 200))
    imagefiles.rgb_image(src / "000002.jpg", size=(178, 218))
    summary = prepare_celeba(src, out=tmp_path / "out", size=16)
    out = capsys.readouterr().out
    assert summary["written"] == 2 and summary["odd_sizes"] == [("000001.jpg", (200, 200))]
    assert (
        "Warning: 1 image(s) are not in the aligned CelebA proportions (178x218, or a scaled "
        "copy such as 89x109), e.g. 000001.jpg is 200x200."
    ) in out


@pytest.fixture
def disk_fills_after(monkeypatch):
    """PIL's JPEG writer fills the disk after `n` images: it writes half, then ENOSPC."""
    import errno

    def fill(n):
        real = Image.Image.save
        calls = []

        def save(self, fp, *args, **kwargs):
            calls.append(1)
            if len(calls) <= n:
                return real(self, fp, *args, **kwargs)
            fp.write(b"\xff\xd8 half a JPEG")
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(Image.Image, "save", save)

    return fill


def test_full_disk_stops_with_no_space_cleans_up_and_exits_nonzero(
    celeba_zip, tmp_path, capsys, disk_fills_after
):
    out = tmp_path / "processed"
    disk_fills_after(3)
    status = main(
        ["prepare-celeba", str(celeba_zip), "--out", str(out), "--size", "16", "--workers", "1"]
    )
    err = capsys.readouterr().err.splitlines()[-1]  # after the progress bar
    assert status == 1
    assert err.startswith(
        f"error: No space left on device while writing {out / 'celeba'}; free 1 MB and rerun "
        f"(the 10 images still to do;"
    )
    assert "damaged" not in err and "the 3 images already written are kept" in err
    assert sorted(p.name for p in (out / "celeba").iterdir()) == GOOD[:3], "temp files left"
    assert celeba_zip.is_file()


@pytest.mark.parametrize(
    "flag, value, why",
    [
        ("--size", "0", "argument --size: must be at least 1, not 0"),
        ("--size", "4", "argument --size: must be at least 8 pixels (64 is the DCGAN size), not 4"),
        ("--limit", "0", "argument --limit: must be at least 1, not 0"),
        ("--workers", "0", "argument --workers: must be at least 1, not 0"),
        ("--workers", "two", "argument --workers: expected a whole number, not 'two'"),
    ],
)
def test_bad_numbers_on_the_command_line_are_one_line_and_exit_2(
    celeba_zip, tmp_path, capsys, flag, value, why
):
    with pytest.raises(SystemExit) as exit_:
        main(["prepare-celeba", str(celeba_zip), "--out", str(tmp_path / "o"), flag, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert (
        err == f"python -m helpers data prepare-celeba: error: {why} "
        f"(see python -m helpers data prepare-celeba --help)\n"
    )
    assert not (tmp_path / "o").exists()


def test_read_only_out_folder_is_one_line_and_exit_2(celeba_zip, tmp_path, capsys, monkeypatch):
    import errno

    from helpers import files

    out = tmp_path / "readonly"
    out.mkdir()
    real = files.tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if str(dir).startswith(str(out)):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    assert main(["prepare-celeba", str(celeba_zip), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: Cannot write to {out} (Read-only file system). If the kit's")
    assert err.endswith("or choose a writable folder for --out.\n")
    assert [p.name for p in out.rglob("*") if p.is_file()] == []
