"""Specification of helpers.gpu: nothing changes on the CPU; on CUDA, channels_last weights and
bf16 autocast inside forward, with float32 outputs.

The CUDA tests are skipped where there is no GPU (they cannot run without one); run them on a
GPU machine with ``pytest tests/test_gpu.py``.
"""

import contextlib
import copy
import io

import pytest
import torch

from helpers import gpu
from helpers.notebook import load_solution

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def solution():
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution()


def small_models(solution, seed=0):
    torch.manual_seed(seed)
    D, G = solution["Discriminator"](8), solution["Generator"](z_size=16, conv_dim=8)
    D.apply(solution["weights_init_normal"])
    G.apply(solution["weights_init_normal"])
    return D, G


def test_autocast_is_a_no_op_on_the_cpu():
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 4)
    x = torch.rand(8, 16) * 2 - 1
    expected = layer(x)
    with gpu.autocast(torch.device("cpu")):
        got = layer(x)
    assert got.dtype == torch.float32
    assert torch.equal(got, expected)


def test_prepare_models_on_the_cpu_returns_the_same_models_with_identical_outputs(solution):
    D, G = small_models(solution)
    z = torch.rand(4, 16) * 2 - 1
    G.eval()
    D.eval()
    fake_before = G(z)
    score_before = D(fake_before)

    D2, G2 = gpu.prepare_models("cpu", D, G)
    assert D2 is D and G2 is G
    assert "forward" not in D.__dict__ and "forward" not in G.__dict__, (
        "forward was wrapped on the CPU"
    )
    assert all(p.is_contiguous() for p in list(D.parameters()) + list(G.parameters()))
    assert torch.equal(G(z), fake_before) and torch.equal(D(fake_before), score_before)


def test_prepare_models_leaves_training_on_the_cpu_bit_for_bit_the_same(solution):
    def one_step(prepare):
        D, G = small_models(solution)
        if prepare:
            D, G = gpu.prepare_models("cpu", D, G)
        opt = torch.optim.Adam(G.parameters(), lr=0.0002, betas=(0.5, 0.999))
        torch.manual_seed(1)
        loss = solution["real_loss"](D(G(torch.rand(4, 16) * 2 - 1)))
        loss.backward()
        opt.step()
        return [p.detach().clone() for p in G.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(one_step(False), one_step(True)))


def test_bf16_is_never_reported_for_the_cpu():
    assert gpu.bf16_supported("cpu") is False


@cuda_only
def test_on_cuda_weights_are_channels_last_and_outputs_float32_close_to_float32(solution):
    D, G = small_models(solution)
    ref_D, ref_G = copy.deepcopy(D).cuda().eval(), copy.deepcopy(G).cuda().eval()
    D, G = gpu.prepare_models("cuda", D, G)
    D.eval()
    G.eval()
    assert torch.backends.cudnn.benchmark is True
    conv = G.deconv1[0].weight
    assert conv.is_cuda and conv.is_contiguous(memory_format=torch.channels_last)
    z = torch.rand(16, 16, device="cuda") * 2 - 1
    fake, ref_fake = G(z), ref_G(z)
    assert fake.dtype == torch.float32 and D(fake).dtype == torch.float32
    if gpu.bf16_supported("cuda"):
        assert "forward" in G.__dict__, "forward should run under bf16 autocast"
    assert torch.allclose(fake, ref_fake, atol=0.05), "bf16 outputs far from float32 ones"
    assert torch.allclose(D(fake), ref_D(fake), atol=0.05, rtol=0.05)


@cuda_only
def test_on_cuda_prepare_models_twice_wraps_forward_once_and_deepcopy_rebinds(solution):
    D, G = small_models(solution)
    gpu.prepare_models("cuda", G)
    gpu.prepare_models("cuda", G)
    if not gpu.bf16_supported("cuda"):
        pytest.skip("this GPU has no bfloat16: forward is not wrapped")
    assert G.forward.__self__ is G and G.forward.__func__ is gpu._autocast_forward
    G2 = copy.deepcopy(G)
    assert G2.forward.__self__ is G2, "a copy must run its own weights"


@cuda_only
def test_on_cuda_autocast_runs_matmuls_in_bf16():
    if not gpu.bf16_supported("cuda"):
        pytest.skip("this GPU has no bfloat16")
    a = torch.rand(8, 8, device="cuda")
    with gpu.autocast(torch.device("cuda")):
        assert (a @ a).dtype == torch.bfloat16
    assert (a @ a).dtype == torch.float32


@cuda_only
def test_on_cuda_the_notebook_train_runs_with_the_kit_path(solution, tmp_path):
    from helpers.fastdata import FastLoader

    D, G = gpu.prepare_models("cuda", *small_models(solution))
    d_opt = torch.optim.Adam(D.parameters(), lr=0.0002, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=0.0002, betas=(0.5, 0.999))
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    loader = FastLoader(images, 4, "cuda", channels_last=True, seed=0)
    with contextlib.redirect_stdout(io.StringIO()):
        losses, samples = solution["train"](
            D,
            G,
            d_opt,
            g_opt,
            loader,
            2,
            16,
            torch.device("cuda"),
            print_every=1,
            checkpoint_path=tmp_path / "ck.pt",
            sample_size=4,
        )
    assert len(losses) == 8 and all(torch.isfinite(torch.tensor(pair)).all() for pair in losses)
    assert samples[-1].dtype == torch.float32 and samples[-1].shape == (4, 3, 32, 32)
