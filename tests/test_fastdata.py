"""Specification of helpers.fastdata: the learner's own get_dataloader, decoded once, cached while
the folder and the transforms are unchanged, and served in shuffled batches the notebook's train
accepts; random transforms are flipped per batch or handed back to the learner's loader."""

import contextlib
import errno
import io
import json
import os
import re

import pytest
import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from helpers import fastdata, files
from helpers.fastdata import FastLoader, fast_loader, load_dataset, plan_transform
from helpers.notebook import NOTEBOOK, load_solution
from tests import imagefiles
from tests.tiny_training import train_one_epoch

CROP_LINE = "            transforms.CenterCrop(image_size),  # then the central square\n"


@pytest.fixture(scope="module")
def solution():
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution()


def make_folder(root, n=5):
    """root/faces/ with n RGB images of different shapes and formats, non-square ones included."""
    shapes = [(64, 64), (50, 80), (90, 40), (33, 33), (120, 70)]
    for i in range(n):
        ext = "jpg" if i % 2 else "png"
        imagefiles.rgb_image(
            root / "faces" / f"{i:03d}.{ext}", size=shapes[i % len(shapes)], seed=i
        )
    return root


def loader_with(root, *steps, batch_size=2):
    """A learner-style DataLoader over root with the given transform steps."""
    dataset = datasets.ImageFolder(str(root), transform=transforms.Compose(list(steps)))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True)


def standard(size=32):
    return [transforms.Resize(size), transforms.CenterCrop(size)]


def cache_files(root):
    return sorted(p.name for p in root.glob(".kit_images_*.pt"))


def quiet(loader, device="cpu", **kw):
    """fast_loader without the progress bar; returns (train_loader, images, printed lines)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        train_loader, images = fast_loader(loader, device, progress=False, **kw)
    return train_loader, images, out.getvalue().strip().splitlines()


def leftovers(*folders):
    """Temporary files that a failed write could have left behind."""
    return [p.name for f in folders if f.exists() for p in f.rglob("*") if ".tmp" in p.name]


@pytest.fixture
def count_decodes(monkeypatch):
    """Counts calls of the decoding step, which a cache hit skips."""
    calls = []
    real = fastdata._decode_all

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fastdata, "_decode_all", counting)
    return calls


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    """The user cache folder (for read-only data folders) lives in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "usercache"))
    return tmp_path / "usercache" / "dcgan-face-kit"


# --- the learner's own loader is what trains ------------------------------------------------


def test_pixels_equal_an_epoch_of_the_learner_get_dataloader(tmp_path, solution):
    root = make_folder(tmp_path / "data")
    learner = solution["get_dataloader"](5, 32, str(root))
    epoch, _ = next(iter(learner))  # one shuffled epoch of the learner's own loader

    train_loader, images, _ = quiet(learner)
    assert images.dtype == torch.uint8 and images.shape == (5, 3, 32, 32)
    served, _ = next(iter(train_loader))
    for image in epoch:
        assert any(torch.equal(image, s) for s in served), "a learner image is not served as is"
    fixed = next(iter(FastLoader(images, 5, "cpu", shuffle=False)))[0]
    assert torch.equal(fixed, torch.stack([learner.dataset[i][0] for i in range(5)]))


def test_a_transform_the_learner_adds_changes_what_trains(tmp_path):
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    (cell,) = [c for c in nb["cells"] if "def get_dataloader" in "".join(c["source"])]
    source = "".join(cell["source"])
    assert CROP_LINE in source, "the notebook's get_dataloader changed; update CROP_LINE"
    cell["source"] = source.replace(CROP_LINE, CROP_LINE + "            transforms.Grayscale(3),\n")
    edited = tmp_path / "edited.ipynb"
    edited.write_text(json.dumps(nb), encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()):
        grey = load_solution(edited)
    root = make_folder(tmp_path / "data")
    train_loader, images, _ = quiet(grey["get_dataloader"](5, 32, str(root)))
    batch, _ = next(iter(train_loader))
    assert torch.equal(batch[:, 0], batch[:, 1]) and torch.equal(batch[:, 1], batch[:, 2])
    colour, _, _ = quiet(loader_with(root, *standard(), transforms.ToTensor()))
    assert not torch.equal(colour.images, train_loader.images), "the added step had no effect"


def test_each_transform_gets_its_own_cache(tmp_path, count_decodes):
    root = make_folder(tmp_path / "data")
    quiet(loader_with(root, *standard(32), transforms.ToTensor()))
    quiet(loader_with(root, *standard(16), transforms.ToTensor()))
    quiet(loader_with(root, *standard(32), transforms.ToTensor()))
    assert len(count_decodes) == 2 and len(cache_files(root)) == 2


def test_transforms_that_give_different_sizes_are_named(tmp_path):
    root = make_folder(tmp_path / "data")  # no CenterCrop: non-square images stay non-square
    with pytest.raises(ValueError, match=r"different sizes.*CenterCrop\(image_size\)"):
        quiet(loader_with(root, transforms.Resize(32), transforms.ToTensor()))


def test_transforms_without_to_tensor_are_named(tmp_path):
    root = make_folder(tmp_path / "data")
    with pytest.raises(ValueError, match=r"Image for each image.*ToTensor\(\)"):
        quiet(loader_with(root, *standard()))
    with pytest.raises(ValueError, match=r"torch.uint8 tensor for each image.*ToTensor\(\)"):
        quiet(loader_with(root, *standard(), transforms.PILToTensor()))


# --- random transforms -----------------------------------------------------------------------


def test_random_flip_is_applied_per_batch_to_the_cached_images(tmp_path):
    root = make_folder(tmp_path / "data", n=4)
    loader = loader_with(
        root, *standard(), transforms.RandomHorizontalFlip(), transforms.ToTensor()
    )
    train_loader, images, lines = quiet(loader, seed=0)
    unflipped, _, _ = quiet(loader_with(root, *standard(), transforms.ToTensor()))
    assert torch.equal(images, unflipped.images), "the cache must hold the unflipped images"
    assert "random horizontal flips (p=0.5) per batch" in lines[-1]
    seen_plain = seen_flipped = 0
    for _ in range(10):
        for batch, _ in train_loader:
            for image in (batch * 255).round().to(torch.uint8):
                plain_match = any(torch.equal(image, x) for x in images)
                flip_match = any(torch.equal(image, x.flip(-1)) for x in images)
                assert plain_match or flip_match, (
                    "a served image is neither an image nor its mirror"
                )
                seen_plain += plain_match
                seen_flipped += flip_match
    assert seen_plain > 0 and seen_flipped > 0, "flips with p=0.5 were never (or always) drawn"


def test_plan_keeps_fixed_steps_and_moves_flips_out():
    plan = plan_transform(
        transforms.Compose([*standard(), transforms.RandomVerticalFlip(0.3), transforms.ToTensor()])
    )
    assert plan.random == "" and plan.flips == ((-2, 0.3),)
    assert [type(t).__name__ for t in plan.cached.transforms] == [
        "Resize",
        "CenterCrop",
        "ToTensor",
    ]
    assert plan_transform(transforms.RandomHorizontalFlip(p=0.0)).random  # nothing makes tensors


@pytest.mark.parametrize(
    "step, why",
    [
        (transforms.RandomCrop(32, padding=2), "RandomCrop.*draws new pixels every epoch"),
        (transforms.ColorJitter(brightness=0.5), "ColorJitter.*draws new pixels every epoch"),
        (transforms.Lambda(lambda im: im), "Lambda.*cannot be proved deterministic"),
    ],
)
def test_other_random_steps_train_with_the_learner_loader_and_say_so(tmp_path, solution, step, why):
    root = make_folder(tmp_path / "data", n=4)
    loader = loader_with(root, *standard(), step, transforms.ToTensor())
    train_loader, images, lines = quiet(loader, hold_out=1)
    assert len(lines) == 1 and re.search(f"Fast loader: off, because .*{why}", lines[0])
    assert "your get_dataloader's own loader" in lines[0]
    assert isinstance(train_loader, DataLoader) and train_loader.dataset.dataset is loader.dataset
    assert len(train_loader.dataset) == 3 and images.shape == (4, 3, 32, 32)
    assert cache_files(root) == []
    losses, _, g_changed = train_one_epoch(solution, train_loader)
    assert len(losses) == 1 and g_changed


def test_a_flip_before_the_resize_is_not_moved(tmp_path):
    root = make_folder(tmp_path / "data", n=2)
    loader = loader_with(
        root, transforms.RandomHorizontalFlip(), *standard(), transforms.ToTensor()
    )
    _, _, lines = quiet(loader)
    assert "a random flip comes before Resize, which moves pixels" in lines[0]


def test_values_that_are_not_8bit_pixels_train_with_the_learner_loader(tmp_path):
    root = make_folder(tmp_path / "data", n=2)
    loader = loader_with(root, *standard(), transforms.ToTensor(), transforms.Normalize(0.5, 0.5))
    train_loader, _, lines = quiet(loader)
    assert "not 8-bit pixels in [0, 1]" in lines[0] and isinstance(train_loader, DataLoader)


# --- the cache -------------------------------------------------------------------------------


def test_second_call_loads_the_cache_instead_of_decoding(tmp_path, count_decodes, solution):
    root = make_folder(tmp_path / "data")
    first = quiet(solution["get_dataloader"](2, 32, str(root)))
    second = quiet(solution["get_dataloader"](2, 32, str(root)))
    assert len(count_decodes) == 1
    assert torch.equal(first[1], second[1])
    assert len(cache_files(root)) == 1
    assert re.search(r"5 training images of 3x32x32 .*decoded once and cached", first[2][0])
    assert re.search(r"loaded from the cache .*2 batches of 2", second[2][0])


def test_cache_is_a_file_that_imagefolder_ignores(tmp_path, solution):
    root = make_folder(tmp_path / "data")
    quiet(solution["get_dataloader"](2, 32, str(root)))
    # A folder would be taken for an empty class and break the learner's loader.
    assert len(solution["get_dataloader"](5, 32, str(root)).dataset) == 5


def test_touching_an_image_invalidates_the_cache(tmp_path, count_decodes, solution):
    root = make_folder(tmp_path / "data")
    quiet(solution["get_dataloader"](2, 32, str(root)))
    old = cache_files(root)
    path = root / "faces" / "001.jpg"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    quiet(solution["get_dataloader"](2, 32, str(root)))
    assert len(count_decodes) == 2
    assert cache_files(root) != old and len(cache_files(root)) == 1, "stale cache not replaced"


def test_adding_or_removing_an_image_invalidates_the_cache(tmp_path, count_decodes, solution):
    root = make_folder(tmp_path / "data")
    quiet(solution["get_dataloader"](2, 32, str(root)))
    imagefiles.rgb_image(root / "faces" / "999.png", size=(40, 40), seed=99)
    assert quiet(solution["get_dataloader"](2, 32, str(root)))[1].shape[0] == 6
    (root / "faces" / "000.png").unlink()
    assert quiet(solution["get_dataloader"](2, 32, str(root)))[1].shape[0] == 5
    assert len(count_decodes) == 3


def test_read_only_folder_caches_under_the_user_cache_dir(
    tmp_path, monkeypatch, count_decodes, user_cache, solution
):
    root = make_folder(tmp_path / "data")
    real_mkstemp = files.tempfile.mkstemp

    def read_only_mount(*args, dir=None, **kw):
        if str(dir).startswith(str(root)):
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real_mkstemp(*args, dir=dir, **kw)

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only_mount)
    first = quiet(solution["get_dataloader"](2, 32, str(root)))
    second = quiet(solution["get_dataloader"](2, 32, str(root)))
    assert cache_files(root) == [] and len(count_decodes) == 1
    assert len(list(user_cache.glob("data-*.pt"))) == 1
    assert "decoded once and cached" in first[2][0] and "loaded from the cache" in second[2][0]


def test_full_disk_trains_without_the_cache_with_one_notice(
    tmp_path, monkeypatch, user_cache, solution
):
    root = make_folder(tmp_path / "data")
    real = files.atomic_write

    class FullDisk(io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    @contextlib.contextmanager
    def full_disk(path, mode="wb"):
        with real(path, mode) as f:
            yield FullDisk(f)

    monkeypatch.setattr(fastdata, "atomic_write", full_disk)
    train_loader, images, lines = quiet(solution["get_dataloader"](2, 32, str(root)))
    assert len(lines) == 2, lines
    assert re.match(
        r"Fast loader: could not cache the images: No space left on device while writing "
        r".*data/\.kit_images_\w+\.pt; free 1 MB and rerun to keep the cache\. Training goes "
        r"on without the cache",
        lines[0],
    )
    assert "decoded once (not cached)" in lines[1]
    assert cache_files(root) == [] and leftovers(root, user_cache) == []
    assert len(train_loader) == 2 and images.shape == (5, 3, 32, 32)


def test_non_utf8_file_name_is_fingerprinted_and_trained(tmp_path, solution):
    root = make_folder(tmp_path / "data", n=2)
    latin1 = os.fsdecode(b"Zo\xeb.png")  # as a Windows zip extracts it on Linux
    imagefiles.rgb_image(root / "faces" / latin1, size=(40, 40), seed=7)
    train_loader, images, lines = quiet(solution["get_dataloader"](3, 32, str(root)))
    assert images.shape[0] == 3 and len(cache_files(root)) == 1
    lines[0].encode("utf-8")  # strict: the printed line has no undecodable bytes


def test_damaged_cache_is_decoded_again(tmp_path, solution):
    root = make_folder(tmp_path / "data")
    first = quiet(solution["get_dataloader"](2, 32, str(root)))[1]
    (root / cache_files(root)[0]).write_bytes(b"not a tensor")
    assert torch.equal(quiet(solution["get_dataloader"](2, 32, str(root)))[1], first)


def test_unreadable_image_is_named_in_a_plain_error(tmp_path, solution):
    root = make_folder(tmp_path / "data")
    imagefiles.truncated_jpeg(root / "faces" / "broken.jpg")
    with pytest.raises(ValueError, match=r"broken\.jpg.*find_data_dir"):
        quiet(solution["get_dataloader"](2, 32, str(root)))


def test_too_few_images_for_n_eval_and_a_batch_says_what_to_change(tmp_path, solution):
    root = make_folder(tmp_path / "data", n=5)
    with pytest.raises(ValueError) as err:
        quiet(solution["get_dataloader"](4, 32, str(root)), hold_out=3)
    assert str(err.value).startswith(
        f"Found 5 images in {root}; 3 of them are held out to evaluate G (n_eval), which leaves "
        "2 to train on: fewer than one batch of 4. Use at least 7 images"
    )
    assert "lower n_eval or batch_size in the hyperparameters cell" in str(err.value)


# --- FastLoader ------------------------------------------------------------------------------


def test_batches_are_float_images_in_0_1_with_zero_long_labels():
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    batch, labels = next(iter(FastLoader(images, 4, "cpu")))
    assert batch.shape == (4, 3, 8, 8) and batch.dtype == torch.float32
    assert batch.min() >= 0 and batch.max() <= 1
    assert labels.dtype == torch.long and torch.equal(labels, torch.zeros(4, dtype=torch.long))


def test_len_counts_batches_with_and_without_drop_last():
    images = torch.zeros(10, 3, 8, 8, dtype=torch.uint8)
    assert len(FastLoader(images, 4, "cpu")) == 2
    assert [b.shape[0] for b, _ in FastLoader(images, 4, "cpu")] == [4, 4]
    assert len(FastLoader(images, 4, "cpu", drop_last=False)) == 3
    assert [b.shape[0] for b, _ in FastLoader(images, 4, "cpu", drop_last=False)] == [4, 4, 2]


def test_each_epoch_is_a_new_permutation_of_all_images():
    # Image i is filled with the value i, so a batch says which images it holds.
    images = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 3, 2, 2).contiguous()
    loader = FastLoader(images, 5, "cpu", drop_last=False, seed=0)

    def epoch():
        return [round(v.item() * 255) for b, _ in loader for v in b[:, 0, 0, 0]]

    first, second = epoch(), epoch()
    assert sorted(first) == list(range(20)) and sorted(second) == list(range(20))
    assert first != second, "two epochs gave the same order: not reshuffled"
    assert first != list(range(20))


def test_same_seed_gives_the_same_order_and_flips():
    images = torch.randint(0, 256, (16, 3, 4, 4), dtype=torch.uint8)
    a = [b for b, _ in FastLoader(images, 4, "cpu", seed=3, flips=[(-1, 0.5)])]
    b = [b for b, _ in FastLoader(images, 4, "cpu", seed=3, flips=[(-1, 0.5)])]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_channels_last_option_gives_channels_last_batches():
    images = torch.randint(0, 256, (8, 3, 4, 4), dtype=torch.uint8)
    batch, _ = next(iter(FastLoader(images, 4, "cpu", channels_last=True)))
    assert batch.is_contiguous(memory_format=torch.channels_last)


def test_batch_larger_than_the_data_is_refused_plainly():
    with pytest.raises(ValueError, match="larger than the 3 training images"):
        FastLoader(torch.zeros(3, 3, 4, 4, dtype=torch.uint8), 8, "cpu")


def test_float_images_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="uint8.*load_dataset"):
        FastLoader(torch.rand(4, 3, 8, 8), 2, "cpu")


def test_load_dataset_reports_the_cache_state(tmp_path, solution):
    root = make_folder(tmp_path / "data")
    dataset = solution["get_dataloader"](2, 32, str(root)).dataset
    assert load_dataset(dataset, progress=False).cache == "miss"
    hit = load_dataset(dataset, progress=False)
    assert hit.cache == "hit" and hit.path.parent == root and hit.flips == ()


def test_notebook_train_runs_one_epoch_on_a_fast_loader(tmp_path, solution):
    root = make_folder(tmp_path / "data", n=4)
    train_loader, _, _ = quiet(solution["get_dataloader"](2, 32, str(root)), seed=0)
    losses, samples, g_changed = train_one_epoch(
        solution, train_loader, checkpoint_path=tmp_path / "ck.pt"
    )
    assert len(losses) == 2 and len(samples) == 1 and samples[0].shape == (3, 3, 32, 32)
    assert g_changed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_the_images_live_on_the_gpu_and_batches_come_from_there():
    images = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    loader = FastLoader(images, 4, "cuda", channels_last=True, shuffle=False, flips=[(-1, 1.0)])
    assert loader.images.is_cuda
    batch, labels = next(iter(loader))
    assert batch.is_cuda and labels.is_cuda
    assert batch.is_contiguous(memory_format=torch.channels_last)
    # the GPU divides by 255 through a reciprocal: equal up to one float32 rounding step
    expected = images[:4].flip(-1).float() / 255
    torch.testing.assert_close(batch.cpu(), expected, rtol=0, atol=1e-7)


def test_full_disk_seen_by_torchs_own_writer_is_also_a_notice(
    tmp_path, monkeypatch, user_cache, solution
):
    """torch.save on a full disk raises RuntimeError ("unexpected pos"), not OSError."""
    import collections

    root = make_folder(tmp_path / "data")

    def save(obj, f, *args, **kwargs):
        f.write(b"half a tensor")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(fastdata.torch, "save", save)
    monkeypatch.setattr(fastdata.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 0))
    train_loader, _, lines = quiet(solution["get_dataloader"](2, 32, str(root)))
    assert lines[0].startswith("Fast loader: could not cache the images: No space left on device")
    assert cache_files(root) == [] and leftovers(root, user_cache) == [] and len(train_loader) == 2


def test_something_other_than_a_dataloader_is_refused_plainly(tmp_path):
    root = make_folder(tmp_path / "data", n=2)
    dataset = datasets.ImageFolder(str(root), transform=transforms.ToTensor())
    with pytest.raises(
        TypeError, match="needs the DataLoader your get_dataloader returns.*got a ImageFolder"
    ):
        fast_loader(dataset, "cpu")
