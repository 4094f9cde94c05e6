"""The fault suite (issue 25): caches that cannot lie, full disks, interrupted and concurrent
runs, checkpoints of other data, and the smaller cases.

One test per case, each asserting the outcome: a rebuild, a clear error, or a clean rerun.
The full-disk and read-only cases run on a real, small tmpfs (``mount -t tmpfs``, which needs
root); where it cannot be mounted they are skipped, and under ``CI=true`` they fail instead.
"""

import contextlib
import io
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from helpers import faces, fastdata, plotting
from helpers.celeba import prepare_celeba
from helpers.checkpoint import describe_run, load_checkpoint, save_checkpoint
from helpers.cleanview import VIEW_MARKER
from helpers.data import check_image_folder, find_data_dir
from helpers.data import main as data_main
from helpers.files import NoSpaceError, NotWritableError
from helpers.instructor import classroom, release

# ---------------------------------------------------------------- small data and a small disk


def write_images(folder, n, size=16, fmt="png", seed=0):
    """n distinct RGB images in folder/faces/ (ImageFolder's layout); returns the class folder."""
    rng = np.random.default_rng(seed)
    faces_dir = Path(folder) / "faces"
    faces_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(faces_dir / f"{i:04d}.{fmt}")
    return faces_dir


def sixteen_bit_png(path, size=16):
    """A 16-bit greyscale PNG whose values span 0..65535 (mid-grey on average)."""
    ramp = np.linspace(0, 65535, size * size).reshape(size, size).astype(np.uint16)
    Image.fromarray(ramp).save(path)


@contextlib.contextmanager
def small_disk(folder, size="64k"):
    """A tmpfs of `size` mounted at `folder`; yields a function that resizes it (or, given
    "ro", makes it read-only)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        why = f"cannot mount a tmpfs here: {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the full-disk cases on a real tmpfs ({why})")
        pytest.skip(why)

    def resize(new):
        option = "ro" if new == "ro" else f"size={new}"
        subprocess.run(["mount", "-o", f"remount,{option}", str(folder)], check=True)

    try:
        yield resize
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder, leave=0):
    """Fill the disk of `folder` with one file, leaving about `leave` bytes free."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(Path(folder) / "filler", "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(0, free - leave))


def no_leftovers(folder):
    """Temporary files or folders (ours are hidden and end in .tmp or hold .building-/.old-)."""
    return [
        p.name
        for p in Path(folder).rglob(".*")
        if p.name.endswith(".tmp") or ".building-" in p.name or ".old-" in p.name
    ]


def one_line(text):
    lines = [line for line in text.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, text
    return lines[0]


NO_SPACE = r"No space left on device while writing (.+); free ([\d,]+) MB and rerun"


# ---------------------------------------------------------------- 1. caches that cannot lie


def _view_size(process_index, data, clean, queue):
    with contextlib.redirect_stdout(io.StringIO()):
        view = find_data_dir(data, builtin_dir=clean / "unused", clean_dir=clean)
    queue.put(len(datasets.ImageFolder(view)))


def test_concurrent_clean_view_builders_each_get_a_whole_view(tmp_path):
    data = tmp_path / "data"
    write_images(data, 120)
    (data / "faces" / "broken.png").write_bytes(b"not a png")  # so a clean view is needed
    check_image_folder(data, progress=False)  # the check cache is shared; the view is not
    clean = tmp_path / "clean"
    for round_ in range(3):  # each round rebuilds: the files change between rounds
        os.utime(data / "faces" / "0000.png", ns=(round_, 10**18 + round_))
        queue = multiprocessing.get_context("fork").Queue()
        procs = [
            multiprocessing.get_context("fork").Process(
                target=_view_size, args=(i, data, clean, queue)
            )
            for i in range(4)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * 4
        assert sorted(queue.get() for _ in procs) == [120] * 4
    assert no_leftovers(clean) == []


def test_a_short_clean_view_is_rebuilt_not_trusted(tmp_path, capsys):
    data = tmp_path / "data"
    write_images(data, 20)
    (data / "faces" / "broken.png").write_bytes(b"")
    view = find_data_dir(data, builtin_dir=tmp_path / "unused", clean_dir=tmp_path / "clean")
    for link in sorted((view / "faces").iterdir())[:5]:  # a view cut short, stamp intact
        link.unlink()
    assert (view / VIEW_MARKER).is_file()
    again = find_data_dir(data, builtin_dir=tmp_path / "unused", clean_dir=tmp_path / "clean")
    assert len(datasets.ImageFolder(again)) == 20
    assert "20 images, read through the clean view" in capsys.readouterr().out


def test_an_interrupted_clean_view_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    from helpers import cleanview as data_module

    data = tmp_path / "data"
    write_images(data, 10)
    (data / "faces" / "broken.png").write_bytes(b"")
    real, calls = data_module._place, []

    def killed(*args):
        calls.append(args)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(data_module, "_place", killed)
    clean = tmp_path / "clean"
    with pytest.raises(KeyboardInterrupt):
        find_data_dir(data, builtin_dir=tmp_path / "unused", clean_dir=clean, verbose=False)
    assert list(clean.iterdir()) == []  # no view, no half-built folder
    monkeypatch.setattr(data_module, "_place", real)
    view = find_data_dir(data, builtin_dir=tmp_path / "unused", clean_dir=clean, verbose=False)
    assert len(datasets.ImageFolder(view)) == 10


def _rewrite_keeping_size_and_mtime(path, data):
    st = os.stat(path)
    path.write_bytes(data)
    assert len(data) == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_data_check_rechecks_a_file_zeroed_in_place_with_its_mtime_restored(tmp_path):
    data = tmp_path / "data"
    faces_dir = write_images(data, 3)
    assert check_image_folder(data, progress=False).n_images == 3
    victim = faces_dir / "0001.png"
    _rewrite_keeping_size_and_mtime(victim, b"\0" * victim.stat().st_size)
    report = check_image_folder(data, progress=False)
    assert report.checked == 1 and list(report.bad) == ["faces/0001.png"]


def _loader(root, size=8):
    tf = transforms.Compose(
        [transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor()]
    )
    return DataLoader(datasets.ImageFolder(root, transform=tf), batch_size=2)


def test_fast_cache_rebuilds_after_a_same_size_rewrite_with_the_mtime_restored(tmp_path):
    data = tmp_path / "data"
    faces_dir = write_images(data, 4, fmt="bmp")  # a BMP's size depends only on its shape
    first = fastdata.load_dataset(_loader(data).dataset, progress=False)
    other = tmp_path / "other"
    write_images(other, 1, fmt="bmp", seed=7)
    _rewrite_keeping_size_and_mtime(
        faces_dir / "0002.bmp", (other / "faces" / "0000.bmp").read_bytes()
    )
    second = fastdata.load_dataset(_loader(data).dataset, progress=False)
    assert (first.cache, second.cache) == ("miss", "miss")
    assert not torch.equal(first.images[2], second.images[2])
    assert torch.equal(first.images[:2], second.images[:2])


def test_fast_cache_with_damaged_bytes_is_rebuilt_with_one_line_saying_why(tmp_path):
    data = tmp_path / "data"
    write_images(data, 6)
    good = fastdata.load_dataset(_loader(data).dataset, progress=False)
    raw = bytearray(good.path.read_bytes())
    middle = raw.rfind(bytes(good.images[3].flatten()[:16].tolist()))  # inside the pixels
    assert middle > 0
    raw[middle : middle + 64] = bytes(64)
    good.path.write_bytes(bytes(raw))
    again = fastdata.load_dataset(_loader(data).dataset, progress=False)
    assert again.cache == "miss" and torch.equal(again.images, good.images)
    assert len(again.notes) == 1 and "decoding the images again" in again.notes[0]
    assert "damaged" in again.notes[0] or "cannot be read" in again.notes[0]
    third = fastdata.load_dataset(_loader(data).dataset, progress=False)
    assert third.cache == "hit" and third.notes == []


def test_another_folders_or_sizes_cache_under_the_right_name_is_not_used(tmp_path):
    data, other = tmp_path / "data", tmp_path / "other"
    write_images(data, 5)
    write_images(other, 5, seed=3)
    mine = fastdata.load_dataset(_loader(data).dataset, progress=False)
    theirs = fastdata.load_dataset(_loader(other, size=16).dataset, progress=False)
    theirs.path.replace(mine.path)  # another folder's 16 px cache, under this one's name
    again = fastdata.load_dataset(_loader(data).dataset, progress=False)
    assert again.cache == "miss" and torch.equal(again.images, mine.images)
    assert "was made from other files or another transform" in again.notes[0]


def test_data_check_recheck_reopens_every_file_and_drops_the_image_caches(tmp_path, capsys):
    data = tmp_path / "data"
    write_images(data, 3)
    fastdata.load_dataset(_loader(data).dataset, progress=False)
    assert data_main(["check", str(data)]) == 0
    assert data_main(["check", str(data), "--recheck"]) == 0
    out = capsys.readouterr().out
    assert "checked 3 files this time" in out and "dropped 1 image cache" in out
    assert list(data.glob(".kit_images_*")) == []


# ---------------------------------------------------------------- 2. full disks


def test_faces_on_a_full_disk_is_one_line_and_a_rerun_completes(tmp_path, capsys):
    with small_disk(tmp_path / "disk", "40k") as resize:
        status = faces.main(["--root", str(tmp_path / "disk" / "set"), "--n", "60",
                             "--size", "32", "--workers", "1", "--quiet"])  # fmt: skip
        line = one_line(capsys.readouterr().err)
        assert status == 1 and re.search(NO_SPACE, line), line
        assert no_leftovers(tmp_path / "disk") == []
        resize("4m")
        assert faces.main(["--root", str(tmp_path / "disk" / "set"), "--n", "60",
                           "--size", "32", "--workers", "1", "--quiet"]) == 0  # fmt: skip
        assert len(list((tmp_path / "disk" / "set" / "faces").glob("*.png"))) == 60


def _celeba_zip(path, n=12):
    rng = np.random.default_rng(1)
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(1, n + 1):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(
                buffer, format="JPEG"
            )
            zf.writestr(f"img_align_celeba/{i:06d}.jpg", buffer.getvalue())
    return path


def test_prepare_celeba_on_a_full_disk_is_one_line_and_a_rerun_completes(tmp_path, capsys):
    source = _celeba_zip(tmp_path / "img_align_celeba.zip")
    out = tmp_path / "disk" / "processed"
    with small_disk(tmp_path / "disk", "40k") as resize:
        argv = ["prepare-celeba", str(source), "--out", str(out), "--workers", "1"]
        assert data_main(argv) == 1
        assert re.search(NO_SPACE, one_line(capsys.readouterr().err))
        assert no_leftovers(out) == []
        resize("4m")
        assert data_main(argv) == 0
        assert len(list((out / "celeba").glob("*.jpg"))) == 12


def test_clean_view_on_a_full_disk_is_one_line_and_a_rerun_builds_it(tmp_path):
    data = tmp_path / "data"
    faces_dir = write_images(data, 4)
    for i in range(8):  # 16-bit images get 8-bit copies in the view: they take room
        sixteen_bit_png(faces_dir / f"deep{i}.png", size=64)
    clean = tmp_path / "disk"
    with small_disk(clean, "16k") as resize:
        with pytest.raises(NoSpaceError, match=NO_SPACE):
            find_data_dir(data, builtin_dir=tmp_path / "unused", clean_dir=clean, verbose=False)
        assert no_leftovers(clean) == [] and list(clean.iterdir()) == []
        resize("4m")
        view = find_data_dir(data, builtin_dir=tmp_path / "unused", clean_dir=clean, verbose=False)
        assert len(datasets.ImageFolder(view)) == 12


def test_release_on_a_full_disk_is_one_line_marked_incomplete_and_a_rerun_completes(
    tmp_path, capsys
):
    out = tmp_path / "disk" / "release"
    with small_disk(tmp_path / "disk", "256k") as resize:
        assert release.main(["--out", str(out)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(NO_SPACE, err[0]), err
        assert (out / release.INCOMPLETE).is_file()
        resize("64m")
        assert release.main(["--out", str(out)]) == 0
        assert not (out / release.INCOMPLETE).exists()
        for notebook in release.KIT_NOTEBOOKS:
            json.loads((out / notebook.name).read_text())


def test_update_kit_on_a_full_disk_keeps_the_learner_notebook_whole(tmp_path):
    from helpers.notebook import NOTEBOOK

    learner = tmp_path / "disk" / NOTEBOOK.name
    with small_disk(tmp_path / "disk", "1m"):
        learner.write_text('{"cells": [], "note": "the committed learner edition"}\n')
        before = learner.read_bytes()
        fill(tmp_path / "disk", leave=4096)
        with pytest.raises(NoSpaceError, match=NO_SPACE):
            release.update_kit(NOTEBOOK, learner)
        assert learner.read_bytes() == before
        assert no_leftovers(tmp_path / "disk") == []


def test_run_out_on_a_full_disk_names_the_failed_cell_and_writes_nothing_half(
    tmp_path, monkeypatch, capsys
):
    import nbformat

    from helpers import run

    out = tmp_path / "disk"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1" * 40_000)])
    failure = {"cell": 7, "source": "save()", "section": "Train", "ename": "NoSpaceError",
               "evalue": "No space left on device while writing samples.png; free 1 MB and rerun",
               "traceback": "", "line": 1}  # fmt: skip
    monkeypatch.setattr(run, "run_notebook", lambda *a, **k: (nb, 1.0, failure))
    with small_disk(out, "64k"):
        (out / "run.json").write_text('{"ok": true}\n')
        assert run.main(["--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert "cell 7 (section 'Train') raised NoSpaceError" in err
        assert re.search(NO_SPACE, one_line(err))
        assert not (out / "dlnd_face_generation.ipynb").exists()
        assert json.loads((out / "run.json").read_text())["ok"] is False  # this run's record
        assert no_leftovers(out) == []


def test_plots_on_a_full_disk_keep_the_old_png_whole(tmp_path):
    path = tmp_path / "disk" / "samples.png"
    with small_disk(tmp_path / "disk", "1m"):
        plotting.view_samples(torch.rand(4, 3, 8, 8) * 2 - 1, path=path)
        before = path.read_bytes()
        fill(tmp_path / "disk", leave=0)
        with pytest.raises(NoSpaceError, match=NO_SPACE):
            plotting.view_samples(torch.rand(64, 3, 32, 32) * 2 - 1, path=path)
        assert path.read_bytes() == before and no_leftovers(tmp_path / "disk") == []


def test_fast_cache_on_a_full_disk_trains_on_with_one_line(tmp_path):
    data = tmp_path / "data"
    write_images(data, 64, size=32)
    with small_disk(tmp_path / "disk", "16k"):
        decoded = fastdata.load_dataset(
            _loader(data, size=32).dataset, progress=False, cache_dir=tmp_path / "disk"
        )
    assert decoded.cache == "not saved" and decoded.images.shape == (64, 3, 32, 32)
    assert len(decoded.notes) == 1 and "No space left on device while writing" in decoded.notes[0]


def test_checkpoint_on_a_full_disk_keeps_the_previous_one(tmp_path):
    from helpers.checkpoint import CheckpointError

    D, G = nn.Linear(2, 1), nn.Linear(64, 2000)
    opts = [torch.optim.Adam(D.parameters()), torch.optim.Adam(G.parameters())]
    path = tmp_path / "disk" / "checkpoint.pt"
    state = {"D": D, "G": G, "d_optimizer": opts[0], "g_optimizer": opts[1],
             "fixed_z": torch.zeros(1), "losses": [], "samples": []}  # fmt: skip
    with small_disk(tmp_path / "disk", "2m"):
        save_checkpoint(path, epoch=1, **state)
        before = path.read_bytes()
        fill(tmp_path / "disk", leave=4096)
        with pytest.raises(CheckpointError, match="No space left on device"):
            save_checkpoint(path, epoch=2, **state)
        assert path.read_bytes() == before and no_leftovers(tmp_path / "disk") == []


# ---------------------------------------------------------------- 3. checkpoints bound to data


def _run_on(folder, capsys, out):
    torch.manual_seed(0)
    D, G = nn.Linear(3, 1), nn.Linear(2, 3)
    opts = [torch.optim.Adam(D.parameters()), torch.optim.Adam(G.parameters())]
    with contextlib.redirect_stdout(io.StringIO()):
        loader, _ = fastdata.fast_loader(_loader(folder), "cpu", progress=False)
    run = describe_run({}, D, G, *opts, loader, 2)
    resumed = load_checkpoint(out, D, G, *opts, "cpu", run=run)
    if resumed is None:
        save_checkpoint(out, epoch=1, D=D, G=G, d_optimizer=opts[0], g_optimizer=opts[1],
                        fixed_z=torch.zeros(1), losses=[], samples=[], run=run)  # fmt: skip
    return resumed, capsys.readouterr().out


def test_resuming_on_other_data_sets_the_old_checkpoint_aside(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out" / "checkpoint.pt"
    write_images(data, 4)
    assert _run_on(data, capsys, out)[0] is None
    write_images(tmp_path / "extra", 2, seed=9)  # another class folder: the data changed
    (tmp_path / "extra" / "faces").rename(data / "celeba")
    resumed, printed = _run_on(data, capsys, out)
    assert resumed is None
    assert "was trained on other data (4 images of 3x8x8 from" in printed
    assert "-> 6 images of 3x8x8 from" in printed
    assert len(list(out.parent.glob("checkpoint.set-aside-*.pt"))) == 1


def test_the_same_images_in_a_moved_folder_still_resume(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out" / "checkpoint.pt"
    write_images(data, 4)
    assert _run_on(data, capsys, out)[0] is None
    data.rename(tmp_path / "moved")
    resumed, _ = _run_on(tmp_path / "moved", capsys, out)
    assert resumed is not None and resumed["epoch"] == 1


def test_the_notebooks_default_output_folder_separates_data_sets(tmp_path, monkeypatch):
    from helpers.data import output_dir_for

    monkeypatch.delenv("DCGAN_OUT", raising=False)
    builtin, celeba = tmp_path / "generated_faces", tmp_path / "processed_celeba_small"
    with contextlib.redirect_stdout(io.StringIO()):
        faces.make_faces(builtin, n=2, workers=1, progress=False)
    write_images(celeba, 2)
    outputs = tmp_path / "outputs"
    assert output_dir_for(builtin, outputs) == outputs  # the README's outputs/, as before
    assert output_dir_for(celeba, outputs) == outputs / "processed_celeba_small"
    assert (outputs / "processed_celeba_small").is_dir()
    monkeypatch.setenv("DCGAN_OUT", str(outputs))  # chosen by hand (helpers run --out): kept
    assert output_dir_for(celeba, outputs) == outputs


# ---------------------------------------------------------------- 4. the other cases


def test_prepare_celeba_with_another_size_refuses_clearly(tmp_path, capsys):
    source = _celeba_zip(tmp_path / "img_align_celeba.zip", n=3)
    out = tmp_path / "processed"
    assert data_main(["prepare-celeba", str(source), "--out", str(out), "--size", "32"]) == 0
    capsys.readouterr()
    assert data_main(["prepare-celeba", str(source), "--out", str(out), "--size", "64"]) == 2
    err = capsys.readouterr().err
    assert "holds 32x32 images from an earlier run; adding 64x64 ones would mix two sizes" in err
    assert {Image.open(p).size for p in (out / "celeba").glob("*.jpg")} == {(32, 32)}


def test_prepare_celeba_scales_a_16_bit_png_instead_of_whitening_it(tmp_path):
    source = tmp_path / "img_align_celeba"
    source.mkdir()
    ramp = np.linspace(0, 65535, 218 * 178).reshape(218, 178).astype(np.uint16)
    Image.fromarray(ramp).save(source / "000001.png")
    (source / "000001.jpg").write_bytes((source / "000001.png").read_bytes())  # PIL reads it
    prepare_celeba(tmp_path, out=tmp_path / "out", size=16, progress=False)
    made = np.asarray(Image.open(tmp_path / "out" / "celeba" / "000001.jpg"))
    assert 100 < made.mean() < 155  # the mid-grey ramp, not 255 everywhere


def test_prepare_celeba_paths_resolve_from_any_working_directory(tmp_path, monkeypatch, capsys):
    source = _celeba_zip(tmp_path / "img_align_celeba.zip", n=2)
    kit, elsewhere = tmp_path / "kit", tmp_path / "elsewhere"
    kit.mkdir()
    elsewhere.mkdir()
    monkeypatch.setattr("helpers.KIT_DIR", kit)
    monkeypatch.chdir(elsewhere)
    assert data_main(["prepare-celeba", str(source)]) == 0
    assert "The notebook finds it there" in capsys.readouterr().out
    assert len(list((kit / "processed_celeba_small" / "celeba").glob("*.jpg"))) == 2
    assert list(elsewhere.iterdir()) == []
    assert data_main(["prepare-celeba", str(source), "--out", "mine"]) == 0
    assert f"data_dir='{elsewhere / 'mine'}'" in capsys.readouterr().out


def test_out_that_is_a_file_is_a_clear_error_for_every_command(tmp_path, capsys):
    from helpers import run

    a_file = tmp_path / "taken"
    a_file.write_text("mine")
    source = _celeba_zip(tmp_path / "img_align_celeba.zip", n=1)
    assert data_main(["prepare-celeba", str(source), "--out", str(a_file)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert release.main(["--out", str(a_file)]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        run.main(["--out", str(a_file)])
    assert stop.value.code == 2 and "is a file, not a folder" in capsys.readouterr().err
    assert faces.main(["--root", str(a_file), "--n", "1", "--quiet"]) == 1
    assert "cannot be made" in capsys.readouterr().err
    assert a_file.read_text() == "mine"


def test_a_read_only_kit_folder_gets_a_hint(tmp_path):
    kit = tmp_path / "kit"
    with small_disk(kit, "1m") as resize:
        (kit / "processed_celeba_small").mkdir()
        resize("ro")
        os.chdir(kit)
        try:
            with pytest.raises(NotWritableError, match="copy the kit to a folder you own"):
                find_data_dir(builtin_dir="data/generated_faces", n_builtin=2, verbose=False)
        finally:
            os.chdir(tmp_path)


WATCHED = """
import sys, time
from helpers.scale.distributed import watch_agent
watch_agent(interval=0.1)
print("watching", flush=True)
time.sleep(120)
"""
AGENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=sys.stdout)
print(child.pid, flush=True)
child.wait()
"""


def test_ranks_stop_when_the_torchrun_agent_is_killed():
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT, WATCHED], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    rank = int(agent.stdout.readline())
    assert agent.stdout.readline().strip() == "watching"
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    for _ in range(200):  # gone, or a zombie waiting for its new parent to reap it
        try:
            state = Path(f"/proc/{rank}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        time.sleep(0.1)
    else:
        os.kill(rank, signal.SIGKILL)
        pytest.fail("the rank kept running after its torchrun agent was killed")
    assert "torchrun's agent" in agent.stderr.read()


def test_an_interrupted_release_is_marked_incomplete_and_a_rerun_completes(tmp_path, monkeypatch):
    out = tmp_path / "release"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    real = release.copy_helpers
    monkeypatch.setattr(release, "copy_helpers", killed)
    with pytest.raises(KeyboardInterrupt):
        release.main(["--out", str(out)])
    assert (out / release.INCOMPLETE).is_file()
    assert not any((out / n.name).exists() for n in release.KIT_NOTEBOOKS)
    monkeypatch.setattr(release, "copy_helpers", real)
    assert release.main(["--out", str(out)]) == 0
    assert not (out / release.INCOMPLETE).exists()


def test_an_interrupted_classroom_run_leaves_no_gradebook_that_looks_current(tmp_path, monkeypatch):
    folder, out = tmp_path / "submissions", tmp_path / "out"
    folder.mkdir()
    for name in ("alice", "bob", "carol"):
        (folder / f"{name}.ipynb").write_text("{}")
    (out / "feedback").mkdir(parents=True)
    (out / "feedback" / "bob.txt").write_text("last week's feedback")

    def grade_one(folder, sub, work, out, options):
        if sub.student != "alice":
            raise KeyboardInterrupt
        (out / "feedback" / "alice.txt").write_text("graded")
        return classroom._row(sub.student, sub.shown, None, "graded", ""), None

    monkeypatch.setattr(classroom, "_grade_one", grade_one)
    with pytest.raises(KeyboardInterrupt):
        classroom.grade_class(folder, out, parallel=1, sandbox=False, progress=None)
    book = json.loads((out / "gradebook.json").read_text())
    assert book["complete"] is False
    assert [s["status"] for s in book["students"]][1:] == ["pending", "pending"]
    assert sorted(p.name for p in (out / "feedback").iterdir()) == ["alice.txt"]
    assert (out / "feedback.previous" / "bob.txt").read_text() == "last week's feedback"
