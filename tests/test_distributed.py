"""The distributed training command (``python -m helpers distributed``) on CPU processes.

Real torchrun launches on loopback, as docs/distributed.md shows them: 2 processes train,
checkpoint and resume; a checkpoint from 2 processes resumes in 1; and 2 processes with half the
batch each take the same steps as 1 process with the whole batch.

Run as a script, this file is the worker of the equivalence test (see _equivalence_worker).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
slow = pytest.mark.slow  # real torchrun launches: minutes on a busy 2-core machine
TIMEOUT = 600  # seconds per launch: the shared 2-core machine can be very slow
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",  # two processes on two cores: no thread oversubscription
    "GLOO_SOCKET_IFNAME": "lo",  # loopback only
    "MASTER_ADDR": "127.0.0.1",
    "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    "MPLBACKEND": "Agg",
}
ENV.pop("DCGAN_QUICK", None)


def torchrun(nproc, *args, cwd):
    """``torchrun --standalone --nproc_per_node=nproc ARGS`` on loopback; returns its output."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        *map(str, args),
    ]
    return _run(cmd, cwd)


def _run(cmd, cwd):
    cmd = [str(part) for part in cmd]
    done = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{output[-4000:]}"
    return output


def checkpoint(folder):
    return torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=True)


def metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


# ---------------------------------------------------------------------------------------------
# Train, checkpoint, resume (the command in docs/distributed.md)


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """--quick with 2 processes, then again (resume, one more epoch), then with 1 process."""
    cwd = tmp_path_factory.mktemp("ddp_quick")  # the built-in faces are drawn here
    out = cwd / "out"
    # A global batch of 128 (not the notebook's default) keeps each quick epoch at 3 steps.
    common = ["--quick", "--out", out, "--no-eval", "--print-every", "1", "--batch-size", "128"]
    results = {}
    results["first"] = torchrun(2, "-m", "helpers", "distributed", *common, cwd=cwd)
    results["first_state"], results["first_metrics"] = checkpoint(out), metrics(out)
    results["again"] = torchrun(2, "-m", "helpers", "distributed", *common, "--epochs", 2, cwd=cwd)
    results["again_state"], results["again_metrics"] = checkpoint(out), metrics(out)
    # A checkpoint saved by 2 processes, resumed by 1 (plain python, no torchrun).
    results["single"] = _run(
        [sys.executable, "-m", "helpers", "distributed", *common, "--epochs", 3], cwd
    )
    results["single_state"], results["single_metrics"] = checkpoint(out), metrics(out)
    results["out"] = out
    return results


@slow
def test_two_processes_train_and_write_outputs_from_rank_0(quick_runs):
    out, state, m = quick_runs["out"], quick_runs["first_state"], quick_runs["first_metrics"]
    for name in ("checkpoint.pt", "samples.png", "train_samples.pt", "metrics.json"):
        assert (out / name).is_file(), f"{name} missing in {out}"
    assert state["epoch"] == 1
    # The plain networks, loadable without DDP: no "module." prefix.
    assert not [k for k in (*state["D"], *state["G"]) if k.startswith("module.")]
    assert m["world_size"] == 2 and m["per_process_batch"] * 2 == m["global_batch"]
    # 384 training images (512 built-in, 128 held out) in batches of 128: 3 steps, each logged.
    assert m["steps_this_run"] == 3 and len(m["losses"]) == 3
    assert torch.isfinite(torch.tensor(m["losses"])).all()
    # Rank 0 alone prints the summary.
    assert quick_runs["first"].count("2 process(es) on cpu") == 1


@slow
def test_rerun_resumes_from_the_checkpoint(quick_runs):
    first, again = quick_runs["first_state"], quick_runs["again_state"]
    assert "Resuming from" in quick_runs["again"]
    assert again["epoch"] == 2
    assert quick_runs["again_metrics"]["steps_this_run"] == 3  # only the second epoch
    # The first epoch's losses come from the checkpoint, unchanged; the second epoch's follow.
    assert again["losses"][:3] == first["losses"] and len(again["losses"]) == 6
    assert any(not torch.equal(first["G"][k], again["G"][k]) for k in first["G"])
    assert torch.equal(first["fixed_z"], again["fixed_z"])  # the same noise for the samples


@slow
def test_a_two_process_checkpoint_resumes_in_one_process(quick_runs):
    state, m = quick_runs["single_state"], quick_runs["single_metrics"]
    assert "Resuming from" in quick_runs["single"]
    assert state["epoch"] == 3 and m["world_size"] == 1
    # The same global batch of 128 at any process count: still 3 steps per epoch.
    assert m["steps_this_run"] == 3 and m["per_process_batch"] == 128
    assert state["losses"][:6] == quick_runs["again_state"]["losses"]


@slow
def test_a_learner_notebook_with_unwritten_pieces_gets_a_plain_message(tmp_path):
    learner = ROOT / "dlnd_face_generation.ipynb"  # the learner edition: stubs only
    cmd = [sys.executable, "-m", "helpers", "distributed", "--quick", "--notebook", learner,
           "--out", tmp_path / "out"]  # fmt: skip
    done = subprocess.run(
        list(map(str, cmd)), cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 1
    assert "Cannot train from" in done.stderr and "not implemented yet" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "out" / "checkpoint.pt").exists()


# ---------------------------------------------------------------------------------------------
# Each process's share of the images (no processes needed: rank and world size are arguments)


def test_each_rank_holds_its_own_share_and_reshuffles_it_every_epoch():
    from helpers.scale.loaders import ShardedLoader

    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 2, 2).clone()
    ranks = [ShardedLoader(images, 2, "cpu", rank, 3, seed=7) for rank in range(3)]

    def epoch(loader):  # the image numbers of one pass, batch by batch
        return [(x[:, 0, 0, 0] * 255).round().long().tolist() for x, _ in loader]

    first = [epoch(loader) for loader in ranks]
    # 10 images over 3 ranks: 3 each (one left out), so every rank takes the same 1 step of 2.
    assert [len(loader) for loader in ranks] == [1, 1, 1]
    assert [sorted(loader.share[:, 0, 0, 0].tolist()) for loader in ranks] == [
        [0, 3, 6], [1, 4, 7], [2, 5, 8]
    ]  # fmt: skip
    assert all(len(batch) == 2 for batches in first for batch in batches)
    # A new order every epoch, and the same orders again from the same seed and epoch.
    loader = ShardedLoader(images, 1, "cpu", 0, 1, seed=7)
    orders = [sum(epoch(loader), []) for _ in range(4)]
    assert len({tuple(order) for order in orders}) > 1
    assert all(sorted(order) == list(range(10)) for order in orders)
    again = ShardedLoader(images, 1, "cpu", 0, 1, seed=7)
    again.epoch = 2  # as a resumed run sets it
    assert sum(epoch(again), []) == orders[2]


def test_too_few_images_for_the_processes_is_a_clear_error():
    from helpers.scale.loaders import ShardedLoader

    images = torch.zeros(6, 3, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="6 training images shared by 4 processes give 1 each"):
        ShardedLoader(images, 2, "cpu", 0, 4)


def test_the_fallback_loader_splits_one_permutation_between_ranks():
    from torch.utils.data import TensorDataset

    from helpers.scale.loaders import SampledLoader

    data = TensorDataset(torch.arange(12.0), torch.zeros(12))
    ranks = [SampledLoader(data, 3, rank, 2, seed=1) for rank in range(2)]
    for _ in range(2):  # two epochs
        seen = [torch.cat([x for x, _ in loader]).tolist() for loader in ranks]
        assert sorted(seen[0] + seen[1]) == list(range(12))  # disjoint, together all of them
    assert [loader.epoch for loader in ranks] == [2, 2]


# ---------------------------------------------------------------------------------------------
# 2 processes x batch B/2 == 1 process x batch B


class _OneProcessNoise:
    """``torch`` as the notebook's train sees it, except ``torch.rand``: call i draws the whole
    (n * world_size, ...) tensor one process would draw at call i (seeded by i), and each rank
    keeps its rows. So the union of the ranks' noise is the single process's noise."""

    def __init__(self, rank, world_size):
        self.rank, self.world_size, self.calls = rank, world_size, 0

    def __getattr__(self, name):
        return getattr(torch, name)

    def rand(self, n, *size, device=None, **kwargs):
        generator = torch.Generator().manual_seed(1000 + self.calls)
        self.calls += 1
        whole = torch.rand(n * self.world_size, *size, generator=generator, **kwargs)
        return whole[self.rank :: self.world_size].to(device)


def _equivalence_worker(argv):
    """``test_distributed.py OUT VARIANTS ARGS``: train once per variant ('sync' adds --sync-bn)
    into OUT/<variant>, in float64, with the notebook's noise aligned across world sizes.

    Why float64: at the start of training D barely tells images apart, so G's gradient is a
    small difference of large terms, and float32 rounding alone moves it by about 1e-3 of its
    size (float32 against float64 in one process shows that much too). In float64 that floor
    is near 1e-12, so 2 processes must match 1 process to many digits, not just roughly.
    """
    import torch.distributed as dist

    from helpers.scale import distributed

    torch.set_default_dtype(torch.float64)  # the notebook builds D, G and the noise in float64
    out, variants, args = Path(argv[0]), argv[1].split(","), argv[2:]
    for variant in variants:
        extra = ["--sync-bn"] if variant == "sync" else []
        run = distributed.setup([*args, *extra, "--out", str(out / variant)])
        run.ns["torch"] = _OneProcessNoise(run.rank, run.world_size)
        scale = run.ns["scale"]
        run.ns["scale"] = lambda x, scale=scale: scale(x.double())  # the loader gives float32
        distributed.finish(run, *distributed.train(run))
    dist.destroy_process_group()


def _max_difference(a, b):
    """Largest absolute difference over the float tensors of two state dicts."""
    return max(
        (a[k].double() - b[k].double()).abs().max().item()
        for k in a
        if isinstance(a[k], torch.Tensor) and a[k].is_floating_point()
    )


@pytest.fixture(scope="module")
def equivalence_runs(tmp_path_factory):
    """1 process with batch 16, and 2 processes with 8 each (with and without SyncBatchNorm)."""
    from tests import imagefiles

    cwd = tmp_path_factory.mktemp("ddp_equivalence")
    # 192 images: --quick holds 128 out, 64 are trained on in 4 steps of 16, in folder order.
    for i in range(192):
        imagefiles.rgb_image(cwd / "images" / "faces" / f"{i:03d}.png", size=(32, 32), seed=i)
    args = ["--quick", "--data-dir", cwd / "images", "--batch-size", "16", "--epochs", "1",
            "--no-shuffle", "--no-eval", "--print-every", "1"]  # fmt: skip
    worker = Path(__file__).resolve()
    _run([sys.executable, worker, cwd / "one", "plain", *args], cwd)
    torchrun(2, worker, cwd / "two", "sync,plain", *args, cwd=cwd)
    return {
        name: (checkpoint(cwd / name), metrics(cwd / name))
        for name in ("one/plain", "two/sync", "two/plain")
    }


@slow
def test_two_processes_with_half_batches_follow_one_process(equivalence_runs):
    (one, one_m), (two, two_m) = equivalence_runs["one/plain"], equivalence_runs["two/sync"]
    assert one_m["per_process_batch"] == 16 and two_m["per_process_batch"] == 8
    assert one_m["steps_this_run"] == two_m["steps_this_run"] == 4
    # The same losses at every step (averaged over the 2 processes) and, after 4 steps, the
    # same weights and batch-norm statistics, up to float64 rounding (seen: 2e-13).
    # (d_loss, g_loss, D(x), D(G(z))): the probe of D(x) and D(G(z)) sums in float32.
    logs_one, logs_two = torch.tensor(one_m["losses"]), torch.tensor(two_m["losses"])
    assert torch.allclose(logs_two[:, :2], logs_one[:, :2], rtol=1e-9, atol=0), (logs_one, logs_two)
    assert torch.allclose(logs_two[:, 2:], logs_one[:, 2:], rtol=1e-5, atol=0), (logs_one, logs_two)
    for net in ("D", "G"):
        assert one[net]["fc.weight"].dtype == torch.float64
        assert _max_difference(one[net], two[net]) < 1e-9, net
    for opt in ("d_optimizer", "g_optimizer"):  # Adam's moments: the same gradients went in
        for i, moments in one[opt]["state"].items():
            assert _max_difference(moments, two[opt]["state"][i]) < 1e-9, (opt, i)


@slow
def test_without_sync_batchnorm_the_half_batches_drift(equivalence_runs):
    """The control: batch norm over 8 images per process is not batch norm over 16 (seen: 1e-2)."""
    (one, _), (two, _) = equivalence_runs["one/plain"], equivalence_runs["two/plain"]
    assert max(_max_difference(one[net], two[net]) for net in ("D", "G")) > 1e-4


if __name__ == "__main__":
    _equivalence_worker(sys.argv[1:])
