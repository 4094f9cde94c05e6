"""The losses against hand-computed values: mean binary cross-entropy with logits, in float64.

Serves test_real_loss and test_fake_loss (the notebook step "The losses"): each loss's value and
gradient on fixed and random logits, a batch of one image, and a message that names the likely
mistake (flipped or varying labels, a sigmoid too many, a sum instead of a mean).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from helpers.graded.failures import calling, check, malformed
from helpers.graded.plain import plain, type_name

if TYPE_CHECKING:  # for the annotations only
    from helpers.graded.verdicts import Observation

__all__ = [
    "LOGITS",
    "SIZED_HINT",
    "bce",
    "judge_loss",
    "labels_cause",
    "labels_used",
    "least_squares",
    "least_squares_note",
    "loss_devices",
    "losses_take_probabilities",
    "observe_loss",
    "observe_probability_losses",
    "one_hint",
    "probabilities",
    "random_logits",
]

LOGITS = [[2.0], [-1.0], [0.5], [-3.0], [40.0], [-40.0]]


def labels_used(
    value: float, grad: torch.Tensor | None, logits: torch.Tensor
) -> torch.Tensor | None:
    """The labels of a mean BCE-with-logits loss, read back from its gradient `grad` with respect
    to `logits` ((sigmoid(x) - label) / n per logit); None when the loss is not of that form."""
    if grad is None:
        return None
    x = logits.detach().double().flatten()
    labels = torch.sigmoid(x) - grad.double().flatten() * len(x)
    same = F.binary_cross_entropy_with_logits(x, labels).item()
    if abs(same - value) > 1e-3 * max(1.0, abs(same)) or not (labels.abs() < 10).all():
        return None
    return labels.cpu()


def labels_cause(labels: torch.Tensor, target: float) -> str:
    """What is wrong with labels that are not all `target`, in words."""
    kind = "fake" if target == 0 else "real"
    asked = (
        "The notebook asks for fake labels of exactly 0."
        if target == 0
        else "The notebook asks for real labels of exactly 1 (or 0.9 with smooth=True), never "
        "above 1: BCE's labels are probabilities, and a label above 1 lets the loss go below "
        "zero and keeps pushing D's logits up without end."
    )
    low, high = labels.min().item(), labels.max().item()
    if target == 1 and high - low < 1e-3 and 0.7 <= low < 1 - 1e-3:
        return (
            f"Your real labels are {low:.3g} even without smooth=True: smoothing is always on, and "
            "that would harm G's loss. train also uses real_loss for G's loss (g_loss = "
            f"real_loss(D(fake_images))), which needs labels of exactly 1: with {low:.3g}, G is "
            f"pushed to make D score its fakes {low:.3g}, not 1. Use 0.9 only when smooth=True, so "
            "that only D's loss on real images is smoothed."
        )
    if high > 1 + 1e-3:
        return f"Some of your {kind} labels are above 1 (up to {high:.2f}). {asked}"
    if high - low > 1e-3:
        return (
            f"Your {kind} labels vary from image to image ({low:.2f} to {high:.2f}), so the loss "
            f"is random. {asked}"
        )
    return (
        f"Your {kind} labels are {low:.3g}, not {target:g}. {asked}"
        if abs(low - target) > 1e-3
        else "Use nn.BCEWithLogitsLoss() on D_out directly (it applies the sigmoid itself) "
        "with the mean reduction."
    )


def bce(logits: list[list[float]], target: float) -> float:
    """Hand-computed mean binary cross-entropy with logits, in float64."""
    total = 0.0
    for (x,) in logits:
        log_p = (
            -math.log1p(math.exp(-x)) if x > 0 else x - math.log1p(math.exp(x))
        )  # log sigmoid(x)
        log_1mp = (
            -x - math.log1p(math.exp(-x)) if x > 0 else -math.log1p(math.exp(x))
        )  # log(1 - sigmoid(x))
        total += -(target * log_p + (1 - target) * log_1mp)
    return total / len(logits)


def least_squares(logits: list[list[float]], target: float) -> float:
    """The least-squares loss the original course offered: mean of (logit - target)^2."""
    return sum((x - target) ** 2 for (x,) in logits) / len(logits)


def _near(got: float, expected: float, rel: float = 1e-4) -> bool:
    return abs(got - expected) <= rel * max(1.0, abs(expected))


def least_squares_note(name: str, target: float) -> str:
    """The note for a least-squares loss, accepted in the original course's notebooks."""
    return (
        f"Note: your {name} is a least-squares loss (the mean of (D_out - {target:g})^2), which "
        "the original course offered. The kit's notebook uses the DCGAN paper's loss, the mean "
        "BCE with logits (nn.BCEWithLogitsLoss()); a least-squares loss (LSGAN) trains too, "
        "with gradients that do not vanish for the fakes D already rejects."
    )


SIZED_HINT = (
    "Likely cause: the labels are not sized from D_out, for example torch.ones(batch_size) "
    "with the notebook's global batch_size, which is not the size of this D_out (nor of "
    "a last, smaller batch). Make the labels from D_out itself: torch.ones_like(D_out) or "
    "torch.full_like(D_out, ...)."
)


def one_hint(name: str) -> str:
    """The likely cause when loss `name` works on a batch of 6 but not on a batch of one."""
    return (
        f"{name} works for a batch of 6 but not for a batch of one image: squeezing D_out turns "
        "its shape (1, 1) into a single number, while labels such as torch.ones(batch_size) keep "
        "the shape (1,). Make the labels shaped like D_out (torch.ones_like(D_out), "
        "torch.full_like(D_out, ...)) and do not squeeze D_out."
    )


def random_logits(seed: int) -> list[list[float]]:
    """A (16, 1) batch of logits in [-5, 5] drawn from `seed` (the grader's, unknown before)."""
    return (torch.rand(16, 1, generator=torch.Generator().manual_seed(seed)) * 10 - 5).tolist()


def _loss_observation(loss: object, d_out: torch.Tensor) -> dict[str, Any]:
    """A loss as data: its value (plain) and its gradient with respect to d_out (or None)."""
    grad = None
    if isinstance(loss, torch.Tensor) and loss.requires_grad and loss.dim() == 0:
        try:
            (grad,) = torch.autograd.grad(loss, d_out, allow_unused=True)
        except RuntimeError:
            grad = None
        grad = None if grad is None else grad.detach().cpu()
    return {"value": plain(loss), "grad": grad}


def observe_loss(
    obs: Observation,
    key: str,
    fn: Callable[[torch.Tensor], Any],
    name: str,
    call: str,
    devices: list[str],
    seed: int,
) -> None:
    """What `fn` (a loss) gives on the kit's logits on each device, on a D_out of one image and
    on random logits from `seed`; stored in obs[key]."""
    found = obs[key] = {"devices": list(devices)}
    for device in devices:
        d_out = torch.tensor(LOGITS, device=device, requires_grad=True)
        with calling(f"{call} on a D_out of shape (6, 1) on {device}", shape_hint=SIZED_HINT):
            loss = fn(d_out)
        found[device] = _loss_observation(loss, d_out)
    one = torch.tensor([[0.3]], device=devices[-1])
    with calling(f"{call} on a D_out of shape (1, 1) (a batch of one image)", hint=one_hint(name)):
        found["one"] = plain(fn(one))
    d_out = torch.tensor(random_logits(seed), device=devices[-1], requires_grad=True)
    with calling(f"{call} on a D_out of shape (16, 1)", shape_hint=SIZED_HINT):
        found["random"] = _loss_observation(fn(d_out), d_out)


def judge_loss(
    obs: Observation,
    key: str,
    name: str,
    call: str,
    target: float,
    seed: int,
    original: bool = False,
) -> str | None:
    """The checks of a loss on what observe_loss saw: value, finiteness, gradient, a batch of one
    and random logits, each against the hand-computed mean BCE with logits. `original`: the
    original course's notebook, which offered a least-squares loss too: one is then checked
    against least_squares instead, and its note returned (else None)."""
    found = obs.need(key)
    devices = found["devices"]
    if not (
        isinstance(devices, list)
        and 0 < len(devices) <= 2
        and all(device in ("cpu", "cuda") for device in devices)
    ):
        raise malformed(
            "The test's list of devices", "it", 'one or two of "cpu" and "cuda"', devices
        )
    first = found.get(devices[0]) if devices[0] in found else obs.need(f"{key} on {devices[0]}")
    value = first["value"] if isinstance(first, dict) else None
    lsq = (
        original
        and isinstance(value, torch.Tensor)
        and value.dim() == 0
        and _near(value.item(), least_squares(LOGITS, target))
    )
    expected = least_squares if lsq else bce
    for device in devices:
        seen = found.get(device) if device in found else obs.need(f"{key} on {device}")
        _judge_one_loss(seen, name, call, target, LOGITS, lsq)
    single = found["one"] if "one" in found else obs.need(f"{key} on one image")
    shown = single if isinstance(single, torch.Tensor) else type_name(single)
    check(
        isinstance(single, torch.Tensor)
        and single.dim() == 0
        and abs(single.item() - expected([[0.3]], target)) < 1e-4,
        f"{name} should also work for a batch of one, D_out of shape (1, 1): expected "
        f"{expected([[0.3]], target):.5f}, got {shown}. "
        "Make the labels shaped like D_out (torch.ones_like(D_out)) instead of squeezing D_out.",
    )
    seen = found["random"] if "random" in found else obs.need(f"{key} on random logits")
    _judge_one_loss(seen, name, f"{call} on other logits", target, random_logits(seed), lsq)
    return least_squares_note(name, target) if lsq else None


def _judge_one_loss(
    seen: dict[str, Any],
    name: str,
    call: str,
    target: float,
    logits: list[list[float]],
    lsq: bool = False,
) -> None:
    loss, grad = seen["value"], seen["grad"]
    check(
        isinstance(loss, torch.Tensor) and loss.dim() == 0,
        f"{name} should return a single number (a 0-dim tensor, the mean over the batch), got "
        f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type_name(loss)}.",
    )
    check(
        torch.isfinite(loss),
        f"{name} gave {loss.item()} for logits of +-40. Use nn.BCEWithLogitsLoss, which stays "
        "finite, instead of a sigmoid followed by a log.",
    )
    expected = (least_squares if lsq else bce)(logits, target)
    got = loss.item()
    if lsq and not _near(got, expected):
        check(
            False,
            f"{call} should be {expected:.5f} for the logits {[round(x, 3) for (x,) in logits]}, "
            f"got {got:.5f}. Your {name} is a least-squares loss on the kit's other logits, but "
            f"not on these: take the mean of (D_out - {target:g})^2 over the batch, with labels "
            "shaped like D_out.",
        )
    if not lsq and abs(got - expected) > 1e-4 * max(1.0, abs(expected)):
        flipped = bce(logits, 1 - target)
        cause = (
            "Use nn.BCEWithLogitsLoss() on D_out directly (it applies the sigmoid itself) "
            "with the mean reduction."
        )
        squashed = bce([[1 / (1 + math.exp(-x))] for (x,) in logits], target)
        if abs(got - flipped) < 1e-3 * max(1.0, abs(flipped)):
            cause = f"Your labels are flipped: {name} should use label {target:g}."
        elif abs(got - squashed) < 1e-3 * max(1.0, abs(squashed)):
            cause = (
                "You apply a sigmoid before BCEWithLogitsLoss, which applies its own: D_out "
                "holds logits; pass it to nn.BCEWithLogitsLoss() directly (and keep D free of "
                "a final sigmoid)."
            )
        elif abs(got - expected * len(logits)) < 1e-3 * max(1.0, expected * len(logits)):
            cause = "You summed over the batch: return the mean (BCEWithLogitsLoss's default)."
        elif _near(got, least_squares(logits, target), 1e-3):
            cause = (
                f"Your {name} is a least-squares loss (the mean of (D_out - {target:g})^2), "
                "which the original course offered. This notebook asks for the DCGAN paper's "
                "loss, the mean BCE with logits: nn.BCEWithLogitsLoss() on D_out directly."
            )
        elif _near(got, (sum(x for (x,) in logits) / len(logits) - target) ** 2, 1e-3):
            cause = (
                f"Your {name} squares the mean of D_out - {target:g} instead of taking the mean "
                f"of the squares: the least-squares loss is torch.mean((D_out - {target:g})**2)."
            )
        elif (labels := labels_used(got, grad, torch.tensor(logits))) is not None:
            cause = labels_cause(labels, target)
        elif target in (1.0, 0.9) and abs(got - bce(logits, 1.0 if target == 0.9 else 0.9)) < 1e-4:
            cause = (
                "Check smoothing: with smooth=True the real labels are 0.9, otherwise 1."
                if target == 0.9
                else "Without smoothing the real labels are exactly 1."
            )
        shown = [round(x, 3) for (x,) in logits]
        check(
            False,
            f"{call} should be {expected:.5f} for the logits {shown}, got {got:.5f}. {cause}",
        )
    check(
        grad is not None,
        f"{name}'s result carries no gradient: do not detach D_out or use .item() inside the loss.",
    )
    expected_grad = torch.tensor(
        [
            [(2 * (x - target) if lsq else 1 / (1 + math.exp(-x)) - target) / len(logits)]
            for (x,) in logits
        ]
    )
    check(
        torch.allclose(grad.to(expected_grad.dtype), expected_grad, atol=1e-5),
        f"{name}'s gradient with respect to D_out is not that of the mean "
        f"{'least-squares loss' if lsq else 'BCE with logits'}.",
    )


def loss_devices() -> list[str]:
    """The device the losses are tried on: the learner's, where train runs them, so the GPU
    when there is one (the original course moves its labels with .cuda() when train_on_gpu,
    right there and wrong on the CPU), else the CPU."""
    return ["cuda"] if torch.cuda.is_available() else ["cpu"]


# ---------------------------------------------------------------- a D that ends with a sigmoid
# The original course let a learner end D with a sigmoid when the losses take probabilities
# (a least-squares loss on D's output, or nn.BCELoss). test_discriminator cannot see the losses
# from D alone: it also observes the notebook's own real_loss and fake_loss on probabilities.


def probabilities(seed: int) -> list[list[float]]:
    """A (16, 1) batch of D outputs in [0.05, 0.95] drawn from `seed`: what a D that ends with a
    sigmoid gives its losses."""
    gen = torch.Generator().manual_seed(seed + 1)
    return (torch.rand(16, 1, generator=gen) * 0.9 + 0.05).tolist()


def observe_probability_losses(namespace: dict[str, Any], seed: int) -> dict[str, Any]:
    """{"real_loss": value, "fake_loss": value}: the notebook's own losses (read from
    `namespace`, its globals) on probabilities(seed), on the device the loss tests use. A loss
    that is missing or raises is None: it says nothing against D, whose test this is."""
    found: dict[str, Any] = {}
    for name in ("real_loss", "fake_loss"):
        fn, found[name] = namespace.get(name), None
        if not callable(fn):
            continue
        d_out = torch.tensor(probabilities(seed), device=loss_devices()[-1])
        try:
            found[name] = plain(fn(d_out))
        except Exception:  # the loss's own test reports its errors
            continue
    return found


def losses_take_probabilities(found: object, seed: int) -> str | None:
    """What the notebook's real_loss and fake_loss are, in words ("a least-squares loss",
    "nn.BCELoss"), when both treat D's output as a probability (observe_probability_losses saw
    the mean of (p - label)^2 or the mean BCE of p itself, labels 1 and 0); None otherwise (a
    loss that applies a sigmoid again, BCEWithLogitsLoss, or none observed)."""
    if not isinstance(found, dict):
        return None
    p = torch.tensor(probabilities(seed), dtype=torch.float64).flatten()
    forms = {
        "a least-squares loss": lambda t: ((p - t) ** 2).mean().item(),
        "nn.BCELoss": lambda t: (-(t * p.log() + (1 - t) * (1 - p).log())).mean().item(),
    }
    seen = set()
    for name, target in (("real_loss", 1.0), ("fake_loss", 0.0)):
        value = found.get(name)
        if not (isinstance(value, torch.Tensor) and value.dim() == 0):
            return None
        form = next((f for f, loss in forms.items() if _near(value.item(), loss(target))), None)
        if form is None:
            return None
        seen.add(form)
    return seen.pop() if len(seen) == 1 else "a least-squares loss and nn.BCELoss"
