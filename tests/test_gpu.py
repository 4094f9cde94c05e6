"""Specification of helpers.gpu: nothing changes on the CPU; on CUDA, channels_last weights and
bf16 autocast inside forward, with float32 outputs; no host synchronisation outside logging
steps. Also the opt-in extras of helpers/scale/ (torch.compile in helpers.scale.compile, fused
Adam in helpers.scale.fused_adam), refused off CUDA, and the GPU options of
benchmarks/throughput.py.

The CUDA tests are skipped where there is no GPU (they cannot run without one); run them on a
GPU machine with ``pytest tests/test_gpu.py`` (benchmarks/gpu_check.sh does).
"""

import contextlib
import copy
import io
import json
import os

import pytest
import torch

from benchmarks import throughput
from helpers import gpu
from helpers.monitor import DiscriminatorProbe
from helpers.notebook import load_solution
from helpers.scale.compile import (
    COMPILE_MODES,
    _compile_forward,
    check_compile_mode,
    compile_models,
)
from helpers.scale.fused_adam import _use_fused, prepare_optimizers

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


class Batches:
    """A fixed list of (images, labels) batches, the same on every pass."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def tiny_batches(n=3, batch_size=4, seed=5):
    g = torch.Generator().manual_seed(seed)
    return Batches([(torch.rand(batch_size, 3, 32, 32, generator=g), None) for _ in range(n)])


def train_tiny(solution, prepare=None, epochs=2):
    """The notebook's train on tiny nets and data, seeded; returns losses, samples, weights."""
    D, G = small_models(solution)
    if prepare is not None:
        D, G = prepare(D, G)
    d_opt = torch.optim.Adam(D.parameters(), lr=0.0002, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=0.0002, betas=(0.5, 0.999))
    if prepare is not None:
        prepare_optimizers("cpu", d_opt, g_opt)
    torch.manual_seed(3)
    with contextlib.redirect_stdout(io.StringIO()):
        losses, samples = solution["train"](
            D, G, d_opt, g_opt, tiny_batches(), epochs, 16, torch.device("cpu"), print_every=2
        )
    weights = [p.detach().clone() for p in [*D.parameters(), *G.parameters()]]
    return losses, samples, weights, (d_opt, g_opt)


def test_the_new_options_left_at_their_defaults_train_on_the_cpu_bit_for_bit_as_before(solution):
    before = train_tiny(solution)
    after = train_tiny(solution, lambda D, G: compile_models("cpu", D, G, mode="off"))
    assert before[0] == after[0], "losses differ"
    assert all(torch.equal(a, b) for a, b in zip(before[1], after[1])), "samples differ"
    assert all(torch.equal(a, b) for a, b in zip(before[2], after[2])), "weights differ"
    for plain, prepared in zip(before[3], after[3]):
        assert prepared.param_groups[0]["fused"] is None, "the CPU optimizer was switched"
        assert not hasattr(prepared, "_kit_fused_from")
        assert plain.state_dict()["param_groups"] == prepared.state_dict()["param_groups"]


@pytest.mark.parametrize("mode", [None, *COMPILE_MODES])
def test_every_compile_mode_is_accepted(mode):
    assert check_compile_mode(mode) == (mode or "off")


@pytest.mark.parametrize("mode", ["reduce_overhead", "max", "", True])
def test_an_unknown_compile_mode_is_refused_with_the_choices(mode):
    with pytest.raises(ValueError, match="reduce-overhead") as error:
        check_compile_mode(mode)
    assert repr(mode) in str(error.value)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_compile_is_refused_off_cuda_with_a_clear_message(solution, device):
    D, G = small_models(solution)
    with pytest.raises(ValueError, match="CUDA GPUs") as error:
        compile_models(device, D, G, mode="reduce-overhead")
    assert "Leave compile out" in str(error.value)
    assert "forward" not in G.__dict__ and next(G.parameters()).device.type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a CUDA GPU")
def test_compile_on_cuda_is_refused_where_pytorch_sees_no_gpu(solution):
    D, _ = small_models(solution)
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        compile_models("cuda", D, mode="default")


def test_prepare_optimizers_leaves_cpu_optimizers_alone_and_refuses_an_explicit_fused():
    layer = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(layer.parameters(), lr=0.0002, betas=(0.5, 0.999))
    groups_before = copy.deepcopy(opt.state_dict()["param_groups"])
    assert prepare_optimizers("cpu", opt) == (opt,)
    assert prepare_optimizers("cpu", opt, fused=False) == (opt,)
    assert opt.state_dict()["param_groups"] == groups_before
    with pytest.raises(ValueError, match="CUDA GPUs") as error:
        prepare_optimizers("cpu", opt, fused=True)
    assert "Leave fused out" in str(error.value)
    with pytest.raises(ValueError, match="None, True or False"):
        prepare_optimizers("cpu", opt, fused="yes")
    assert opt.state_dict()["param_groups"] == groups_before


def adam_after_steps(seed=0, steps=2):
    torch.manual_seed(seed)
    layer = torch.nn.Linear(6, 3)
    opt = torch.optim.Adam(layer.parameters(), lr=0.01, betas=(0.5, 0.999))
    x = torch.rand(5, 6) * 2 - 1

    def step():
        opt.zero_grad()
        layer(x).square().mean().backward()
        opt.step()

    for _ in range(steps):
        step()
    return layer, opt, step


def test_the_fused_switch_keeps_hyperparameters_and_state_and_saves_a_plain_adam():
    # The switch itself runs on the CPU too (PyTorch has a CPU fused Adam); the public
    # prepare_optimizers only uses it on CUDA.
    layer, opt, step = adam_after_steps()
    ref_layer, ref_opt, ref_step = adam_after_steps()
    moments = {k: v["exp_avg"].clone() for k, v in enumerate(opt.state.values())}
    _use_fused(opt)
    assert all(g["fused"] is True and g["foreach"] is False for g in opt.param_groups)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["betas"] == (0.5, 0.999)
    assert all(torch.equal(moments[k], v["exp_avg"]) for k, v in enumerate(opt.state.values()))
    step()
    ref_step()
    for p, q in zip(layer.parameters(), ref_layer.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)  # same maths, other rounding

    saved = opt.state_dict()
    plain = ref_opt.state_dict()
    assert saved["param_groups"] == plain["param_groups"], "the checkpoint records fused"
    assert all(s["step"].device.type == "cpu" for s in saved["state"].values())
    assert all(g["fused"] is True for g in opt.param_groups), "saving switched it back"

    _use_fused(opt)  # twice: the hooks are registered once
    assert len(opt._optimizer_state_dict_post_hooks) == 1
    opt.load_state_dict(plain)  # e.g. resuming a checkpoint
    assert all(g["fused"] is True for g in opt.param_groups), "loading undid the switch"
    ref_opt.load_state_dict(saved)
    assert ref_opt.param_groups[0]["fused"] is None


def test_a_compiled_forward_trains_the_notebook_train_bit_for_bit_like_eager(solution):
    # The inductor backend needs a GPU here; dynamo with its "eager" backend checks the
    # plumbing on the CPU: the learner's nets traced, train's probe hooks, deepcopy, state_dict.
    def compile_eager(D, G):
        for model in (D, G):
            _compile_forward(model, "default", backend="eager")
        return D, G

    before = train_tiny(solution)
    after = train_tiny(solution, compile_eager)
    assert before[0] == after[0], "losses (and the probe's D(x), D(G(z))) differ"
    assert all(torch.equal(a, b) for a, b in zip(before[1], after[1]))
    assert all(torch.equal(a, b) for a, b in zip(before[2], after[2]))

    D, G = compile_eager(*small_models(solution))
    plain_D, _ = small_models(solution)
    assert list(D.state_dict()) == list(plain_D.state_dict()) and repr(D) == repr(plain_D)
    copied = copy.deepcopy(D)
    assert copied.forward.__self__ is copied, "a copy must run its own weights"
    probe = DiscriminatorProbe(D, G, *train_tiny(solution)[3])
    D(G(torch.rand(4, 16) * 2 - 1))
    seen = dict(probe._counts)
    probe.close()
    assert seen == {"real": 0, "fake": 4}, "D's forward hook no longer sees the calls"


def test_compiled_nets_with_fused_adam_save_plain_checkpoints_and_resume_from_them(
    solution, tmp_path
):
    # The CUDA path's plumbing on the CPU: dynamo's eager backend and PyTorch's CPU fused Adam.
    def run(seed, epochs):
        D, G = small_models(solution, seed)
        for model in (D, G):
            _compile_forward(model, "reduce-overhead", backend="eager")
        d_opt = torch.optim.Adam(D.parameters(), lr=0.0002, betas=(0.5, 0.999))
        g_opt = torch.optim.Adam(G.parameters(), lr=0.0002, betas=(0.5, 0.999))
        _use_fused(d_opt)
        _use_fused(g_opt)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            losses, _ = solution["train"](
                D,
                G,
                d_opt,
                g_opt,
                tiny_batches(),
                epochs,
                16,
                torch.device("cpu"),
                print_every=1,
                checkpoint_path=tmp_path / "ck.pt",
                sample_size=4,
            )
        return losses, printed.getvalue(), d_opt

    losses, _, _ = run(seed=0, epochs=1)
    state = torch.load(tmp_path / "ck.pt", weights_only=False)
    assert not any("_orig_mod" in key for key in state["G"])
    assert state["d_optimizer"]["param_groups"][0]["fused"] is None, "saved as a plain Adam"
    resumed, printed, d_opt = run(seed=1, epochs=2)  # other weights: only a resume repeats
    assert "Resuming from" in printed
    assert resumed[: len(losses)] == losses and len(resumed) == 2 * len(losses)
    assert d_opt.param_groups[0]["fused"] is True, "resuming undid the switch"


@pytest.mark.parametrize(
    "text, name",
    [
        ("", "kit"),
        ("fused", "kit+fused"),
        ("compile=reduce-overhead+fused", "kit+fused+compile=reduce-overhead"),
        ("fp32+compile=max-autotune", "kit+fp32+compile=max-autotune"),
    ],
)
def test_throughput_variants_are_parsed_into_kit_options(text, name):
    assert throughput.variant_name(text) == name
    options = throughput.parse_variant(text)
    assert options["fused"] == ("fused" in text) and options["bf16"] == ("fp32" not in text)


@pytest.mark.parametrize("text", ["fast", "compile=turbo", "fused+cudagraphs"])
def test_throughput_refuses_an_unknown_variant(text):
    with pytest.raises(ValueError, match="fused|compile"):
        throughput.parse_variant(text)


def test_throughput_refuses_gpu_variants_on_the_cpu(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        throughput.main(["--data", str(tmp_path), "--device", "cpu", "--variants", "fused"])
    assert "CUDA" in str(error.value) and "leave --variants out" in str(error.value)
    with pytest.raises(SystemExit) as error:
        throughput.main(["--data", str(tmp_path), "--device", "cpu", "--swd-steps", "-1"])
    assert "--swd-steps" in str(error.value)
    with pytest.raises(SystemExit):
        throughput.parse_args(["--image-size", "48"])
    assert "invalid choice: 48" in capsys.readouterr().err


def test_throughput_64x64_nets_are_built_from_the_notebook_conv_and_deconv(solution):
    D, G = throughput.build_models(solution, 4, 4, 16, image_size=64)
    z = torch.rand(3, 16) * 2 - 1
    assert G(z).shape == (3, 3, 64, 64) and D(G(z)).shape == (3, 1)
    notebook_block = type(solution["conv"](3, 4, 4))
    assert type(D.conv4) is notebook_block and type(G.deconv4) is notebook_block
    assert G.deconv4[0].weight.std() < 0.05, "weights_init_normal was not applied"
    with pytest.raises(ValueError, match="32, 64"):
        throughput.build_models(solution, 4, 4, 16, image_size=128)


def test_throughput_at_64x64_reports_swd_at_an_equal_number_of_steps(tmp_path, capsys):
    from helpers.faces import make_faces

    faces = make_faces(tmp_path / "faces", n=80, workers=1, progress=False)
    before = torch.get_num_threads()
    try:
        result = throughput.main(
            [
                "--data",
                str(faces),
                "--device",
                "cpu",
                "--in-process",
                "--threads",
                "1",
                "--image-size",
                "64",
                "--conv-dim",
                "4",
                "--batch-size",
                "8",
                "--steps",
                "2",
                "--warmup",
                "1",
                "--swd-steps",
                "2",
                "--n-eval",
                "16",
            ]
        )
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1]) == result
    assert set(result["recipes"]) == {"course", "kit"}, "no GPU variant on the CPU"
    assert result["image_size"] == 64
    for r in result["recipes"].values():
        assert r["compile_s"] >= 0 and r["startup_s"] > 0
    swd = result["swd"]
    assert swd["steps"] == 2 and swd["floor"] > 0 and set(swd["recipes"]) == {"kit"}
    assert swd["recipes"]["kit"]["images"] == 2 * 8 and swd["recipes"]["kit"]["swd"] > 0
    assert "SWD x 1e3 after 2 steps" in out


def test_distributed_offers_compile_and_fused_adam_off_by_default():
    from helpers.scale import distributed

    args = distributed.parse_args([])
    assert args.compile == "off" and args.fused_adam is False
    args = distributed.parse_args(["--compile", "reduce-overhead", "--fused-adam"])
    assert args.compile == "reduce-overhead" and args.fused_adam is True
    with pytest.raises(SystemExit):
        distributed.parse_args(["--compile", "fast"])


@pytest.mark.parametrize("flags", [["--compile", "default"], ["--fused-adam"]])
def test_distributed_refuses_the_gpu_options_on_the_cpu_before_starting(monkeypatch, flags):
    from helpers.scale import distributed

    # --device cpu hides the GPUs from this process; the test puts the variable back
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    with pytest.raises(SystemExit) as error:
        distributed.setup(["--device", "cpu", *flags])
    assert flags[0] in str(error.value) and "CPU" in str(error.value)
    assert not torch.distributed.is_initialized(), "a process group started before the check"


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
    assert G.forward.__self__ is G and G.forward.__func__ is gpu.autocast_forward
    G2 = copy.deepcopy(G)
    assert G2.forward.__self__ is G2, "a copy must run its own weights"


@cuda_only
def test_on_cuda_prepare_models_after_compile_models_keeps_the_compiled_forward(solution):
    D, _ = small_models(solution)
    (D,) = compile_models("cuda", D, mode="default")
    compiled = D.forward
    gpu.prepare_models("cuda", D)  # as the notebook's step would, run again
    assert D.forward is compiled, "prepare_models replaced the compiled forward"


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


@cuda_only
def test_on_cuda_prepare_optimizers_switches_adam_to_fused_with_the_same_state():
    torch.manual_seed(0)
    layer = torch.nn.Linear(6, 3).cuda()
    ref = copy.deepcopy(layer)
    opt = torch.optim.Adam(layer.parameters(), lr=0.01, betas=(0.5, 0.999))
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.01, betas=(0.5, 0.999))
    x = torch.rand(5, 6, device="cuda") * 2 - 1

    def step(net, optimizer):
        optimizer.zero_grad()
        net(x).square().mean().backward()
        optimizer.step()

    step(layer, opt)
    step(ref, ref_opt)  # one foreach step each: the state exists before the switch
    assert prepare_optimizers("cuda", opt) == (opt,)
    assert opt.param_groups[0]["fused"] is True
    assert all(s["step"].device.type == "cuda" for s in opt.state.values())
    for _ in range(3):
        step(layer, opt)
        step(ref, ref_opt)
    for p, q in zip(layer.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    saved = opt.state_dict()
    assert saved["param_groups"] == ref_opt.state_dict()["param_groups"]
    assert all(s["step"].device.type == "cpu" for s in saved["state"].values())
    opt.load_state_dict(ref_opt.state_dict())
    assert opt.param_groups[0]["fused"] is True
    assert all(s["step"].device.type == "cuda" for s in opt.state.values())
    step(layer, opt)


class SyncChecked:
    """Batches of a loader; while the steps of non-logging batches run, any CUDA operation
    that makes the host wait for the GPU raises (torch.cuda.set_sync_debug_mode)."""

    def __init__(self, loader, print_every):
        self.loader, self.print_every = loader, print_every

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        try:
            for i, batch in enumerate(self.loader):
                torch.cuda.set_sync_debug_mode("error" if i % self.print_every else "default")
                yield batch
        finally:
            torch.cuda.set_sync_debug_mode("default")


def train_on_cuda(
    solution, tmp_path, compile="off", fused=False, epochs=2, print_every=4, seed=0, out=None
):
    from helpers.fastdata import FastLoader

    D, G = compile_models("cuda", *small_models(solution, seed), mode=compile)
    d_opt = torch.optim.Adam(D.parameters(), lr=0.0002, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=0.0002, betas=(0.5, 0.999))
    prepare_optimizers("cuda", d_opt, g_opt, fused=fused)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    loader = FastLoader(images, 8, "cuda", channels_last=True, seed=0)
    with contextlib.redirect_stdout(out or io.StringIO()):
        # two epochs unchecked first: compiling and capturing CUDA graphs may wait for the GPU
        solution["train"](
            D, G, d_opt, g_opt, loader, 2, 16, torch.device("cuda"), print_every, sample_size=4
        )
        return solution["train"](
            D,
            G,
            d_opt,
            g_opt,
            SyncChecked(loader, print_every),
            epochs,
            16,
            torch.device("cuda"),
            print_every=print_every,
            checkpoint_path=tmp_path / "ck.pt",
            sample_size=4,
        )


@cuda_only
@pytest.mark.parametrize(
    "compile, fused", [("off", False), ("off", True), ("reduce-overhead", True)]
)
def test_on_cuda_training_waits_for_the_gpu_only_on_logging_steps(
    solution, tmp_path, compile, fused
):
    losses, samples = train_on_cuda(solution, tmp_path, compile, fused)
    assert len(losses) == 2 * 2, "8 batches per epoch, logged every 4th"
    assert all(torch.isfinite(torch.tensor(row[:2])).all() for row in losses)
    assert samples[-1].dtype == torch.float32 and samples[-1].shape == (4, 3, 32, 32)


@cuda_only
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_on_cuda_compiled_nets_train_resume_and_keep_plain_checkpoints(solution, tmp_path, mode):
    losses, _ = train_on_cuda(solution, tmp_path, mode, fused=True, epochs=1)
    state = torch.load(tmp_path / "ck.pt", map_location="cpu", weights_only=False)
    assert not any("_orig_mod" in key for key in state["G"]), "compiled names in the checkpoint"
    assert state["d_optimizer"]["param_groups"][0]["fused"] is None, "saved as a plain Adam"
    # other starting weights: only a resumed run repeats the first run's losses
    printed = io.StringIO()
    resumed, _ = train_on_cuda(solution, tmp_path, mode, True, epochs=2, seed=1, out=printed)
    assert "Resuming from" in printed.getvalue()
    assert resumed[: len(losses)] == losses and len(resumed) == 2 * len(losses)
    assert torch.load(tmp_path / "ck.pt", map_location="cpu", weights_only=False)["epoch"] == 2
