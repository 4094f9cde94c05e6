"""The training run, recorded and judged step by step.

Serves test_train (the notebook step "The training loop"): the kit's tiny D and G, the Recorder
that watches the learner's train() (the observe side), the StepJudge that checks every optimizer
step from that record (the judge side, with helpers/graded/gradients.py), fresh noise, and
train()'s signature. Part 2's WGAN-GP recorder and judge build on them (helpers/graded/part2.py).
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from helpers.graded.failures import calling, check, malformed
from helpers.graded.gradients import (
    Window,
    check_d_step,
    check_g_step,
    grads_equal,
    is_zero,
    rows_match,
)
from helpers.graded.layers import refuse
from helpers.graded.plain import logged_numbers
from helpers.graded.verdicts import reference
from helpers.training import doctor_off

if TYPE_CHECKING:  # for the annotations only
    from helpers.graded.verdicts import Observation

__all__ = [
    "EVENT_KINDS",
    "FRESH_Z",
    "MAX_CALL",
    "COURSE_PIECE_NAMES",
    "ORIGINAL_GLOBALS",
    "course_pieces",
    "ORIGINAL_LOADERS",
    "ORIGINAL_PARAMETERS",
    "RUN",
    "TRAIN_SIGNATURE",
    "Recorder",
    "StepJudge",
    "TinyD",
    "TinyG",
    "check_fresh_noise",
    "check_recorded_call",
    "check_train_signature",
    "is_original_train",
    "observe_training_run",
    "original_globals",
    "quiet",
    "run_events",
    "takes_argument",
]


class TinyD(nn.Module):
    """A small DCGAN discriminator for 16x16 images, used only by test_train."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 4, 4, 2, 1),
            nn.LeakyReLU(0.2),  # (B, 4, 8, 8)
            nn.Conv2d(4, 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(8),
            nn.LeakyReLU(0.2),  # (B, 8, 4, 4)
        )
        self.fc = nn.Linear(8 * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net(x).flatten(1))


class TinyG(nn.Module):
    """A small DCGAN generator for 16x16 images, used only by test_train."""

    def __init__(self, z_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(z_size, 8 * 4 * 4)
        self.net = nn.Sequential(
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(4),
            nn.ReLU(),  # (B, 4, 8, 8)
            nn.ConvTranspose2d(4, 3, 4, 2, 1),
            nn.Tanh(),  # (B, 3, 16, 16)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, 8, 4, 4))


class Recorder:
    """Watches a training run and records, as data, what the step checks need (StepJudge).

    Events, in order: {"kind": "start"} with the gradients D and G hold before the run; "D" or
    "G" with the input and output of each call made with gradients on (the steps' calls);
    "sample" with G's input in calls under torch.no_grad() or with G in eval mode (sampling,
    logging); and at each
    optimizer step, before the weights change, "d_step" or "g_step" with D's and G's weights
    (state_dict) and gradients. At most MAX_EVENTS; past them it only sets `overflow`.
    """

    MAX_EVENTS = 200  # a right run of the test takes about 60

    def __init__(
        self, D: nn.Module, G: nn.Module, d_opt: torch.optim.Optimizer, g_opt: torch.optim.Optimizer
    ) -> None:
        self.D, self.G = D, G
        # On a GPU, convolutions in full float32 while the run is recorded (cuDNN uses TF32 by
        # default, about 1e-3 off): the judge replays the steps on the CPU and must get the same
        # gradients. close() restores the setting.
        try:
            self._tf32: bool | None = torch.backends.cudnn.allow_tf32
            torch.backends.cudnn.allow_tf32 = False
        except RuntimeError:  # set through torch's newer per-operator flags: left as they are
            self._tf32 = None
        self.events = [{"kind": "start", "d_grads": self._grads(D), "g_grads": self._grads(G)}]
        self.overflow = False
        self.handles = [
            D.register_forward_hook(lambda m, i, o: self._forward("D", i, o)),
            G.register_forward_hook(lambda m, i, o: self._forward("G", i, o)),
            d_opt.register_step_pre_hook(lambda opt, a, k: self._step("d_step")),
            g_opt.register_step_pre_hook(lambda opt, a, k: self._step("g_step")),
        ]

    def _add(self, event):
        if len(self.events) >= self.MAX_EVENTS:
            self.overflow = True
        else:
            self.events.append(event)

    def _forward(self, kind, inputs, output):
        # the original course samples with G.eval() but without torch.no_grad()
        if not torch.is_grad_enabled() or (kind == "G" and not self.G.training):
            if kind == "G":
                self._add({"kind": "sample", "input": inputs[0].detach().cpu().clone()})
            return
        # kept on the CPU, where the test compares them with the batches it made
        self._add(
            {
                "kind": kind,
                "input": inputs[0].detach().cpu().clone(),
                "output": output.detach().cpu().clone(),
            }
        )

    @staticmethod
    def _grads(net):
        return [None if p.grad is None else p.grad.detach().cpu().clone() for p in net.parameters()]

    @staticmethod
    def _state(net):
        return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}

    def _step(self, kind):
        self._add(
            {
                "kind": kind,
                "D": self._state(self.D),
                "G": self._state(self.G),
                "d_grads": self._grads(self.D),
                "g_grads": self._grads(self.G),
            }
        )

    def close(self) -> None:
        """Stop watching: the hooks removed, cuDNN's TF32 setting restored."""
        for h in self.handles:
            h.remove()
        if self._tf32 is not None:
            torch.backends.cudnn.allow_tf32 = self._tf32

    def record(self) -> dict[str, Any]:
        """What was recorded: {"events": [...], "overflow": whether events were left out}."""
        return {"events": self.events, "overflow": self.overflow}


RUN = "The record of the training run"
EVENT_KINDS = '"D", "G", "sample", "d_step" or "g_step"'
MAX_CALL = 64 * 3 * 16 * 16  # numbers in a recorded call's input or output: 64 images of 16x16


def run_events(record: dict[str, Any]) -> list[Any]:
    """The events of a recorded run (Recorder.record()), checked to begin with its "start" event;
    else the record is malformed, and the failure says how. A record of more events than a
    Recorder keeps (MAX_EVENTS) is refused, whatever its "overflow" flag says: no recorder made
    it, and judging it would cost the grader time in proportion."""
    events = record["events"]
    if not isinstance(events, list) or not events:
        raise malformed(RUN, "its events", 'a list that begins with the "start" event', events)
    if len(events) > Recorder.MAX_EVENTS:
        raise refuse(
            f"the record of the training run holds {len(events)} events, over the "
            f"{Recorder.MAX_EVENTS} a recorder keeps"
        )
    if not isinstance(events[0], dict):
        raise malformed(RUN, "event 0", 'the "start" event (a dict)', events[0])
    if events[0].get("kind") != "start":
        raise malformed(RUN, "the kind of event 0", '"start"', events[0].get("kind"))
    return events


def check_recorded_call(call: str, inp: object, out: object, who: str) -> None:
    """A recorded call (`call` names it: "event 4 (a call of D)") holds an input and an output
    that are tensors no larger than the test's batches (at most 64 images of 3x16x16); else the
    record is malformed, and the failure says which part. `who` names the networks."""
    aside = f" (or {who} saw batches far larger than the test's)"
    if not isinstance(inp, torch.Tensor):
        raise malformed(RUN, f"the input of {call}", "a tensor", inp, aside)
    if not isinstance(out, torch.Tensor):
        raise malformed(RUN, f"the output of {call}", "a tensor", out, aside)
    if inp.dim() < 1 or len(inp) > 64 or inp.numel() > MAX_CALL:
        limit = f"a batch of at most 64, with at most {MAX_CALL} numbers"
        raise malformed(RUN, f"the input of {call}", limit, inp, aside)
    if out.numel() > MAX_CALL:
        raise malformed(RUN, f"the output of {call}", f"at most {MAX_CALL} numbers", out, aside)


class StepJudge:
    """Checks every optimizer step of a recorded training run (Recorder.record()), in order.

    At each step it loads the recorded weights into its own D and G (the kit's TinyD and TinyG,
    built by the judge), replays the expected loss on exactly the inputs D and G saw since the
    last step and compares gradients; the first wrong step raises its GradedTestFailure.
    """

    def __init__(
        self, D: nn.Module, G: nn.Module, scaled_batches: list[torch.Tensor], record: dict[str, Any]
    ) -> None:
        self.D, self.G = D, G
        self.scaled_batches = scaled_batches
        self.window: Window = []  # ("D" | "G", input, output) since the last optimizer step
        self.g_history: Window = []  # recent G calls, to find where the fakes D scores came from
        self.d_step_reached_g = False  # the D step's backward also filled G's gradients
        self.steps = {"d_step": 0, "g_step": 0}
        self.g_inputs: list[torch.Tensor] = []  # G's input in every call that is part of a step
        # G's input in calls under torch.no_grad() (the samples)
        self.sample_inputs: list[torch.Tensor] = []
        self.overflow = record["overflow"] is True
        events = run_events(record)
        start = events[0]
        self.last_g_grads = self._grads(start["g_grads"], G)  # G's at its last step (or before)
        self.last_d_grads = self._grads(start["d_grads"], D)  # D's at the last step of either
        self.g_grads_at_d_step = self.last_g_grads
        for index, event in enumerate(events[1:], 1):
            kind = event["kind"]
            if kind in ("D", "G"):
                call = f"event {index} (a call of {kind})"
                check_recorded_call(call, event["input"], event["output"], "D and G")
                self._forward(kind, event["input"], event["output"])
            elif kind == "sample":
                inp = event["input"]
                check_recorded_call(f"event {index} (a sample from G)", inp, inp, "G")
                self.sample_inputs.append(inp)
            elif kind in ("d_step", "g_step"):
                with torch.no_grad():
                    self.D.load_state_dict(event["D"])
                    self.G.load_state_dict(event["G"])
                d_grads = self._grads(event["d_grads"], D)
                g_grads = self._grads(event["g_grads"], G)
                if kind == "d_step":
                    self._d_step(d_grads, g_grads)
                else:
                    self._g_step(d_grads, g_grads)
            else:
                raise malformed(RUN, f"the kind of event {index}", EVENT_KINDS, kind)

    @staticmethod
    def _grads(grads, net):
        """Recorded gradients, checked against net's parameters (None where there is none)."""
        params = list(net.parameters())
        check(
            isinstance(grads, list)
            and len(grads) == len(params)
            and all(
                g is None or (isinstance(g, torch.Tensor) and g.shape == p.shape)
                for g, p in zip(grads, params)
            ),
            "The record of the training run holds gradients that do not fit the test's networks.",
        )
        return [None if g is None else g.float() for g in grads]

    def _forward(self, kind, inp, out):
        event = (kind, inp, out)
        self.window.append(event)
        if kind == "G":
            self.g_history = (self.g_history + [event])[-4:]
            self.g_inputs.append(inp)

    def _d_step(self, d_grads, g_grads):
        self.steps["d_step"] += 1
        fakes = self.g_history[-1][2] if self.g_history else None
        check_d_step(d_grads, self.window, self.scaled_batches, fakes, self.last_d_grads, self.D)
        if not is_zero(g_grads) and not grads_equal(g_grads, self.last_g_grads):
            self.d_step_reached_g = True
        self.g_grads_at_d_step, self.last_d_grads = g_grads, d_grads
        self.window = []

    def _g_step(self, d_grads, g_grads):
        self.steps["g_step"] += 1
        check_g_step(
            g_grads,
            self.window,
            self.g_history,
            self.scaled_batches,
            self.D,
            self.G,
            self.last_g_grads,
            self.g_grads_at_d_step,
        )
        self.last_g_grads, self.last_d_grads = g_grads, d_grads
        self.window = []

    def count(self, kind: str) -> int:
        """How many "d_step" or "g_step" steps were checked."""
        return self.steps[kind]


FRESH_Z = (
    "Draw fresh noise for every batch, z = torch.rand(batch_size, z_size, device=device) * 2 - 1, "
    "and keep fixed_z for the sample images only."
)


def check_fresh_noise(g_inputs: list[torch.Tensor], sample_inputs: list[torch.Tensor]) -> None:
    """Every batch's fakes come from new noise: no z row of the steps is one of the sample noise
    (fixed_z), and none feeds G in more than two calls (a D and a G step of one batch).

    Linear in the rows: a row's uses are counted by its exact bytes (noise fed again is the
    same tensor), and each call's rows are compared with fixed_z's (a recorded call, at most
    MAX_CALL numbers, see check_recorded_call)."""
    rows = [z.flatten(1) for z in g_inputs if z.dim() >= 2 and z.is_floating_point()]
    if not rows or len({r.shape[1] for r in rows}) != 1:
        return
    fixed = [z.flatten(1) for z in sample_inputs if z.dim() >= 2 and z.is_floating_point()]
    if fixed and fixed[0].shape[1] == rows[0].shape[1]:
        check(
            not any(rows_match(r, fixed[0]).any() for r in rows),
            "The D and G steps make their fakes from fixed_z, the noise kept for the sample "
            "images, so G only ever learns to draw those few images. " + FRESH_Z,
        )
    uses = collections.Counter(  # per row: G calls that used it
        row.tobytes() for r in rows for row in r.float().contiguous().numpy()
    )
    most = max(uses.values(), default=0)
    check(
        most <= 2,
        f"The same noise z fed G in {most} training calls, across batches, so G keeps "
        "training on the same few fakes. " + FRESH_Z,
    )


def takes_argument(fn: Callable[..., Any], name: str) -> bool:
    """Whether fn accepts the keyword argument `name` (True when its signature cannot be read)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


TRAIN_SIGNATURE = (
    "train(D, G, d_optimizer, g_optimizer, dataloader, n_epochs, z_size, device, print_every=50, "
    "checkpoint_path=None, sample_size=16, fresh=False)"
)


def check_train_signature(
    train: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
) -> None:
    """Fail with the expected signature, not a bare TypeError, when train cannot take the call."""
    import inspect

    try:
        signature = inspect.signature(train)
    except (TypeError, ValueError):
        return  # not introspectable: let the call itself report
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        names = list(signature.parameters)
        original = names[:3] == ["D", "G", "n_epochs"]
        check(
            False,
            f"train's signature is train{signature}, but the notebook calls it as "
            f"{TRAIN_SIGNATURE}. "
            + (
                "Yours is the original course's, which took the optimizers and the data from "
                "global variables. "
                if original
                else ""
            )
            + "Keep the def line and the code around the TODO as given, and write only the D and "
            "G steps.",
        )


# The original course's train(D, G, n_epochs, print_every=50) starts with these parameters and
# reads the rest from the notebook's globals; its loader was celeba_train_loader (some learners
# renamed it train_loader).
ORIGINAL_PARAMETERS = ("D", "G", "n_epochs")
ORIGINAL_LOADERS = ("celeba_train_loader", "train_loader")
# What test_train gives such a train, in words (the learner's note and the grader's report).
ORIGINAL_GLOBALS = (
    "d_optimizer and g_optimizer (Adam over the test's small D and G), celeba_train_loader and "
    "train_loader (12 test images of 16x16 in batches of 4), z_size=8 and train_on_gpu; "
    "batch_size=4 and device when train reads them, and the test's optimizers and loader under "
    "any other name train reads that holds one; and, in the grader, the course's own real_loss, "
    "fake_loss and scale (BCE with logits, labels 1, 0.9 with smooth=True, 0; [0, 1] to "
    "feature_range), since test_real_loss, test_fake_loss and test_scale grade yours"
)


# The course's own real_loss, fake_loss and scale, which the original train gets in the grader
# (helpers.sandboxed.course provides them there; they never ship to learners, being answers).
COURSE_PIECE_NAMES = ("real_loss", "fake_loss", "scale")


def course_pieces() -> dict[str, Callable[..., Any]]:
    """{name: the course's own piece} where the grader provided them, else {}: outside the
    grader the original train runs with the notebook's own pieces. test_real_loss, test_fake_loss
    and test_scale grade those, so in the grader test_train grades the loop alone (a loss that
    always smooths fails test_real_loss, not the loop that calls it too)."""
    try:
        return {name: reference(f"the course's {name}") for name in COURSE_PIECE_NAMES}
    except RuntimeError:
        return {}


def is_original_train(
    train: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
) -> bool:
    """Whether `train` has the original course's signature: its first parameters are
    ORIGINAL_PARAMETERS and it cannot take the kit's call train(*args, **kwargs)."""
    import inspect

    try:
        signature = inspect.signature(train)
    except (TypeError, ValueError):
        return False
    if tuple(signature.parameters)[:3] != ORIGINAL_PARAMETERS:
        return False
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        return True
    return False


def global_names(fn: Callable[..., Any]) -> set[str]:
    """Names `fn`'s code (nested functions and comprehensions included) may read as globals:
    a superset (attribute names are in it too), enough to see which loader names it uses."""
    names: set[str] = set()
    todo = [getattr(fn, "__code__", None)]
    while todo:
        code = todo.pop()
        if code is None:
            continue
        names.update(code.co_names)
        todo += [c for c in code.co_consts if hasattr(c, "co_names")]
    return names


@contextlib.contextmanager
def original_globals(train: Callable[..., Any], values: dict[str, Any]) -> Iterator[None]:
    """Run the body with `values` set in the globals of the original course's `train` (the
    notebook's namespace), and in a temporary working folder (it pickles its samples to
    train_samples.pkl); both restored afterwards. `values` holds the names set always; a value
    under "<loader>" goes to ORIGINAL_LOADERS, to every other global name train reads that holds
    "loader", and to those that hold a DataLoader; every optimizer train reads over the notebook's
    own D or G is replaced by "d_optimizer" or "g_optimizer"; "device" and "batch_size" are set
    only when train reads them (ORIGINAL_GLOBALS says it in words)."""
    import os
    import tempfile

    namespace = getattr(train, "__globals__", None)
    if not isinstance(namespace, dict):
        yield
        return
    reads = global_names(train)
    wanted = {k: v for k, v in values.items() if k not in ("<loader>", "device", "batch_size")}
    for name in ("device", "batch_size"):
        if name in values and name in reads:
            wanted[name] = values[name]
    if "<loader>" in values:
        for name in set(ORIGINAL_LOADERS) | {n for n in reads if "loader" in n.lower()}:
            wanted[name] = values["<loader>"]
    # Optimizers and loaders under the learner's own names: those train reads, by what they hold.
    from torch.utils.data import DataLoader

    nets = [
        (namespace.get("D"), values.get("d_optimizer")),
        (namespace.get("G"), values.get("g_optimizer")),
    ]
    for name in sorted(reads & set(namespace) - set(wanted)):
        value = namespace[name]
        if isinstance(value, DataLoader) and "<loader>" in values:
            wanted[name] = values["<loader>"]
        elif isinstance(value, torch.optim.Optimizer):
            params = {id(p) for group in value.param_groups for p in group["params"]}
            for net, ours in nets:
                if isinstance(net, nn.Module) and params & {id(p) for p in net.parameters()}:
                    wanted[name] = ours
                    break
    missing = object()
    saved = {name: namespace.get(name, missing) for name in wanted}
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            namespace.update(wanted)
            os.chdir(tmp)
            yield
        finally:
            os.chdir(here)
            for name, value in saved.items():
                if value is missing:
                    namespace.pop(name, None)
                else:
                    namespace[name] = value


@contextlib.contextmanager
def quiet(train: Callable[..., Any]) -> Iterator[None]:
    """Hide train's prints and progress bars while the test runs it, so the test prints one line;
    and leave the GAN doctor out."""
    import io

    namespace = getattr(train, "__globals__", {})
    saved = namespace.get("tqdm", None)
    if "tqdm" in namespace:
        namespace["tqdm"] = lambda iterable, *args, **kwargs: iterable
    try:
        # Without the GAN doctor too: the test judges the learner's own steps, all of them.
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            doctor_off(),
        ):
            yield
    finally:
        if "tqdm" in namespace:
            namespace["tqdm"] = saved


def observe_training_run(
    obs: Observation,
    recorder: Recorder,
    train: Callable[..., Any],
    label: str,
    *args: Any,
    **options: Any,
) -> None:
    """Run the learner's `train(*args, **options)` while `recorder` (a Recorder) watches it.

    Stores in `obs`: "run", the record (kept when train fails), "after", both networks' weights
    after the run, and "result": whether train returned a (losses, samples) pair, and if so the
    logged numbers and the samples' shapes. `label` names the call in a failure message.
    """
    obs["run"] = recorder.record()  # filled as train runs: kept even when train fails
    try:
        with calling(label), quiet(train):
            result = train(*args, **options)
    finally:
        recorder.close()
        obs["run"] = recorder.record()
    obs["after"] = {"D": recorder._state(recorder.D), "G": recorder._state(recorder.G)}
    ok = isinstance(result, tuple) and len(result) == 2
    obs["result"] = {"pair": ok}
    if ok:
        losses, samples = result
        obs["result"]["losses"] = [logged_numbers(r) for r in list(losses)[:100]]
        obs["result"]["samples"] = [list(getattr(x, "shape", ())) for x in samples][:100]
