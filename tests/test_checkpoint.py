"""Specification of helpers.checkpoint and of the given part of the notebook's train:
a rerun resumes only the same run, and every broken or foreign file, a full disk and a second run
in the same folder get a plain message before any training, with nothing lost."""

import contextlib
import errno
import io
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import checkpoint as ck
from helpers import files
from helpers.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from helpers.notebook import load_solution

REPO = Path(__file__).resolve().parents[1]
Z_SIZE, CONV_DIM = 8, 4  # small for testing speed


@pytest.fixture(scope="module")
def solution():
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution()


class Run:
    """One learner session: the notebook's own D, G and optimizers, tiny, built afresh."""

    def __init__(self, notebook, lr=0.0002, seed=0):
        torch.manual_seed(seed)
        self.notebook = notebook
        self.D = notebook["Discriminator"](CONV_DIM)
        self.G = notebook["Generator"](z_size=Z_SIZE, conv_dim=CONV_DIM)
        self.D.apply(notebook["weights_init_normal"])
        self.G.apply(notebook["weights_init_normal"])
        self.d_opt = torch.optim.Adam(self.D.parameters(), lr=lr, betas=(0.5, 0.999))
        self.g_opt = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.5, 0.999))
        self.d_steps = 0
        self.d_opt.register_step_pre_hook(lambda *args: self._count())

    def _count(self):
        self.d_steps += 1

    def train(self, path, n_epochs=1, loader=None, **kwargs):
        """Call the notebook's train; returns (losses, samples, what it printed)."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            losses, samples = self.notebook["train"](
                self.D,
                self.G,
                self.d_opt,
                self.g_opt,
                loader or tiny_loader(),
                n_epochs,
                Z_SIZE,
                torch.device("cpu"),
                print_every=1,
                checkpoint_path=path,
                sample_size=3,
                **kwargs,
            )
        return losses, samples, out.getvalue()


def tiny_loader(n=12, batch_size=4):
    images = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return DataLoader(
        TensorDataset(images, torch.zeros(n, dtype=torch.long)), batch_size=batch_size
    )


class NotToBeTrained:
    """A loader that fails when train starts an epoch: proves a message came before training."""

    batch_size = 4

    def __len__(self):
        return 3

    def __iter__(self):
        raise AssertionError("training started although the checkpoint problem was known before")


def files_in(folder):
    return sorted(p.name for p in Path(folder).iterdir())


# ---------------------------------------------------------------- a tiny network for direct calls


def tiny_state():
    torch.manual_seed(0)
    D, G = nn.Sequential(nn.Linear(4, 1)), nn.Sequential(nn.Linear(2, 4), nn.Tanh())
    d_opt, g_opt = torch.optim.Adam(D.parameters()), torch.optim.Adam(G.parameters())
    D(torch.rand(3, 4)).sum().backward()
    d_opt.step()  # Adam now has state to save
    return {"D": D, "G": G, "d_optimizer": d_opt, "g_optimizer": g_opt}


def save_tiny(path, state, epoch=1, **kwargs):
    save_checkpoint(
        path,
        epoch=epoch,
        fixed_z=torch.rand(2, 2),
        losses=[(1.0, 0.5, 0.6, 0.4)],
        samples=[torch.rand(2, 4)],
        **state,
        **kwargs,
    )


def load_tiny(path, state, **kwargs):
    return load_checkpoint(path, device=torch.device("cpu"), **state, **kwargs)


def test_save_then_load_gives_back_the_state(tmp_path):
    state = tiny_state()
    path = tmp_path / "checkpoint.pt"
    save_tiny(path, state, epoch=3)
    weights = [p.detach().clone() for p in state["D"].parameters()]
    with torch.no_grad():
        for p in state["D"].parameters():
            p.zero_()
    resumed = load_tiny(path, state)
    assert resumed["epoch"] == 3 and resumed["losses"] == [(1.0, 0.5, 0.6, 0.4)]
    assert all(torch.equal(a, b) for a, b in zip(weights, state["D"].parameters()))
    assert files_in(tmp_path) == ["checkpoint.pt"]


# ---------------------------------------------------------------- a full disk (issue 11, case 3)


def full_disk_after(n_bytes):
    """atomic_write whose file takes n_bytes and then fails with ENOSPC, as a full disk does."""
    real = files.atomic_write

    class FullFile:
        def __init__(self, f):
            self.f, self.left = f, n_bytes

        def write(self, data):
            data = bytes(data)
            self.f.write(data[: self.left])
            if len(data) > self.left:
                self.left = 0
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.left -= len(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

    @contextlib.contextmanager
    def atomic_write(path, mode="wb"):
        with real(path, mode) as f:
            yield FullFile(f)

    return atomic_write


def test_a_full_disk_says_so_keeps_the_old_checkpoint_and_leaves_no_temp_file(
    tmp_path, monkeypatch
):
    state = tiny_state()
    path = tmp_path / "checkpoint.pt"
    save_tiny(path, state, epoch=1)
    before = path.read_bytes()
    monkeypatch.setattr(ck, "atomic_write", full_disk_after(1000))
    with pytest.raises(CheckpointError) as err:
        save_tiny(path, state, epoch=2)
    message = str(err.value)
    assert message.startswith(f"No space left on device: saving the checkpoint in {tmp_path} ")
    assert "needs about 1 MB" in message
    assert "previous checkpoint, if any, is unchanged" in message
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["checkpoint.pt"]


def test_a_full_disk_is_named_before_training_on_a_rerun(tmp_path, monkeypatch, solution):
    path = tmp_path / "checkpoint.pt"
    Run(solution).train(path)
    monkeypatch.setattr(ck, "_free_bytes", lambda folder: 1000)  # the disk filled up since
    run = Run(solution)
    with pytest.raises(CheckpointError, match=r"No space left on device.*needs about \d+ MB"):
        run.train(path, n_epochs=2, loader=NotToBeTrained())
    assert run.d_steps == 0


def test_another_write_error_is_named_and_leaves_nothing_behind(tmp_path, monkeypatch):
    state = tiny_state()
    path = tmp_path / "checkpoint.pt"

    @contextlib.contextmanager
    def read_only(path, mode="wb"):
        with files.atomic_write(path, mode):
            raise PermissionError(errno.EACCES, "Permission denied")
        yield

    monkeypatch.setattr(ck, "atomic_write", read_only)
    with pytest.raises(CheckpointError, match=r"Could not save the checkpoint .*Permission denied"):
        save_tiny(path, state)
    assert files_in(tmp_path) == []


# ---------------------------------------------------------------- no checkpoint at all (case 6)


@pytest.fixture
def trained(tmp_path, solution):
    """A folder with the checkpoint and the samples file of a finished one-epoch run."""
    path = tmp_path / "checkpoint.pt"
    _, samples, _ = Run(solution).train(path)
    torch.save(samples, tmp_path / "train_samples.pt")
    return path


def refused_before_training(solution, path, message):
    run = Run(solution)
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(CheckpointError, match=message):
        run.train(path, loader=NotToBeTrained())
    assert run.d_steps == 0
    if before is not None:
        assert path.read_bytes() == before, "the file must be left as it was"


def test_the_samples_file_copied_over_the_checkpoint_is_named(trained, solution):
    (trained.parent / "train_samples.pt").replace(trained)
    refused_before_training(
        solution,
        trained,
        r"is not a training checkpoint\. It holds a list of 1 tensors of shape \(3, 3, 32, 32\), "
        r"not a checkpoint\. It looks like train_samples\.pt .*fresh=True",
    )


def test_a_bare_generator_state_dict_is_named(tmp_path, solution):
    path = tmp_path / "checkpoint.pt"
    G = solution["Generator"](z_size=Z_SIZE, conv_dim=CONV_DIM)
    torch.save(G.state_dict(), path)
    refused_before_training(
        solution,
        path,
        r"It holds G's weights \(G\.state_dict\(\)\): \d+ tensors such as 'fc\.weight'",
    )


def test_a_checkpoint_path_that_is_a_folder_is_refused_before_training(tmp_path, solution):
    folder = tmp_path / "checkpoint.pt"
    folder.mkdir()
    refused_before_training(solution, folder, r"is a folder, not a file\. Pass a file inside it")
    assert folder.is_dir() and files_in(folder) == []


def test_200_flipped_bytes_are_found_by_the_checksum(trained, solution):
    with zipfile.ZipFile(trained) as archive:  # the largest stored tensor: D's or G's weights
        entry = max(archive.infolist(), key=lambda i: i.file_size)
    data = bytearray(trained.read_bytes())
    name_len, extra_len = (
        int.from_bytes(data[entry.header_offset + i : entry.header_offset + i + 2], "little")
        for i in (26, 28)
    )
    start = entry.header_offset + 30 + name_len + extra_len
    for i in range(start, start + 200):
        data[i] ^= 0x5A
    trained.write_bytes(bytes(data))
    refused_before_training(
        solution, trained, r"is damaged: its contents no longer match the checksum"
    )


def test_an_empty_or_cut_short_file_is_named(trained, solution):
    data = trained.read_bytes()
    trained.write_bytes(data[: len(data) // 2])
    refused_before_training(solution, trained, r"Could not read the checkpoint .*cut short")
    trained.write_bytes(b"")
    refused_before_training(solution, trained, r"is empty \(0 bytes\)")


def test_fresh_sets_a_foreign_file_aside_and_trains(trained, solution):
    (trained.parent / "train_samples.pt").replace(trained)
    samples_bytes = trained.read_bytes()
    losses, _, printed = Run(solution).train(trained, fresh=True)
    assert len(losses) == 3
    kept = [p for p in trained.parent.iterdir() if ".set-aside-" in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == samples_bytes
    assert printed.startswith(
        f"Starting afresh (fresh=True): the old checkpoint is kept as {kept[0]}."
    )


def test_a_checkpoint_of_an_older_kit_still_resumes_with_a_note(tmp_path, solution):
    path = tmp_path / "checkpoint.pt"
    first = Run(solution)
    first.train(path)
    state = torch.load(path, weights_only=True)
    old = {k: state[k] for k in ck._OLD_KIT_KEYS}
    old["losses"] = [pair[:2] for pair in old["losses"]]  # it logged (d_loss, g_loss) pairs
    torch.save(old, path)
    losses, _, printed = Run(solution).train(path, n_epochs=2)
    assert "was saved by an older version of the kit" in printed
    assert "Resuming from" in printed and len(losses) == 6


# ---------------------------------------------------------------- honest reruns (issue 8, item 3)


def test_changing_the_learning_rate_trains_anew_and_sets_the_old_checkpoint_aside(
    tmp_path, solution
):
    path = tmp_path / "checkpoint.pt"
    Run(solution).train(path)
    old = path.read_bytes()
    run = Run(solution, lr=0.001)  # the learner changed lr and ran the cells again
    losses, samples, printed = run.train(path)
    kept = [p for p in tmp_path.iterdir() if ".set-aside-" in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == old
    lines = printed.strip().splitlines()
    assert lines[0] == (
        f"Starting afresh: the checkpoint {path} was trained with other settings or code "
        f"(d_optimizer lr 0.0002 -> 0.001; g_optimizer lr 0.0002 -> 0.001). "
        f"It is kept as {kept[0].name}."
    )
    assert run.d_steps == 3 and len(losses) == 3 and len(samples) == 1
    assert not any(line.startswith("Resuming") for line in lines)


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, solution):
    path = tmp_path / "checkpoint.pt"

    class Interrupted:
        """Two epochs' worth of batches, then a KeyboardInterrupt in the second epoch."""

        batch_size = 4

        def __init__(self):
            self.epochs = 0

        def __len__(self):
            return 3

        def __iter__(self):
            self.epochs += 1
            for i, batch in enumerate(tiny_loader()):
                if self.epochs == 2 and i == 1:
                    raise KeyboardInterrupt
                yield batch

    run = Run(solution)
    with pytest.raises(KeyboardInterrupt):
        run.train(path, n_epochs=3, loader=Interrupted())
    for again in (run, Run(solution)):  # the same session, or a new one after a restart
        again.d_steps = 0
        losses, samples, printed = again.train(path, n_epochs=2)
        assert printed.startswith(f"Resuming from {path}: 1 of 2 epochs already done")
        assert again.d_steps == 3 and len(losses) == 6 and len(samples) == 2
        path.unlink()
        Run(solution).train(path)  # back to one finished epoch for the next round
    assert not [p for p in tmp_path.iterdir() if ".set-aside-" in p.name]


def notebook_with(source):
    """A new copy of the solution's namespace after the learner edited a cell and ran it again."""
    with contextlib.redirect_stdout(io.StringIO()):
        namespace = load_solution()
    exec(compile(textwrap.dedent(source), "<edited cell>", "exec"), namespace)
    return namespace


def test_changing_a_loss_trains_anew_and_names_it(tmp_path, solution):
    path = tmp_path / "checkpoint.pt"
    Run(solution).train(path)
    edited = notebook_with("""
        def real_loss(D_out, smooth=False):
            '''Mean BCE-with-logits of D_out against "real" labels: 1, or 0.8 when smooth.'''
            labels = torch.full_like(D_out, 0.8 if smooth else 1.0)
            return nn.BCEWithLogitsLoss()(D_out, labels)
    """)
    _, _, printed = Run(edited).train(path)
    assert printed.startswith(
        f"Starting afresh: the checkpoint {path} was trained with other settings or code "
        f"(code of real_loss changed)."
    )


def test_a_new_comment_or_docstring_is_not_a_change(tmp_path, solution):
    path = tmp_path / "checkpoint.pt"
    Run(solution).train(path)
    edited = notebook_with("""


        def scale(x, feature_range=(-1, 1)):
            '''A docstring the learner rewrote.'''
            # a comment the learner added
            low, high = feature_range
            return x * (high - low) + low   # the same maths
    """)
    _, _, printed = Run(edited).train(path, n_epochs=2)
    assert printed.startswith(f"Resuming from {path}: 1 of 2 epochs already done")


def test_a_fresh_start_with_networks_already_trained_in_this_session_is_refused(tmp_path, solution):
    path = tmp_path / "checkpoint.pt"
    run = Run(solution)
    run.train(path)
    before = path.read_bytes()
    for group in run.d_opt.param_groups:  # lr changed, but D and G were not built again
        group["lr"] = 0.001
    with pytest.raises(CheckpointError, match=r"D and G have already been trained in this session"):
        run.train(path, loader=NotToBeTrained())
    assert path.read_bytes() == before and files_in(tmp_path) == ["checkpoint.pt"]


# ---------------------------------------------------------------- two runs in one folder (case 7)

SAVER = """
import sys, time
from pathlib import Path
import torch
from torch import nn
from helpers.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
path, me, other = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
torch.manual_seed(int(me))
D, G = nn.Linear(64, 64), nn.Linear(64, 64)
d_opt, g_opt = torch.optim.Adam(D.parameters()), torch.optim.Adam(G.parameters())
args = dict(D=D, G=G, d_optimizer=d_opt, g_optimizer=g_opt)
# Start together (importing torch takes each process its own time), then save for a while.
(path.parent / f"ready-{me}").touch()
end = time.monotonic() + 60
while not (path.parent / f"ready-{other}").exists() and time.monotonic() < end:
    time.sleep(0.01)
try:
    load_checkpoint(path, device=torch.device("cpu"), **args)
    for epoch in range(1, 41):
        save_checkpoint(path, epoch=epoch, fixed_z=torch.rand(2, 2), losses=[], samples=[], **args)
        time.sleep(0.02)
except CheckpointError as err:
    print("REFUSED", err)
    sys.exit(3)
print("SAVED 40")
"""


@pytest.mark.slow  # two Python processes that import torch
def test_two_runs_saving_in_one_folder_never_crash_and_one_is_told(tmp_path):
    path = tmp_path / "checkpoint.pt"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path), me, other],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in (("1", "2"), ("2", "1"))
    ]
    outcomes = [run.communicate(timeout=180) + (run.returncode,) for run in runs]
    for _, err, code in outcomes:
        assert code in (0, 3), f"a run crashed instead of being told: {err[-2000:]}"
    refused = [out for out, _, code in outcomes if code == 3]
    assert refused, "both runs saved 40 times over each other without a word"
    assert "Another training run is using" in refused[0]
    assert "Give each run a folder of its own" in refused[0]
    # no temporary file of either run is left
    assert files_in(tmp_path) == ["checkpoint.pt", "ready-1", "ready-2"]
    state = ck._read(path, nn.Linear(64, 64), nn.Linear(64, 64))  # whole, and its checksum holds
    assert state["epoch"] >= 1


FINGERPRINTS = """
import contextlib, io, json, torch
from helpers.checkpoint import describe_run
from helpers.notebook import load_solution
with contextlib.redirect_stdout(io.StringIO()):
    nb = load_solution()
D, G = nb["Discriminator"](4), nb["Generator"](z_size=8, conv_dim=4)
opts = [torch.optim.Adam(net.parameters(), lr=0.0002, betas=(0.5, 0.999)) for net in (D, G)]
print(json.dumps(describe_run(nb, D, G, *opts, [0] * 3, 8)))
"""


@pytest.mark.slow  # two Python processes that import torch
def test_the_run_record_is_the_same_in_every_new_session():
    """What a restarted kernel computes must match, or every rerun would start afresh."""
    records = []
    for seed in ("1", "2"):  # string hashing (set order) differs between these two
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONHASHSEED=seed)
        done = subprocess.run(
            [sys.executable, "-c", FINGERPRINTS],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        records.append(done.stdout.strip().splitlines()[-1])
    assert records[0] == records[1]
    assert '"train"' in records[0] and '"d_optimizer lr": 0.0002' in records[0]


def test_in_jupyter_a_checkpoint_error_shows_its_message_without_a_traceback(tmp_path):
    folder = tmp_path / "checkpoint.pt"
    folder.mkdir()
    with pytest.raises(CheckpointError) as err:
        load_tiny(folder, tiny_state())
    assert err.value._render_traceback_() == [f"CheckpointError: {err.value}"]
