"""Specification of helpers.fastdata: the same pixels as the learner's get_dataloader, decoded once,
cached while the folder is unchanged, and served in shuffled batches the notebook's train accepts."""
import contextlib
import io
import os
import re

import pytest
import torch

from helpers import fastdata
from helpers.fastdata import FastLoader, fast_dataloader, load_image_tensor
from helpers.notebook import load_solution
from tests.tiny_training import train_one_epoch
from tests import imagefiles


@pytest.fixture(scope='module')
def solution():
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution()


def make_folder(root, n=5):
    """root/faces/ with n RGB images of different shapes and formats, non-square ones included."""
    shapes = [(64, 64), (50, 80), (90, 40), (33, 33), (120, 70)]
    for i in range(n):
        ext = 'jpg' if i % 2 else 'png'
        imagefiles.rgb_image(root / 'faces' / f'{i:03d}.{ext}', size=shapes[i % len(shapes)], seed=i)
    return root


def cache_files(root):
    return sorted(p.name for p in root.glob('.kit_images_*.pt'))


@pytest.fixture
def count_decodes(monkeypatch):
    """Counts calls of the decoding step, which a cache hit skips."""
    calls = []
    real = fastdata._decode_all

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fastdata, '_decode_all', counting)
    return calls


def test_pixels_equal_the_learner_get_dataloader_including_non_square_images(tmp_path, solution):
    root = make_folder(tmp_path / 'data')
    learner = solution['get_dataloader'](5, 32, str(root)).dataset
    expected = torch.stack([learner[i][0] for i in range(len(learner))])

    images = load_image_tensor(root, 32, progress=False)
    assert images.dtype == torch.uint8 and images.shape == (5, 3, 32, 32)
    batch, _ = next(iter(FastLoader(images, 5, 'cpu', shuffle=False)))
    assert torch.equal(batch, expected), 'FastLoader pixels differ from get_dataloader\'s'


def test_limit_keeps_the_first_images_in_imagefolder_order(tmp_path):
    root = make_folder(tmp_path / 'data')
    all_images = load_image_tensor(root, 32, cache=False, progress=False)
    first = load_image_tensor(root, 32, limit=2, cache=False, progress=False)
    assert torch.equal(first, all_images[:2])


def test_second_call_loads_the_cache_instead_of_decoding(tmp_path, count_decodes):
    root = make_folder(tmp_path / 'data')
    first = load_image_tensor(root, 32, progress=False)
    second = load_image_tensor(root, 32, progress=False)
    assert len(count_decodes) == 1
    assert torch.equal(first, second)
    assert len(cache_files(root)) == 1 and cache_files(root)[0].startswith('.kit_images_32px_')


def test_cache_is_a_file_that_imagefolder_ignores(tmp_path, solution):
    root = make_folder(tmp_path / 'data')
    load_image_tensor(root, 32, progress=False)
    # A folder would be taken for an empty class and break the learner's loader.
    assert len(solution['get_dataloader'](5, 32, str(root)).dataset) == 5


def test_touching_an_image_invalidates_the_cache(tmp_path, count_decodes):
    root = make_folder(tmp_path / 'data')
    load_image_tensor(root, 32, progress=False)
    old = cache_files(root)
    path = root / 'faces' / '001.jpg'
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    load_image_tensor(root, 32, progress=False)
    assert len(count_decodes) == 2
    assert cache_files(root) != old and len(cache_files(root)) == 1, 'stale cache not replaced'


def test_adding_an_image_invalidates_the_cache(tmp_path, count_decodes):
    root = make_folder(tmp_path / 'data')
    load_image_tensor(root, 32, progress=False)
    imagefiles.rgb_image(root / 'faces' / '999.png', size=(40, 40), seed=99)
    images = load_image_tensor(root, 32, progress=False)
    assert len(count_decodes) == 2 and images.shape[0] == 6


def test_removing_an_image_invalidates_the_cache(tmp_path, count_decodes):
    root = make_folder(tmp_path / 'data')
    load_image_tensor(root, 32, progress=False)
    (root / 'faces' / '000.png').unlink()
    images = load_image_tensor(root, 32, progress=False)
    assert len(count_decodes) == 2 and images.shape[0] == 4


def test_another_image_size_gets_its_own_cache(tmp_path):
    root = make_folder(tmp_path / 'data')
    assert load_image_tensor(root, 32, progress=False).shape[-1] == 32
    assert load_image_tensor(root, 16, progress=False).shape[-1] == 16
    assert len(cache_files(root)) == 2


def test_read_only_folder_caches_under_the_user_cache_dir(tmp_path, monkeypatch, count_decodes):
    root = make_folder(tmp_path / 'data')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    monkeypatch.setattr(fastdata.os, 'access', lambda path, mode: False)  # root ignores chmod
    load_image_tensor(root, 32, progress=False)
    load_image_tensor(root, 32, progress=False)
    assert cache_files(root) == []
    assert len(list((tmp_path / 'cache' / 'dcgan-face-kit').glob('data-*.pt'))) == 1
    assert len(count_decodes) == 1


def test_damaged_cache_is_decoded_again(tmp_path):
    root = make_folder(tmp_path / 'data')
    first = load_image_tensor(root, 32, progress=False)
    (root / cache_files(root)[0]).write_bytes(b'not a tensor')
    assert torch.equal(load_image_tensor(root, 32, progress=False), first)


def test_unreadable_image_is_named_in_a_plain_error(tmp_path):
    root = make_folder(tmp_path / 'data')
    imagefiles.truncated_jpeg(root / 'faces' / 'broken.jpg')
    with pytest.raises(ValueError, match=r'broken\.jpg.*find_data_dir'):
        load_image_tensor(root, 32, progress=False)


def test_missing_folder_says_which_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        load_image_tensor(tmp_path / 'nowhere', 32)


def test_batches_are_float_images_in_0_1_with_zero_long_labels():
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    batch, labels = next(iter(FastLoader(images, 4, 'cpu')))
    assert batch.shape == (4, 3, 8, 8) and batch.dtype == torch.float32
    assert 0 <= batch.min() and batch.max() <= 1
    assert labels.dtype == torch.long and torch.equal(labels, torch.zeros(4, dtype=torch.long))


def test_len_counts_batches_with_and_without_drop_last():
    images = torch.zeros(10, 3, 8, 8, dtype=torch.uint8)
    assert len(FastLoader(images, 4, 'cpu')) == 2
    assert [b.shape[0] for b, _ in FastLoader(images, 4, 'cpu')] == [4, 4]
    assert len(FastLoader(images, 4, 'cpu', drop_last=False)) == 3
    assert [b.shape[0] for b, _ in FastLoader(images, 4, 'cpu', drop_last=False)] == [4, 4, 2]


def test_each_epoch_is_a_new_permutation_of_all_images():
    # Image i is filled with the value i, so a batch says which images it holds.
    images = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 3, 2, 2).contiguous()
    loader = FastLoader(images, 5, 'cpu', drop_last=False, seed=0)

    def epoch():
        return [round(v.item() * 255) for b, _ in loader for v in b[:, 0, 0, 0]]

    first, second = epoch(), epoch()
    assert sorted(first) == list(range(20)) and sorted(second) == list(range(20))
    assert first != second, 'two epochs gave the same order: not reshuffled'
    assert first != list(range(20))


def test_same_seed_gives_the_same_order():
    images = torch.randint(0, 256, (16, 3, 4, 4), dtype=torch.uint8)
    a = [b for b, _ in FastLoader(images, 4, 'cpu', seed=3)]
    b = [b for b, _ in FastLoader(images, 4, 'cpu', seed=3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_channels_last_option_gives_channels_last_batches():
    images = torch.randint(0, 256, (8, 3, 4, 4), dtype=torch.uint8)
    batch, _ = next(iter(FastLoader(images, 4, 'cpu', channels_last=True)))
    assert batch.is_contiguous(memory_format=torch.channels_last)


def test_batch_larger_than_the_data_is_refused_plainly():
    with pytest.raises(ValueError, match='larger than the 3 images'):
        FastLoader(torch.zeros(3, 3, 4, 4, dtype=torch.uint8), 8, 'cpu')


def test_float_images_are_refused_with_the_fix():
    with pytest.raises(ValueError, match='uint8.*load_image_tensor'):
        FastLoader(torch.rand(4, 3, 8, 8), 2, 'cpu')


def test_fast_dataloader_prints_one_summary_line(tmp_path, capsys):
    root = make_folder(tmp_path / 'data')
    fast_dataloader(root, 32, 2, 'cpu', progress=False)
    loader = fast_dataloader(root, 32, 2, 'cpu', progress=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert re.search(r'5 images of 32x32 .*decoded once and cached', lines[0])
    assert re.search(r'loaded from the cache .*2 batches of 2', lines[1])
    assert len(loader) == 2


def test_notebook_train_runs_one_epoch_on_a_fast_loader(tmp_path, solution):
    root = make_folder(tmp_path / 'data', n=4)
    loader = FastLoader(load_image_tensor(root, 32, progress=False), 2, 'cpu', seed=0)
    losses, samples, g_changed = train_one_epoch(solution, loader, checkpoint_path=tmp_path / 'ck.pt')
    assert len(losses) == 2 and len(samples) == 1 and samples[0].shape == (3, 3, 32, 32)
    assert g_changed


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_on_cuda_the_images_live_on_the_gpu_and_batches_come_from_there():
    images = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    loader = FastLoader(images, 4, 'cuda', channels_last=True, shuffle=False)
    assert loader.images.is_cuda
    batch, labels = next(iter(loader))
    assert batch.is_cuda and labels.is_cuda
    assert batch.is_contiguous(memory_format=torch.channels_last)
    # the GPU divides by 255 through a reciprocal: equal up to one float32 rounding step
    torch.testing.assert_close(batch.cpu(), images[:4].float() / 255, rtol=0, atol=1e-7)
