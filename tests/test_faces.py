"""Specification of the built-in face dataset (helpers/faces.py), the offline stand-in for
processed_celeba_small in the notebook's "Get the data" step."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import ImageFolder

from helpers import faces
from helpers.faces import DEFAULT_SIZE, FACES_VERSION, draw_face, make_faces

N = 16  # small for speed; still enough for two workers to share the work


def _digests(root):
    """{file name: sha256 of its bytes} for every image in root/faces."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "faces").glob("*.png"))
    }


def _pixels(root):
    """(n, H, W, 3) float array of the images in root/faces, in file order."""
    return np.stack(
        [np.asarray(Image.open(p), dtype=float) for p in sorted((root / "faces").glob("*.png"))]
    )


def _age_files(root):
    """Set every image's mtime far in the past, so any rewrite is visible."""
    for p in (root / "faces").glob("*.png"):
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))


def _mtimes(root):
    return {p.name: p.stat().st_mtime_ns for p in (root / "faces").glob("*.png")}


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """64 faces shared by the variety tests (drawn once)."""
    root = make_faces(tmp_path_factory.mktemp("grid"), n=64, seed=3, progress=False)
    return _pixels(root)


def test_make_faces_writes_numbered_pngs_in_imagefolder_layout(tmp_path):
    root = make_faces(tmp_path / "data", n=N, workers=1, progress=False)
    assert root == tmp_path / "data"
    names = sorted(p.name for p in (root / "faces").iterdir() if not p.name.startswith("."))
    assert names == [f"{i:06d}.png" for i in range(1, N + 1)]
    dataset = ImageFolder(root)
    assert len(dataset) == N, "torchvision's ImageFolder should find every face"
    assert dataset.classes == ["faces"]


def test_no_temporary_files_are_left_behind(tmp_path):
    make_faces(tmp_path, n=N, workers=2, progress=False)
    leftovers = [
        p.name
        for p in (tmp_path / "faces").iterdir()
        if not p.name.endswith(".png") and p.name != ".complete.json"
    ]
    assert leftovers == []


def test_images_are_64x64_rgb_by_default(tmp_path):
    make_faces(tmp_path, n=4, workers=1, progress=False)
    for p in (tmp_path / "faces").glob("*.png"):
        with Image.open(p) as image:
            assert (image.mode, image.size) == ("RGB", (DEFAULT_SIZE, DEFAULT_SIZE))


def test_images_have_the_requested_size(tmp_path):
    make_faces(tmp_path, n=4, size=32, workers=1, progress=False)
    for p in (tmp_path / "faces").glob("*.png"):
        with Image.open(p) as image:
            assert (image.mode, image.size) == ("RGB", (32, 32))


def test_draw_face_returns_an_rgb_image_of_the_requested_size():
    image = draw_face(np.random.default_rng(0), size=48)
    assert (image.mode, image.size) == ("RGB", (48, 48))


def test_same_seed_gives_identical_bytes(tmp_path):
    a = make_faces(tmp_path / "a", n=N, seed=5, workers=1, progress=False)
    b = make_faces(tmp_path / "b", n=N, seed=5, workers=1, progress=False)
    assert _digests(a) == _digests(b)


def test_worker_count_does_not_change_the_images(tmp_path):
    one = make_faces(tmp_path / "one", n=N, workers=1, progress=False)
    two = make_faces(tmp_path / "two", n=N, workers=2, progress=False)
    assert _digests(one) == _digests(two)


def test_image_i_comes_from_its_own_generator_seeded_with_seed_and_i(tmp_path):
    make_faces(tmp_path, n=3, seed=7, workers=1, progress=False)
    expected = np.asarray(draw_face(np.random.default_rng([7, 3])))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "faces" / "000003.png")), expected)


def test_different_seeds_give_different_images(tmp_path):
    a = _digests(make_faces(tmp_path / "a", n=N, seed=0, workers=1, progress=False))
    b = _digests(make_faces(tmp_path / "b", n=N, seed=1, workers=1, progress=False))
    same = [name for name in a if a[name] == b[name]]
    assert same == [], f"seeds 0 and 1 drew identical images: {same}"


def test_faces_are_pairwise_distinct(grid):
    flat = grid.reshape(len(grid), -1)
    closest = min(
        np.abs(flat[i] - flat[j]).mean() for i in range(len(flat)) for j in range(i + 1, len(flat))
    )
    assert closest > 10, "two faces are (nearly) identical; the drawing lacks variety"


def test_every_pixel_varies_across_faces(grid):
    std = grid.std(axis=0).mean(axis=-1)  # (H, W): spread of each pixel over the 64 faces
    assert std[26:38, 26:38].mean() > 25, "the face region looks the same in every image"
    assert std[:6, :6].mean() > 30, "the background looks the same in every image"
    assert std.min() > 15, "some pixel hardly changes from face to face"


def test_skin_and_background_colours_vary(grid):
    centre = grid[:, 26:38, 26:38].mean(axis=(1, 2))  # (64, 3): mostly skin
    corner = grid[:, :6, :6].mean(axis=(1, 2))  # (64, 3): background
    assert centre.std(axis=0).min() > 20, "skin colours should span light to deep tones"
    assert corner.std(axis=0).min() > 30, "background colours should vary"


def test_face_stands_out_from_the_background(grid):
    centre = grid[:, 26:38, 26:38].mean(axis=(1, 2))
    corner = grid[:, :6, :6].mean(axis=(1, 2))
    contrast = np.abs(centre - corner).sum(axis=1)
    assert contrast.min() > 30, f"a face blends into its background (contrast {contrast.min():.0f})"


def test_second_call_with_same_arguments_does_not_rewrite_files(tmp_path):
    make_faces(tmp_path, n=N, workers=1, progress=False)
    _age_files(tmp_path)
    before = _mtimes(tmp_path)
    make_faces(tmp_path, n=N, workers=1, progress=False)
    assert _mtimes(tmp_path) == before


def test_completion_marker_records_the_arguments_and_version(tmp_path):
    make_faces(tmp_path, n=N, size=32, seed=4, workers=1, progress=False)
    marker = json.loads((tmp_path / "faces" / ".complete.json").read_text())
    assert marker == {"n": N, "size": 32, "seed": 4, "version": FACES_VERSION}


def test_resume_after_interruption_remakes_identical_files(tmp_path):
    make_faces(tmp_path, n=N, workers=1, progress=False)
    expected = _digests(tmp_path)
    # An interrupted run has no marker and is missing some files.
    (tmp_path / "faces" / ".complete.json").unlink()
    for name in ("000003.png", "000011.png"):
        (tmp_path / "faces" / name).unlink()
    make_faces(tmp_path, n=N, workers=2, progress=False)
    assert _digests(tmp_path) == expected
    assert (tmp_path / "faces" / ".complete.json").exists()


def test_files_deleted_from_a_finished_set_are_redrawn(tmp_path):
    make_faces(tmp_path, n=N, workers=1, progress=False)
    expected = _digests(tmp_path)
    (tmp_path / "faces" / "000005.png").unlink()
    make_faces(tmp_path, n=N, workers=1, progress=False)
    assert _digests(tmp_path) == expected


def test_other_arguments_redraw_and_remove_extra_files(tmp_path):
    make_faces(tmp_path, n=N, seed=0, workers=1, progress=False)
    old = _digests(tmp_path)
    make_faces(tmp_path, n=8, seed=1, workers=1, progress=False)
    new = _digests(tmp_path)
    assert sorted(new) == [f"{i:06d}.png" for i in range(1, 9)]
    assert all(new[name] != old[name] for name in new), "stale seed-0 images were reused"


def test_older_drawing_version_is_redrawn(tmp_path):
    make_faces(tmp_path, n=4, workers=1, progress=False)
    marker = tmp_path / "faces" / ".complete.json"
    marker.write_text(json.dumps({"n": 4, "size": 64, "seed": 0, "version": FACES_VERSION - 1}))
    _age_files(tmp_path)
    before = _mtimes(tmp_path)
    make_faces(tmp_path, n=4, workers=1, progress=False)
    after = _mtimes(tmp_path)
    assert all(after[name] != before[name] for name in before)
    assert json.loads(marker.read_text())["version"] == FACES_VERSION


def test_interrupted_redraw_does_not_leave_a_matching_marker(tmp_path, monkeypatch):
    make_faces(tmp_path, n=4, seed=0, workers=1, progress=False)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(faces, "_draw_and_save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_faces(tmp_path, n=4, seed=1, workers=1, progress=False)
    # The folder must not claim to hold a finished set of either seed.
    assert not (tmp_path / "faces" / ".complete.json").exists()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"n": 0}, "n is the number of images"),
        ({"n": 2.5}, "n is the number of images"),
        ({"size": 8}, "size must be"),
        ({"workers": 0}, "workers must be at least 1"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(tmp_path, kwargs, words):
    with pytest.raises(ValueError, match=words):
        make_faces(tmp_path, **{"n": 4, "progress": False, **kwargs})
    assert not (tmp_path / "faces").exists(), "nothing should be written for bad arguments"


def test_draw_face_rejects_a_too_small_size():
    with pytest.raises(ValueError, match="at least 16"):
        draw_face(np.random.default_rng(0), size=8)


def test_draw_face_explains_that_it_needs_a_generator():
    with pytest.raises(TypeError, match="default_rng"):
        draw_face(0)


def test_command_line_draws_the_requested_faces(tmp_path, capsys):
    faces.main(["--root", str(tmp_path), "--n", "3", "--size", "32", "--workers", "1", "--quiet"])
    assert sorted(p.name for p in (tmp_path / "faces").glob("*.png")) == [
        "000001.png",
        "000002.png",
        "000003.png",
    ]
    assert "3 faces" in capsys.readouterr().out


def test_temporary_files_left_by_an_interrupted_run_are_removed(tmp_path):
    make_faces(tmp_path, n=4, workers=1, progress=False)
    (tmp_path / "faces" / ".complete.json").unlink()
    leftover = tmp_path / "faces" / ".000003.12345.tmp"
    leftover.write_bytes(b"half a png")
    make_faces(tmp_path, n=4, workers=1, progress=False)
    assert not leftover.exists()


def test_command_line_defaults_draw_the_set_the_notebook_trains_on(tmp_path, monkeypatch):
    # `python -m helpers faces` with no options must fill the folder find_data_dir falls back to,
    # with as many faces, so the notebook reuses the set instead of drawing another.
    from helpers.data import find_data_dir

    calls = []

    class Drawn(Exception):
        pass

    def record(root, n=faces.DEFAULT_N, **kwargs):
        calls.append((Path(root), n))
        raise Drawn

    monkeypatch.setattr(faces, "make_faces", record)
    # The notebook works from the kit's folder; the command finds it from any working directory.
    monkeypatch.setattr("helpers.KIT_DIR", tmp_path)
    monkeypatch.chdir(tmp_path)  # no processed_celeba_small/ here: the built-in set is used
    for draw in (lambda: faces.main(["--quiet"]), lambda: find_data_dir(verbose=False)):
        with pytest.raises(Drawn):
            draw()
    wanted = (tmp_path / faces.BUILTIN_DIR, faces.DEFAULT_N)
    assert [(tmp_path / root, n) for root, n in calls] == [wanted, wanted]
