"""The machinery behind the graded tests in problem_unittests.py.

problem_unittests.py reads as a list of tests; what they share lives here: the failure
type, turning the learner's exceptions into plain messages, tracing a network's layers,
the data loader's test images, the conv/deconv block check, the hand-computed losses, and
the training recorder with its gradient replay.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms


class GradedTestFailure(AssertionError):
    """A graded test did not pass. The message is written for the learner.

    In Jupyter (and under nbval) it is shown without the kit's traceback: the message
    first, then, when the learner's own code raised, the cell and line where it did.
    """

    def __init__(self, message, learner_error=None):
        super().__init__(message)
        self.learner_frames = _learner_frames(learner_error)

    def _render_traceback_(self):
        """IPython calls this instead of printing a traceback (the lines it shows, in order)."""
        try:
            return render_failure(self)
        except Exception:  # never hide the message behind a formatting problem
            return [f"{type(self).__name__}: {self}"]


# The learner's values as data (helpers.graded.verdicts sends them from the sandbox to the judge).


def plain(value, _depth=0):
    """What the learner's code returned, as data: tensors detached on the CPU, lists and tuples
    item by item, plain numbers and text as they are, anything else as {"type": its name}."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and _depth < 4 and len(value) <= 1000:
        return [plain(v, _depth + 1) for v in value]
    return {"type": type(value).__name__}


def type_name(value):
    """The type name of what the learner's code returned, from its plain() form."""
    if isinstance(value, torch.Tensor):
        return "Tensor"
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return value["type"]
    if isinstance(value, list):
        return "list"
    return type(value).__name__


# Frames from these are the kit's, not the learner's (folders end with a separator, so a
# learner's helpers_mine.py beside the kit is not taken for the kit's helpers/).
_HELPERS = Path(__file__).resolve().parents[1]
KIT_FRAMES = (
    str(_HELPERS) + os.sep,
    str(_HELPERS.parent / "problem_unittests.py"),
    str(_HELPERS.parent / "part2_unittests.py"),  # part 2's graded tests
)
WIDTH = 100  # wrap long messages: error outputs do not always wrap


def _library_dirs():
    import sysconfig

    paths = sysconfig.get_paths()
    return tuple(
        {
            str(Path(paths[k]).resolve()) + os.sep
            for k in ("stdlib", "platstdlib", "purelib", "platlib")
        }
    )


def _learner_frames(err, keep=2):
    """(file, line number, function) of the deepest frames of `err` that are the learner's code.

    The learner's code is what is neither the kit (problem_unittests.py, helpers/) nor Python's
    or a library's (torch): in Jupyter, the notebook's cells.
    """
    import traceback

    if err is None or err.__traceback__ is None:
        return []
    skip = KIT_FRAMES + _library_dirs()
    frames = []
    for frame, lineno in traceback.walk_tb(err.__traceback__):
        name = frame.f_code.co_filename
        if name.startswith("<frozen") or str(Path(name).resolve()).startswith(skip):
            continue
        frames.append((name, lineno, frame.f_code.co_name))
    return frames[-keep:]


def _where(filename, lineno):
    """'Cell In[5], line 3' for a Jupyter cell (as IPython writes it), 'Cell 5, line 3' for a
    cell run by helpers.notebook.run_cells, else 'File "...", line 3'."""
    try:
        shell = get_ipython()  # noqa: F821  (defined only inside IPython)
        label = shell.compile.format_code_name(filename)
    except Exception:
        label = None
    if label:
        return f"{label[0]} {label[1]}, line {lineno}"
    if filename.startswith("<cell "):  # helpers.notebook.run_cells (grading, headless runs)
        return f"Cell {filename[6:-1]}, line {lineno}"
    return f'File "{filename}", line {lineno}'


def _test_name(err):
    """The graded test the failure came from (test_scale, ...), or None."""
    import traceback

    names = [
        f.f_code.co_name
        for f, _ in traceback.walk_tb(err.__traceback__)
        if f.f_code.co_name.startswith("test_")
        and Path(f.f_code.co_filename).name in ("problem_unittests.py", "part2_unittests.py")
    ]
    return names[0] if names else None


def render_failure(err):
    """The failure as a few short lines: what failed and why, then the learner's line if any."""
    import linecache
    import textwrap

    test = _test_name(err)
    head = f"{type(err).__name__}" + (f" in {test}" if test else "") + ": "
    lines = []
    for i, paragraph in enumerate(str(err).split("\n")):
        lines += textwrap.wrap((head if i == 0 else "") + paragraph, WIDTH) or [""]
    if err.learner_frames:
        lines.append("Your code raised it here:")
        for filename, lineno, function in err.learner_frames:
            lines.append(f"  {_where(filename, lineno)}, in {function}")
            source = linecache.getline(filename, lineno).strip()
            if source:
                lines.append(f"    {source}")
    return lines


def check(condition, message):
    if not condition:
        raise GradedTestFailure(message)


def passed():
    print("Tests Passed")


@contextlib.contextmanager
def calling(what, hint="", shape_hint=""):
    """Turn an exception raised by the learner's code into a failure that says where it came from.

    `hint` names the likely cause when the caller knows it better than the generic guesses;
    `shape_hint` does so only for errors about sizes or shapes.
    """
    try:
        yield
    except AssertionError:
        raise
    except NotImplementedError as err:
        raise GradedTestFailure(
            f"{what} is not implemented yet ({err}). Write it in the cell above, run that cell, "
            "then run this test again."
        ) from None
    except Exception as err:  # anything else the learner's code raised
        detail = str(err).strip().split("\n")[0]
        if len(detail) > 200:
            detail = detail[:200] + " ..."
        text = f"{type(err).__name__}: {detail}"
        lowered = text.lower()
        if any(word in lowered for word in ("cuda", "device", "nvidia", "driver")):
            hint = (
                "Likely cause: a tensor made on a fixed device (for example with .cuda()). Create "
                "tensors on the input's device, e.g. torch.ones_like(x) or torch.zeros(n, "
                "device=x.device)."
            )
        elif "backward through the graph a second time" in lowered:
            hint = (
                "Likely cause: the D step's fakes are not detached, so d_loss.backward() goes "
                "through G and frees its graph, and the G step then reuses the same fake_images. "
                "Detach them in the D step: fake_loss(D(fake_images.detach()))."
            )
        elif not hint and ("shape" in lowered or "size" in lowered):
            hint = shape_hint or (
                "Likely cause: a layer's size or a reshape does not match the shapes given above."
            )
        end = "" if text.endswith(".") else "."
        if hint:  # the likely cause first, then what Python said
            message = f"{what} raised {type(err).__name__}. {hint} The error: {detail}{end}"
        else:
            message = f"{what} raised {text}{end}"
        raise GradedTestFailure(message, learner_error=err) from err


def device_of(module):
    """The device of the module's first parameter (the CPU when it has none)."""
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def leaf_modules(module):
    return [m for m in module.modules() if not list(m.children())]


def trace_leaves(module, *inputs):
    """Run module(*inputs) and record (leaf module, input tensor, output tensor) in call order."""
    calls, handles = [], []
    for leaf in leaf_modules(module):
        handles.append(
            leaf.register_forward_hook(
                lambda m, inp, out: calls.append((m, inp[0].detach().clone(), out.detach().clone()))
            )
        )
    try:
        out = module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return out, calls


def check_no_dropout_on_output(out):
    """D's logits (`out`, on 64 images in train mode) are never exactly 0; dropout after the last
    layer makes some so."""
    zeros = int((out == 0).sum())
    check(
        zeros == 0,
        f"{zeros} of D's {out.numel()} outputs are exactly 0 in train mode: D applies dropout to "
        "its final output (the logits), which zeroes random scores and scales up the others. Put "
        "dropout, if you use it, before the last Linear layer, never after it.",
    )


def conv_ignores_batch_norm(Discriminator):
    """Whether the notebook's conv() (the one Discriminator uses) adds batch norm even when
    called with batch_norm=False; False when it cannot tell."""
    conv = getattr(Discriminator.__init__, "__globals__", {}).get("conv")
    if not callable(conv):
        return False
    try:
        block = conv(3, 8, 4, batch_norm=False)
        return any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    except Exception:
        return False


def leaky_slope(before, after):
    """The negative slope of the activation between two layers, from their traced tensors.

    `before` is one layer's output, `after` the next layer's input; None when they are not one
    elementwise step apart. Zeros (dropout) are left out, and dropout's rescaling cancels.
    """
    if before.shape != after.shape:
        return None
    kept = after != 0
    neg, pos = kept & (before < -1e-3), kept & (before > 1e-3)
    if neg.sum() < 10 or pos.sum() < 10:
        return None
    ratio = after / before
    return (ratio[neg].median() / ratio[pos].median()).item()


FIND_TRUTHINESS = (
    "classname.find('Conv') is 0, which is falsy, when the name starts with 'Conv', and -1, which "
    "is truthy, when 'Conv' is not in it: write classname.find('Conv') != -1, or use "
    "isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))."
)


def check_init_picks_the_layers(model, before, kinds, batch_norm):
    """weights_init_normal changed the conv/linear layers of `model` and left batch norm alone.

    `before` holds each layer's weights before model.apply; `kinds` maps the index of each layer
    it should initialise to a name; `batch_norm` is the index of the batch norm layer. The
    message names the likely mistake from which layers changed.
    """
    left = [kind for i, kind in kinds.items() if torch.equal(model[i].weight.detach(), before[i])]
    done = [kind for kind in kinds.values() if kind not in left]
    bn = model[batch_norm].weight.detach()
    bn_changed = not (torch.allclose(bn, before[batch_norm]) or abs(bn.mean().item() - 1) < 0.05)
    if bn_changed and left:
        check(
            False,
            "weights_init_normal picks the wrong layers: it changed batch norm's scale (mean "
            f"{bn.mean().item():.3f}, it should stay near 1) and left the {', '.join(left)} layers "
            f"as they were. Likely cause: {FIND_TRUTHINESS}",
        )
    check(
        not bn_changed,
        f"weights_init_normal changed the batch norm layer's scale (mean {bn.mean().item():.3f}, "
        "it should stay near 1). Initialise only Conv2d, ConvTranspose2d and Linear layers. If "
        f"you test class names: {FIND_TRUTHINESS}",
    )
    check(
        done,
        "weights_init_normal changed no layer: its test for the layer type is never true. "
        "Conditions joined with `and` (classname.find('Conv') != -1 and classname.find('Linear') "
        "!= -1) need both names in one class name: join them with `or`, or use isinstance(m, "
        "(nn.Conv2d, nn.ConvTranspose2d, nn.Linear)).",
    )
    check(
        not left,
        f"weights_init_normal left the {', '.join(left)} layers' weights as they were (it did "
        f"initialise {', '.join(done)}). Check how you recognise the layers: the class names are "
        "exactly 'Conv2d', 'ConvTranspose2d' and 'Linear' (a misspelt name such as 'Conv2D' or "
        "'Convo2d' never matches), and isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) "
        "matches all three.",
    )


# ---------------------------------------------------------------- D and G


BATCHES = (5, 16, 1)  # a batch of one last, so its failure can say only that one breaks


def observe_batch_sizes(obs, net, make_input, who, in_shape, hint="", out_shape=None):
    """The shape of net's output on batches of 5, 16 and then 1: obs["batch B"] ([] when it is
    not a tensor). Returns whether every shape was (B, *out_shape), when `out_shape` is given:
    part 2's observers stop there when not, as its judge does."""
    for b in BATCHES:
        one = (
            f"{who} works on batches of 5 and 16 but not on a batch of one. Likely cause: "
            "squeeze() drops the batch dimension when it is 1, or a reshape assumes a batch size; "
            "keep the batch dimension (x.flatten(1), x.view(x.size(0), -1))."
        )
        with calling(f"{who} on a ({b}, {in_shape}) batch", hint=one if b == 1 else hint):
            out = net(make_input(b))
        obs[f"batch {b}"] = list(out.shape) if isinstance(out, torch.Tensor) else []
    return out_shape is None or all(obs[f"batch {b}"] == [b, *out_shape] for b in BATCHES)


def check_batch_sizes(obs, who, in_shape, out_shape):
    """net on batches of 5, 16 and then 1 returned (B, *out_shape) (observe_batch_sizes)."""
    for b in BATCHES:
        shape = tuple(obs.need(f"batch {b}"))
        check(
            shape == (b, *out_shape),
            f"{who} on a ({b}, {in_shape}) batch should return shape {(b, *out_shape)}, got "
            f"{shape}."
            + (
                " Flatten with x.flatten(1) (or x.view(x.size(0), -1)) before the final "
                "nn.Linear(..., 1)."
                if out_shape == (1,)
                else ""
            ),
        )


def check_d_convs(leaves, calls, conv_dim):
    """Three strided convs (no pooling) halve 32 -> 16 -> 8 -> 4 with conv_dim, 2x, 4x channels.

    `leaves` are D's layers and `calls` their calls, from rebuild_trace."""
    convs = [(m, i, o) for m, i, o in calls if m.kind == "Conv2d"]
    check(
        len(convs) >= 3, f"D should use (at least) three strided conv layers, found {len(convs)}."
    )
    pools = [m.kind for m in leaves if m.kind in POOLING]
    check(
        not pools,
        f"D should downsample with strided convolutions, not pooling; found {pools[:1]}.",
    )
    first = convs[0][0]
    check(
        first.in_channels == 3 and first.out_channels == conv_dim,
        f"D's first conv layer should take the 3 colour channels to conv_dim={conv_dim} channels, "
        f"got {first.in_channels} -> {first.out_channels}.",
    )
    sizes = [o.shape[-1] for _, _, o in convs[:3]]
    check(
        sizes == [16, 8, 4],
        "D's conv layers should halve the image each time (32 -> 16 -> 8 -> 4), got sizes "
        f"{sizes}. Use stride 2 (the conv helper's default).",
    )
    depths = [m.out_channels for m, _, _ in convs[:3]]
    want = [conv_dim, 2 * conv_dim, 4 * conv_dim]
    check(
        depths == want,
        f"With conv_dim={conv_dim}, D's conv layers should have {want} output channels (conv_dim, "
        f"2x, 4x), got {depths}.",
    )
    return convs


def check_d_batch_norm(conv_ignores_bn, calls, first):
    """No batch norm right after D's first conv (the paper), batch norm after the next two.

    `conv_ignores_bn`: the notebook's conv() adds batch norm even with batch_norm=False."""
    order = [m for m, _, _ in calls]
    after = order[order.index(first) + 1] if order.index(first) + 1 < len(order) else None
    after_bn = after is not None and after.kind == "BatchNorm2d"
    check(
        not (after_bn and conv_ignores_bn),
        "D's first conv layer has batch norm because your conv() ignores batch_norm=False: "
        "conv(3, 8, 4, batch_norm=False) still adds a BatchNorm2d. Add it only when batch_norm is "
        "True (test_conv checks this), run that cell, then this test again.",
    )
    check(
        not after_bn,
        "D's first conv layer should have no batch norm (the paper leaves it out at D's input): "
        "use conv(..., batch_norm=False) there.",
    )
    bn_count = sum(m.kind == "BatchNorm2d" for m in order)
    check(
        bn_count >= 2,
        f"D should use batch norm after its 2nd and 3rd conv layers, found {bn_count} batch norm "
        "layer(s).",
    )


def check_d_activations(convs):
    """LeakyReLU with slope 0.2 between D's conv layers, read from what reaches the next conv."""
    for _, inp, _ in convs[1:3]:
        check(
            inp.min() < 0,
            "The input of D's second and third conv layers has no negative values, so D uses ReLU "
            "(or no activation before a ReLU-like step). Use LeakyReLU with negative slope 0.2: "
            "F.leaky_relu(x, 0.2) or nn.LeakyReLU(0.2).",
        )
    check(
        (convs[1][1] < 0).float().mean() > 0.05,
        "D's activations look like ReLU (almost no negative values reach the 2nd conv layer). Use "
        "LeakyReLU(0.2) between the conv layers.",
    )
    slope = leaky_slope(convs[0][2], convs[1][1])
    if slope is not None:
        default = " (F.leaky_relu's default)" if abs(slope - 0.01) < 0.005 else ""
        check(
            abs(slope - 0.2) < 0.03,
            f"D's LeakyReLU has negative slope {slope:.2f}{default}. The notebook asks for 0.2, "
            "the slope of every model in the DCGAN paper; a much smaller one passes almost no "
            "gradient for negative inputs, close to a ReLU. Use F.leaky_relu(x, 0.2) or "
            "nn.LeakyReLU(0.2).",
        )


def check_d_gives_logits(up, down):
    """Trained to grow (push_output), D's outputs `up` pass 1 and, trained to shrink, `down` go
    below 0: no final sigmoid."""
    check(
        up.max() > 1.0 and down.min() < 0.0,
        f"D's outputs stay inside [0, 1] even when trained to grow (max {up.max():.3f}, min "
        f"{down.min():.3f}): D ends with a sigmoid. Return the raw Linear output (logits); "
        "BCEWithLogitsLoss applies the sigmoid.",
    )


def observe_gradients(net, images, who):
    """Backpropagate net(images).sum(): {"missing": names of parameters without a gradient,
    "input": whether the input got a nonzero gradient}."""
    xg = images.requires_grad_(True)
    missing = params_without_gradient(net, xg, who)
    return {"missing": missing, "input": bool(xg.grad is not None and torch.any(xg.grad != 0))}


def check_d_gradients(found):
    """Every parameter of D gets a gradient, and so does D's input image (G learns through it)."""
    missing = found["missing"]
    check(
        not missing,
        f"No gradient reached these parameters of D: {missing}. Every layer must be used in "
        "forward(), without .detach() or torch.no_grad().",
    )
    check(
        found["input"] is True,
        "No gradient flows from D's output back to its input image, so G could not learn from D. "
        "Do not detach x inside forward().",
    )


def check_g_layers(calls, conv_dim):
    """Transposed convs up to 3 channels, batch norm in hidden layers only, ReLU before the last."""
    deconvs = [(m, i, o) for m, i, o in calls if m.kind == "ConvTranspose2d"]
    check(
        len(deconvs) >= 2,
        f"G should upsample with transposed convolutions (deconv), found {len(deconvs)}.",
    )
    last, last_input, _ = deconvs[-1]
    check(
        last.out_channels == 3 and last.in_channels == conv_dim,
        f"G's last transposed conv should go from conv_dim={conv_dim} channels to 3 (RGB), got "
        f"{last.in_channels} -> {last.out_channels}.",
    )
    order = [m for m, _, _ in calls]
    check(
        not any(m.kind == "BatchNorm2d" for m in order[order.index(last) + 1 :]),
        "G's output layer should have no batch norm: use deconv(..., batch_norm=False) for the "
        "last layer.",
    )
    bn_count = sum(m.kind == "BatchNorm2d" for m in order)
    check(
        bn_count >= 2,
        f"G should use batch norm in its hidden layers, found {bn_count} batch norm layer(s).",
    )
    check(
        last_input.min() >= 0,
        f"The input of G's last layer has negative values (min {last_input.min():.3f}): G's hidden "
        "layers should end with ReLU (the paper uses ReLU in G and LeakyReLU only in D).",
    )


def check_g_ends_with_tanh(up, down):
    """Trained to grow or shrink (push_output: `up`, `down`), G's outputs stay in [-1, 1] and
    reach below -0.5: tanh."""
    check(
        up.max() <= 1.0 + 1e-6 and down.min() >= -1.0 - 1e-6,
        f"G's outputs leave [-1, 1] when trained to grow or shrink (max {up.max():.3f}, min "
        f"{down.min():.3f}): end G with torch.tanh.",
    )
    check(
        down.min() < -0.5,
        f"G's outputs cannot go below {down.min():.3f} even when trained to: it ends with a "
        "sigmoid (range [0, 1]). Use torch.tanh, whose range [-1, 1] matches the scaled real "
        "images.",
    )


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def observe_independence(net, inputs, n=4):
    """In eval mode, the outputs of the first n samples inside the batch and alone."""
    net.eval()
    try:
        with torch.no_grad():
            together = net(inputs)
            alone = torch.cat([net(inputs[i : i + 1]) for i in range(n)])
    finally:
        net.train()
    return {"together": plain(together[:n]), "alone": plain(alone)}


def samples_independent(found):
    """Is each sample's output the same alone as inside the batch (observe_independence)?"""
    together, alone = found["together"], found["alone"]
    return together.shape == alone.shape and torch.allclose(together, alone, atol=1e-4)


def trace_input(seed, *shape, normal=False):
    """The batch a network is traced on, drawn from `seed`: the judge draws it again. Uniform in
    [-1, 1] (images, part 1's z), or normal (part 2's z)."""
    gen = torch.Generator().manual_seed(seed + 3)
    return (
        torch.randn(*shape, generator=gen) if normal else torch.rand(*shape, generator=gen) * 2 - 1
    )


def follows(prev, out):
    """Whether `out` is `prev` (a network's last layer's output), or tanh or sigmoid of it, up to
    a reshape: nothing else happens after a network's last layer."""
    if not isinstance(out, torch.Tensor) or prev.numel() != out.numel():
        return False
    p, o = prev.flatten().double(), out.flatten().double()
    return any(
        torch.allclose(f(p), o, atol=1e-5, rtol=1e-4)
        for f in (lambda t: t, torch.tanh, torch.sigmoid)
    )


def params_without_gradient(net, inputs, who):
    """Backpropagate net(inputs).sum(); return the names of parameters that got no gradient."""
    with calling(f"Backpropagating through {who}"):
        net.zero_grad()
        net(inputs).sum().backward()
    return [n for n, p in net.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]


def check_size_follows_conv_dim(small, big, who, low, layers):
    """Doubling conv_dim should about quadruple the parameters (k x k x in x out): `small` and
    `big` are the parameter counts."""
    ratio = big / small if small else 0.0
    check(
        low < ratio < 4.5,
        f"{who}'s size should follow conv_dim: doubling conv_dim should roughly quadruple the "
        f"parameters, got {ratio:.2f}x. Build every layer from conv_dim ({layers}).",
    )


def push_output(module, make_input, direction, steps=25, lr=0.05):
    """Train `module` briefly to push its outputs up (+1) or down (-1); return the final outputs.

    A linear output grows without bound; an output squashed by sigmoid or tanh cannot pass its
    limits. Works on a copy so the learner's module is untouched.
    """
    import copy

    probe = copy.deepcopy(module)
    probe.train()
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = -direction * probe(make_input()).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return probe(make_input())


# ---------------------------------------------------------------- data loader


FRAME_BLUE = (20, 40, 220)


def loader_images(seed=7):
    """{file stem: PIL image} of the data loader's test images; the square ones' colours come
    from `seed`. Square and non-square images, RGB, grayscale and RGBA.

    The non-square images have a green centre square and red strips on the long sides: a
    correct Resize + CenterCrop keeps only green, resizing to a square keeps the red.
    """
    images = {}
    gen = torch.Generator().manual_seed(seed)
    for i in range(6):  # square, varied colours
        colour = tuple(int(c) for c in torch.randint(0, 256, (3,), generator=gen))
        images[f"sq{i}"] = Image.new("RGB", (64, 64), colour)
    for name, (w, h) in {"wide": (96, 48), "tall": (40, 80)}.items():
        img = Image.new("RGB", (w, h), (220, 20, 20))
        # green reaches 4 px beyond the centre square, so resampling at its edge stays green
        side = min(w, h) + 8
        left, top = max((w - side) // 2, 0), max((h - side) // 2, 0)
        img.paste(Image.new("RGB", (min(side, w), min(side, h)), (20, 200, 20)), (left, top))
        images[name] = img
    images["gray"] = Image.new("L", (50, 50), 128)
    images["rgba"] = Image.new("RGBA", (64, 64), (10, 20, 200, 255))
    # Square and larger than the loaders' image sizes: a blue frame around an orange centre
    # whose shade changes from row to row. Resize-then-crop keeps the frame; a crop first keeps
    # only the centre. Left-right symmetric, so a random flip gives the same tensor; any random
    # crop does not.
    framed = Image.new("RGB", (64, 64), FRAME_BLUE)
    for y in range(8, 56):
        framed.paste(Image.new("RGB", (48, 1), (220, 40 + 3 * y, 20)), (8, y))
    images["framed"] = framed
    return images


def write_test_images(root, seed=7):
    """Write loader_images(seed) as an ImageFolder tree under `root`; return how many."""
    folder = Path(root) / "faces"
    folder.mkdir(parents=True)
    images = loader_images(seed)
    for name, img in images.items():
        img.save(folder / f"{name}.png")
    return len(images)


def expected_images(seed, size):
    """loader_images(seed) as a correct loader gives them: Resize, CenterCrop, ToTensor; (N, 3,
    size, size)."""
    transform = transforms.Compose(
        [transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor()]
    )
    return torch.stack([transform(img.convert("RGB")) for img in loader_images(seed).values()])


def check_images_are_the_test_images(images, seed, size):
    """Every image of a batch is one of the test images (or its mirror), as a correct loader
    gives it: the batch really comes from the files the test wrote."""
    expected = expected_images(seed, size)
    candidates = torch.cat([expected, expected.flip(-1)])
    diff = (images.double()[:, None] - candidates.double()[None]).abs().mean((2, 3, 4))
    check(
        bool((diff.min(1).values < 0.08).all()),
        "The DataLoader's batches are not the test's images: each image of a batch should be one "
        "of the files in data_dir, resized and centre-cropped.",
    )


def observe_dataset_images(obs, dataset):
    """The test images framed, wide and tall as the dataset gives them, each loaded three times
    (obs["image NAME"]: a list of three), and the dataset's file stems (obs["samples"])."""
    samples = getattr(dataset, "samples", None)
    obs["samples"] = None if samples is None else [Path(p).stem for p, _ in samples]
    if samples is None:
        return
    by_name = {Path(p).stem: i for i, (p, _) in enumerate(samples)}
    for name in ("framed", "wide", "tall"):
        with calling(f"Loading the test image {name}.png"):
            img, _ = dataset[by_name[name]]
        with calling(f"Loading the test image {name}.png again"):
            again = [dataset[by_name[name]][0] for _ in range(2)]
        obs[f"image {name}"] = [plain(img)] + [plain(a) for a in again]


def check_frame_kept(obs, size):
    """framed.png (64x64, blue frame) shrunk to size keeps its frame in the outer pixels."""
    img = obs.need("image framed")[0]
    check(
        tuple(img.shape) == (3, size, size),
        f"The square test image framed.png (64x64) should come out as (3, {size}, {size}), got "
        f"{tuple(img.shape)}. Use the image_size argument in Resize and CenterCrop.",
    )
    ring = torch.cat([img[:, 0], img[:, -1], img[:, :, 0], img[:, :, -1]], dim=1)
    blue = torch.tensor(FRAME_BLUE, dtype=img.dtype).unsqueeze(1) / 255
    check(
        (ring - blue).abs().amax(0).mean() < 0.15,
        f"The square test image framed.png (64x64, with a blue frame) lost its frame when loaded "
        f"at image_size={size}: only its central patch is left. CenterCrop(image_size) comes "
        "before Resize(image_size), so a picture larger than image_size is cut down to its "
        "centre (on the faces: a zoomed-in nose and eyes) instead of shrunk. Put "
        "transforms.Resize(image_size) first, then transforms.CenterCrop(image_size).",
    )


def check_non_square_images(obs, size):
    """The same image always gives the same tensor (no random crop), and the wide and tall test
    images come out (3, size, size), in colour, centre-cropped: the crop keeps only their green
    centre, squashing would keep their red side strips (observe_dataset_images)."""
    check(
        obs.need("samples") is not None,
        "The DataLoader's dataset should be a torchvision datasets.ImageFolder.",
    )
    for name in ("framed", "wide", "tall"):
        img, *again = obs.need(f"image {name}")
        check(
            isinstance(img, torch.Tensor),
            f"The dataset gives {type_name(img)} objects instead of tensors: end the transform "
            "with transforms.ToTensor().",
        )
        check(
            all(isinstance(other, torch.Tensor) and torch.equal(img, other) for other in again),
            f"Loading the same image ({name}.png) three times gave different tensors: the "
            "transform is random (for example RandomResizedCrop or RandomCrop), so D trains on "
            "random pieces of faces. The notebook asks for transforms.Resize(image_size) followed "
            "by transforms.CenterCrop(image_size), which always give the whole face.",
        )
        if name == "framed":
            continue  # its frame is checked by check_frame_kept, after the colour and range
        check(
            tuple(img.shape) == (3, size, size),
            f"A non-square image should come out as (3, {size}, {size}), got {tuple(img.shape)}. "
            "The notebook asks for transforms.Resize(image_size) followed by "
            "transforms.CenterCrop(image_size), because Resize with one number keeps a face's "
            "proportions and CenterCrop then cuts the square that D and G work on.",
        )
        check(
            (img.amax(0) - img.amin(0)).mean() > 0.2,
            "The images have lost their colour: the three channels of the green test image "
            f"{name}.png are (almost) equal. The faces are RGB: leave out transforms such as "
            "Grayscale, and keep the 3 colour channels ImageFolder loads.",
        )
        red = (img[0] > 0.5) & (img[1] < 0.4)
        check(
            red.float().mean() < 0.02,
            f"The non-square image {name}.png was squashed instead of centre-cropped: its red side "
            "strips are still in the output. The notebook asks for transforms.Resize(image_size) "
            "(one number: the shorter side) followed by transforms.CenterCrop(image_size), "
            "because squashing a photo to a square distorts the faces G learns to draw.",
        )


# ---------------------------------------------------------------- conv / deconv


def block_input(seed, batch_norm, in_size):
    """The batch test_conv/test_deconv run a block on, drawn from `seed`."""
    gen = torch.Generator().manual_seed(seed + (1 if batch_norm else 2))
    return torch.rand(2, 3, in_size, in_size, generator=gen) * 2 - 1


def observe_block(obs, fn, name, in_size, seed):
    """conv or deconv built with and without batch norm, traced on a batch from `seed`, and
    built with stride=1, padding=1: stored in `obs` (see judge_block)."""
    torch.manual_seed(seed)
    for batch_norm in (True, False):
        with calling(f"{name}(3, 8, 4, batch_norm={batch_norm})"):
            block = fn(3, 8, 4, batch_norm=batch_norm)
        obs[f"module {batch_norm}"] = isinstance(block, nn.Module) or type(block).__name__
        if not isinstance(block, nn.Module):
            return
        obs[f"leaves {batch_norm}"] = [leaf_record(m) for m in leaf_modules(block)]
        x = block_input(seed, batch_norm, in_size)
        with calling(
            f"Running {name}(3, 8, 4, batch_norm={batch_norm}) on a (2, 3, {in_size}, {in_size}) "
            "batch"
        ):
            obs[f"out {batch_norm}"], obs[f"trace {batch_norm}"] = trace_record(block, x)
    with calling(f"{name}(4, 6, 3, stride=1, padding=1)"):
        block = fn(4, 6, 3, stride=1, padding=1)
    with calling(f"Running {name}(4, 6, 3, stride=1, padding=1)"):
        obs["out stride 1"] = plain(block(torch.rand(2, 4, 10, 10) * 2 - 1))


def judge_block(obs, name, kind, in_size, out_size, seed):
    """The checks of test_conv (kind "Conv2d") and test_deconv ("ConvTranspose2d") on what
    observe_block saw."""
    wrong_kind = "Conv2d" if kind == "ConvTranspose2d" else "ConvTranspose2d"
    for batch_norm in (True, False):
        check(
            obs.need(f"module {batch_norm}") is True,
            f"{name} should return an nn.Sequential (an nn.Module), got "
            f"{obs.need(f'module {batch_norm}')}.",
        )
        leaves = [Leaf(r) for r in obs.need(f"leaves {batch_norm}")]
        convs = [m for m in leaves if m.kind == kind]
        bns = [m for m in leaves if m.kind == "BatchNorm2d"]
        wrong = [m for m in leaves if m.kind == wrong_kind]
        check(
            not wrong,
            f"{name} should use nn.{kind}, but it contains nn.{wrong[0].kind if wrong else ''}.",
        )
        check(
            len(convs) == 1,
            f"{name} should contain exactly one nn.{kind}, found {len(convs)}.",
        )
        layer = convs[0]
        check(
            (layer.in_channels, layer.out_channels) == (3, 8),
            f"{name}(3, 8, 4) should have in_channels=3, out_channels=8, got {layer.in_channels} "
            f"and {layer.out_channels}.",
        )
        check(
            layer.kernel_size == (4, 4),
            f"{name}(3, 8, 4) should use kernel_size 4, got {layer.kernel_size}.",
        )
        check(
            layer.stride == (2, 2) and layer.padding == (1, 1),
            f"{name}'s defaults should be stride=2 and padding=1, got stride {layer.stride} and "
            f"padding {layer.padding}. Pass the stride and padding arguments on to the layer.",
        )
        others = [m for m in leaves if m is not layer and m.kind != "BatchNorm2d"]
        check(
            not others,
            f"{name} should hold only the {kind} and an optional BatchNorm2d; it "
            f"also has {others[0].kind if others else ''}. The networks add their own "
            "activations.",
        )
        if batch_norm:
            check(
                len(bns) == 1,
                f"{name}(..., batch_norm=True) should add one nn.BatchNorm2d, found {len(bns)}.",
            )
            check(
                bns[0].num_features == 8,
                f"The BatchNorm2d should normalise the {name}'s 8 output channels, got "
                f"num_features={bns[0].num_features}. Use BatchNorm2d(out_channels).",
            )
        else:
            check(
                not bns,
                f"{name}(..., batch_norm=False) should have no BatchNorm2d, found {len(bns)}. Add "
                "batch norm only when batch_norm is True.",
            )
        out = obs.need(f"out {batch_norm}")
        x = block_input(seed, batch_norm, in_size)
        _, calls = rebuild_trace(obs.need(f"trace {batch_norm}"), name, first_input=x)
        check(
            isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 8, out_size, out_size),
            f"{name}(3, 8, 4) on a (2, 3, {in_size}, {in_size}) batch should give (2, 8, "
            f"{out_size}, {out_size}), got {tuple(getattr(out, 'shape', ()))}.",
        )
        check(
            bool(calls) and torch.equal(calls[-1][2], out),
            f"{name}'s output is not what its last layer gave: the record of this block cannot be "
            "trusted.",
        )
        if batch_norm:
            order = [m.kind for m, _, _ in calls]
            check(
                kind in order and "BatchNorm2d" in order,
                f"{name}(3, 8, 4, batch_norm=True) should use its {kind} and its BatchNorm2d "
                "in forward.",
            )
            check(
                order.index(kind) < order.index("BatchNorm2d"),
                f"In {name}, batch norm should come after the {kind}, not before it.",
            )
    out = obs.need("out stride 1")
    check(
        isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 6, 10, 10),
        f"{name}(4, 6, 3, stride=1, padding=1) should keep a 10x10 input at 10x10, got "
        f"{tuple(getattr(out, 'shape', ()))}. Use the kernel_size, stride and padding arguments, "
        "not fixed numbers.",
    )


# ---------------------------------------------------------------- losses

LOGITS = [[2.0], [-1.0], [0.5], [-3.0], [40.0], [-40.0]]


def labels_used(value, grad, logits):
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


def labels_cause(labels, target):
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


def bce(logits, target):
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


SIZED_HINT = (
    "Likely cause: the labels are not sized from D_out, for example torch.ones(batch_size) "
    "with the notebook's global batch_size, which is not the size of this D_out (nor of "
    "a last, smaller batch). Make the labels from D_out itself: torch.ones_like(D_out) or "
    "torch.full_like(D_out, ...)."
)


def one_hint(name):
    return (
        f"{name} works for a batch of 6 but not for a batch of one image: squeezing D_out turns "
        "its shape (1, 1) into a single number, while labels such as torch.ones(batch_size) keep "
        "the shape (1,). Make the labels shaped like D_out (torch.ones_like(D_out), "
        "torch.full_like(D_out, ...)) and do not squeeze D_out."
    )


def random_logits(seed):
    """A (16, 1) batch of logits in [-5, 5] drawn from `seed` (the grader's, unknown before)."""
    return (torch.rand(16, 1, generator=torch.Generator().manual_seed(seed)) * 10 - 5).tolist()


def _loss_observation(loss, d_out):
    """A loss as data: its value (plain) and its gradient with respect to d_out (or None)."""
    grad = None
    if isinstance(loss, torch.Tensor) and loss.requires_grad and loss.dim() == 0:
        try:
            (grad,) = torch.autograd.grad(loss, d_out, allow_unused=True)
        except RuntimeError:
            grad = None
        grad = None if grad is None else grad.detach().cpu()
    return {"value": plain(loss), "grad": grad}


def observe_loss(obs, key, fn, name, call, devices, seed):
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


def judge_loss(obs, key, name, call, target, seed):
    """The checks of a loss on what observe_loss saw: value, finiteness, gradient, a batch of one
    and random logits, each against the hand-computed mean BCE with logits."""
    found = obs.need(key)
    devices = found["devices"]
    check(
        isinstance(devices, list) and 0 < len(devices) <= 2 and set(devices) <= {"cpu", "cuda"},
        "The test's list of devices came back malformed.",
    )
    for device in devices:
        seen = found.get(device) if device in found else obs.need(f"{key} on {device}")
        _judge_one_loss(seen, name, call, target, LOGITS)
    single = found["one"] if "one" in found else obs.need(f"{key} on one image")
    shown = single if isinstance(single, torch.Tensor) else type_name(single)
    check(
        isinstance(single, torch.Tensor)
        and single.dim() == 0
        and abs(single.item() - bce([[0.3]], target)) < 1e-4,
        f"{name} should also work for a batch of one, D_out of shape (1, 1): expected "
        f"{bce([[0.3]], target):.5f}, got {shown}. "
        "Make the labels shaped like D_out (torch.ones_like(D_out)) instead of squeezing D_out.",
    )
    seen = found["random"] if "random" in found else obs.need(f"{key} on random logits")
    _judge_one_loss(seen, name, f"{call} on other logits", target, random_logits(seed))


def _judge_one_loss(seen, name, call, target, logits):
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
    expected = bce(logits, target)
    got = loss.item()
    if abs(got - expected) > 1e-4 * max(1.0, abs(expected)):
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
        [[(1 / (1 + math.exp(-x)) - target) / len(logits)] for (x,) in logits]
    )
    check(
        torch.allclose(grad.to(expected_grad.dtype), expected_grad, atol=1e-5),
        f"{name}'s gradient with respect to D_out is not that of the mean BCE with logits.",
    )


def loss_devices():
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


# ---------------------------------------------------------------- training loop


class TinyD(nn.Module):
    """A small DCGAN discriminator for 16x16 images, used only by test_train."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 4, 4, 2, 1),
            nn.LeakyReLU(0.2),  # (B, 4, 8, 8)
            nn.Conv2d(4, 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(8),
            nn.LeakyReLU(0.2),  # (B, 8, 4, 4)
        )
        self.fc = nn.Linear(8 * 4 * 4, 1)

    def forward(self, x):
        return self.fc(self.net(x).flatten(1))


class TinyG(nn.Module):
    """A small DCGAN generator for 16x16 images, used only by test_train."""

    def __init__(self, z_size):
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

    def forward(self, z):
        return self.net(self.fc(z).view(-1, 8, 4, 4))


class Recorder:
    """Watches a training run and records, as data, what the step checks need (StepJudge).

    Events, in order: {"kind": "start"} with the gradients D and G hold before the run; "D" or
    "G" with the input and output of each call made with gradients on (the steps' calls);
    "sample" with G's input in calls under torch.no_grad() (sampling, logging); and at each
    optimizer step, before the weights change, "d_step" or "g_step" with D's and G's weights
    (state_dict) and gradients. At most MAX_EVENTS; past them it only sets `overflow`.
    """

    MAX_EVENTS = 200  # a right run of the test takes about 60

    def __init__(self, D, G, d_opt, g_opt):
        self.D, self.G = D, G
        # On a GPU, convolutions in full float32 while the run is recorded (cuDNN uses TF32 by
        # default, about 1e-3 off): the judge replays the steps on the CPU and must get the same
        # gradients. close() restores the setting.
        try:
            self._tf32 = torch.backends.cudnn.allow_tf32
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
        if not torch.is_grad_enabled():
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

    def close(self):
        for h in self.handles:
            h.remove()
        if self._tf32 is not None:
            torch.backends.cudnn.allow_tf32 = self._tf32

    def record(self):
        return {"events": self.events, "overflow": self.overflow}


class StepJudge:
    """Checks every optimizer step of a recorded training run (Recorder.record()), in order.

    At each step it loads the recorded weights into its own D and G (the kit's TinyD and TinyG,
    built by the judge), replays the expected loss on exactly the inputs D and G saw since the
    last step and compares gradients; the first wrong step raises its GradedTestFailure.
    """

    def __init__(self, D, G, scaled_batches, record):
        self.D, self.G = D, G
        self.scaled_batches = scaled_batches
        self.window = []  # ("D" | "G", input, output) since the last optimizer step
        self.g_history = []  # recent G calls, to find where the fakes D scores came from
        self.d_step_reached_g = False  # the D step's backward also filled G's gradients
        self.steps = {"d_step": 0, "g_step": 0}
        self.g_inputs = []  # G's input in every call that is part of a step
        self.sample_inputs = []  # G's input in calls under torch.no_grad() (the samples)
        self.overflow = record["overflow"] is True
        events = record["events"]
        check(
            isinstance(events, list) and events and events[0].get("kind") == "start",
            "The record of the training run came back malformed.",
        )
        start = events[0]
        self.last_g_grads = self._grads(start["g_grads"], G)  # G's at its last step (or before)
        self.last_d_grads = self._grads(start["d_grads"], D)  # D's at the last step of either
        self.g_grads_at_d_step = self.last_g_grads
        for event in events[1:]:
            kind = event["kind"]
            if kind in ("D", "G"):
                self._forward(kind, event["input"], event["output"])
            elif kind == "sample":
                self.sample_inputs.append(event["input"])
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
                check(False, "The record of the training run came back malformed.")

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
        check(
            isinstance(inp, torch.Tensor)
            and isinstance(out, torch.Tensor)
            and inp.dim() >= 1
            and len(inp) <= 64
            and inp.numel() <= 64 * 3 * 16 * 16
            and out.numel() <= 64 * 3 * 16 * 16,
            "The record of the training run came back malformed (or D and G saw batches far "
            "larger than the test's).",
        )
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

    def count(self, kind):
        return self.steps[kind]


FRESH_Z = (
    "Draw fresh noise for every batch, z = torch.rand(batch_size, z_size, device=device) * 2 - 1, "
    "and keep fixed_z for the sample images only."
)


def check_fresh_noise(g_inputs, sample_inputs):
    """Every batch's fakes come from new noise: no z row of the steps is one of the sample noise
    (fixed_z), and none feeds G in more than two calls (a D and a G step of one batch)."""
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
    all_rows = torch.cat(rows)
    uses = sum(rows_match(all_rows, r).int() for r in rows)  # per row: G calls that used it
    check(
        uses.max() <= 2,
        f"The same noise z fed G in {uses.max()} training calls, across batches, so G keeps "
        "training on the same few fakes. " + FRESH_Z,
    )


def grads_equal(a, b):
    """Whether two gradient lists hold the same values (None counts as zero)."""
    for x, y in zip(a, b):
        if x is None or y is None:
            if (x is not None and x.any()) or (y is not None and y.any()):
                return False
        elif not torch.equal(x, y):
            return False
    return True


def grads_plus(a, b):
    """a + b for two gradient lists (None counts as zero)."""
    return [y if x is None else x if y is None else x + y for x, y in zip(a, b)]


def is_zero(grads):
    return all(g is None or not g.any() for g in grads)


def rows_match(rows, reference):
    """For each row of `rows`, whether it equals some row of `reference`."""
    if reference is None or rows.shape[1:] != reference.shape[1:]:
        return torch.zeros(len(rows), dtype=torch.bool)
    diff = (rows.flatten(1)[:, None, :] - reference.flatten(1)[None, :, :]).abs().amax(-1)
    return (diff < 1e-5).any(1)


def replay_grads(nets, params_of, loss_fn):
    """Gradients of loss_fn() with respect to params_of's parameters.

    The replay runs the networks again, which would update batch norm's running statistics:
    they are restored afterwards, so the learner's run continues as if nothing happened.
    """
    saved = [{k: v.clone() for k, v in net.state_dict().items()} for net in nets]
    params = list(params_of.parameters())
    try:
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    finally:
        with torch.no_grad():
            for net, state in zip(nets, saved):
                for k, v in net.state_dict().items():
                    v.copy_(state[k])
    return [torch.zeros_like(p).cpu() if g is None else g.cpu() for p, g in zip(params, grads)]


def grads_close(grads, expected, rtol=2e-3):
    got = torch.cat([(torch.zeros(0) if g is None else g.flatten()) for g in grads])
    exp = torch.cat([e.flatten() for e in expected])
    if got.numel() != exp.numel():
        return False
    return (got - exp).norm() <= rtol * max(exp.norm().item(), 1e-8)


def bce_logits(logits, labels):
    return F.binary_cross_entropy_with_logits(logits, labels)


def takes_argument(fn, name):
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


def check_train_signature(train, args, kwargs):
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


@contextlib.contextmanager
def quiet(train):
    """Hide train's prints and progress bars while the test runs it, so the test prints one line."""
    import io

    namespace = getattr(train, "__globals__", {})
    saved = namespace.get("tqdm", None)
    if "tqdm" in namespace:
        namespace["tqdm"] = lambda iterable, *args, **kwargs: iterable
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        if "tqdm" in namespace:
            namespace["tqdm"] = saved


def check_d_step(d_grads, window, scaled_batches, fake_out, last_d_grads, D):
    d_calls = [e for e in window if e[0] == "D"]
    check(
        d_calls, "d_optimizer.step() was called without D looking at any image since the last step."
    )
    labelled, real_rows, fake_rows = [], 0, 0
    for _, inp, _ in d_calls:
        is_real = torch.zeros(len(inp), dtype=torch.bool)
        for batch in scaled_batches:
            is_real |= rows_match(inp, batch)
        is_fake = rows_match(inp, fake_out)
        unknown = ~(is_real | is_fake)
        if unknown.any():
            raw = any(rows_match(inp, (b + 1) / 2).any() for b in scaled_batches)
            check(
                not raw,
                "D was trained on the real images in [0, 1]. Scale them to [-1, 1] first: "
                "real_images = scale(real_images).",
            )
            check(
                False,
                "In the D step, D saw images that are neither the scaled real batch nor G's "
                "output.",
            )
        real_rows += int(is_real.sum())
        fake_rows += int(is_fake.sum())
        labelled.append((inp, is_real))
    check(
        real_rows > 0,
        "The D step never showed D the real images: d_loss needs real_loss(D(real_images)).",
    )
    check(
        fake_rows > 0,
        "The D step never showed D the fake images: d_loss needs "
        "fake_loss(D(fake_images.detach())).",
    )

    def loss(real_label, per_call_mean=True, factor=1.0):
        def fn():
            total = 0.0
            outs, labels = [], []
            for inp, is_real in labelled:
                out = D(inp.to(device_of(D)))
                is_real = is_real.to(out.device)
                lab = torch.where(is_real, real_label, 0.0).view(-1, 1).to(out)
                if per_call_mean:
                    # real and fake may come in one call: mean over each kind separately
                    for mask in (is_real, ~is_real):
                        if mask.any():
                            total = total + bce_logits(out[mask], lab[mask])
                else:
                    outs.append(out)
                    labels.append(lab)
            if not per_call_mean:
                total = bce_logits(torch.cat(outs), torch.cat(labels))
            return factor * total

        return fn

    # Accepted forms, most common first: label 1 or 0.9 (smoothing), one mean per call or a
    # mean over one joint call, and (real + fake) / 2.
    forms = [
        (label, per_call, factor)
        for label in (1.0, 0.9)
        for per_call, factor in ((True, 1.0), (False, 1.0), (True, 0.5))
    ]
    expected = []
    for form in forms:
        expected.append(replay_grads((D,), D, loss(*form)))
        if grads_close(d_grads, expected[-1]):
            return
    # The real cause first: gradients left from the last step, then flipped labels.
    if not is_zero(last_d_grads) and any(
        grads_close(d_grads, grads_plus(e, last_d_grads)) for e in expected
    ):
        check(
            False,
            "d_optimizer.zero_grad() is missing: at d_optimizer.step(), D's gradients are this "
            "batch's d_loss gradients plus those left from the step before (backward() adds to "
            ".grad). Call d_optimizer.zero_grad() before d_loss.backward(), every batch.",
        )
    flipped = replay_grads((D,), D, flipped_d_loss(D, labelled))
    if grads_close(d_grads, flipped):
        check(
            False,
            "The D step's labels are flipped: real images need real_loss (label 1) and fakes need "
            "fake_loss (label 0).",
        )
    check(
        False,
        "At d_optimizer.step(), D's gradients are not those of real_loss(D(real_images)) + "
        "fake_loss(D(fake_images.detach())) for this batch. Check d_loss: real_loss on D's scores "
        "of the real images plus fake_loss on its scores of G's images.",
    )


def flipped_d_loss(D, labelled):
    def fn():
        total = 0.0
        for inp, is_real in labelled:
            out = D(inp.to(device_of(D)))
            is_real = is_real.to(out.device)
            for mask, label in ((is_real, 0.0), (~is_real, 1.0)):
                if mask.any():
                    total = total + bce_logits(out[mask], torch.full_like(out[mask], label))
        return total

    return fn


def check_g_step(g_grads, window, g_history, scaled_batches, D, G, last_g_grads, g_grads_at_d_step):
    d_calls = [e for e in window if e[0] == "D"]
    check(d_calls, "The G step must score G's images with D: g_loss = real_loss(D(fake_images)).")
    saw_real = any(
        rows_match(inp, batch).any() for _, inp, _ in d_calls for batch in scaled_batches
    )
    check(
        not saw_real,
        "g_optimizer.step() was called right after D scored the real images, that is, in the D "
        "step. Call d_optimizer.step() after d_loss.backward(), and g_optimizer.step() only after "
        "g_loss.backward().",
    )
    # The fakes D scored may come from a G call before the D step (reused, not detached for G).
    source = None
    for _, inp, _ in d_calls:
        for g_event in reversed(g_history):
            if rows_match(inp, g_event[2]).all():
                source = (g_event[1], inp)
                break
    check(
        source is not None,
        "In the G step, D should score G's fake images (g_loss = real_loss(D(fake_images))).",
    )
    z, _ = source

    def g_loss(label):
        def fn():
            out = D(G(z.to(device_of(G))))
            return bce_logits(out, torch.full_like(out, label))

        return fn

    expected = replay_grads((D, G), G, g_loss(1.0))
    if grads_close(g_grads, expected):
        return
    # The real cause first: what was added to the right gradients, then a different loss.
    leaked = not grads_equal(g_grads_at_d_step, last_g_grads)
    if not is_zero(g_grads_at_d_step) and grads_close(
        g_grads, grads_plus(expected, g_grads_at_d_step)
    ):
        if leaked:
            check(
                False,
                "G's update also carries the D step's gradients: the fakes are not detached in "
                "the D step, so d_loss.backward() fills G's gradients too, and they are still "
                "there at g_optimizer.step(). Call g_optimizer.zero_grad() right before "
                "g_loss.backward() (or detach the fakes in the D step: "
                "fake_loss(D(fake_images.detach()))).",
            )
        check(
            False,
            "g_optimizer.zero_grad() is missing: at g_optimizer.step(), G's gradients are this "
            "batch's g_loss gradients plus those left from the step before (backward() adds to "
            ".grad). Call g_optimizer.zero_grad() before g_loss.backward(), every batch.",
        )
    check(
        not is_zero(g_grads),
        "At g_optimizer.step(), G has no gradient: g_loss does not reach G's weights. Do not "
        "detach the fakes in the G step: g_loss = real_loss(D(fake_images)).",
    )
    if grads_close(g_grads, replay_grads((D, G), G, g_loss(0.9))):
        check(
            False,
            "The G step uses smoothed labels (0.9). Label smoothing belongs to D's loss on real "
            "images (real_loss(D(real_images), smooth=True)); G's loss uses labels 1: g_loss = "
            "real_loss(D(fake_images)).",
        )
    if grads_close(g_grads, replay_grads((D, G), G, g_loss(0.0))):
        check(
            False,
            "The G step uses fake labels. G wants D to call its images real: g_loss = "
            "real_loss(D(fake_images)).",
        )
    check(
        False,
        "At g_optimizer.step(), G's gradients are not those of real_loss(D(fake_images)) for this "
        "batch. Check g_loss: real_loss (labels 1) on D's scores of G's fake images.",
    )


def tensor_like(value, reference, what):
    """`value` (observed) when it is a tensor shaped like `reference`, else a failure naming it."""
    check(
        isinstance(value, torch.Tensor) and value.shape == reference.shape,
        f"{what} should return a tensor of shape {tuple(reference.shape)}, got "
        + (
            f"shape {tuple(value.shape)}."
            if isinstance(value, torch.Tensor)
            else f"a {type(value).__name__}."
        ),
    )
    return value


# ---------------------------------------------------------------- networks as data

# Layers the judge knows: their hyperparameters, read into a record and replayed from it.
KNOWN_LEAVES = {
    "Conv2d": (
        nn.Conv2d,
        ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")
        + ("padding_mode",),
    ),
    "ConvTranspose2d": (
        nn.ConvTranspose2d,
        ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")
        + ("padding_mode", "output_padding"),
    ),
    "BatchNorm2d": (nn.BatchNorm2d, ("num_features", "eps", "affine", "track_running_stats")),
    # the WGAN-GP critic's per-image norms (part 2)
    "GroupNorm": (nn.GroupNorm, ("num_groups", "num_channels", "eps", "affine")),
    "LayerNorm": (nn.LayerNorm, ("normalized_shape", "eps", "elementwise_affine")),
    "InstanceNorm2d": (
        nn.InstanceNorm2d,
        ("num_features", "eps", "affine", "track_running_stats"),
    ),
    "Linear": (nn.Linear, ("in_features", "out_features")),
    "LeakyReLU": (nn.LeakyReLU, ("negative_slope", "inplace")),
    "ReLU": (nn.ReLU, ("inplace",)),
    "Tanh": (nn.Tanh, ()),
    "Sigmoid": (nn.Sigmoid, ()),
    "Identity": (nn.Identity, ()),
    "Flatten": (nn.Flatten, ("start_dim", "end_dim")),
    "Dropout": (nn.Dropout, ("p",)),
    "Dropout2d": (nn.Dropout2d, ("p",)),
    "MaxPool2d": (nn.MaxPool2d, ()),
    "AvgPool2d": (nn.AvgPool2d, ()),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, ()),
    "AdaptiveMaxPool2d": (nn.AdaptiveMaxPool2d, ()),
}
POOLING = ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d")


def _attr(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float)) for v in value):
        return list(value)
    return None


def leaf_record(m, max_state=None):
    """A leaf module as data: its kind (the torch.nn class it is or extends, else its own class
    name), hyperparameters, train/eval mode and its parameters and buffers (CPU copies).

    A layer with more than `max_state` numbers in its state is recorded without them ("state":
    {}, "left_out": True): far larger than any the test asks for, it can fail the structural
    checks but never pass the replay."""
    kind = next(
        (
            name
            for cls in type(m).__mro__
            for name, (known, _) in KNOWN_LEAVES.items()
            if cls is known
        ),
        None,
    )
    attrs = {a: _attr(getattr(m, a, None)) for a in KNOWN_LEAVES[kind][1]} if kind else {}
    state = m.state_dict()
    record = {
        "kind": kind or type(m).__name__,
        "known": kind is not None,
        "attrs": attrs,
        "training": bool(m.training),
        "state": {k: v.detach().to("cpu", copy=True) for k, v in state.items()},
        "params": [name for name, _ in m.named_parameters()],
    }
    if max_state is not None and sum(v.numel() for v in state.values()) > max_state:
        record.update(state={}, left_out=True)
    return record


def trace_record(module, *inputs, max_state=None):
    """Run module(*inputs) as trace_leaves does; return (output as data, the trace as data:
    {"leaves": [leaf_record], "calls": [{"leaf": index, "input", "output"}]}). `max_state` as
    for leaf_record."""
    leaves = leaf_modules(module)
    index = {id(m): i for i, m in enumerate(leaves)}
    out, calls = trace_leaves(module, *inputs)
    record = {
        "leaves": [leaf_record(m, max_state) for m in leaves],
        "calls": [
            {"leaf": index[id(m)], "input": i.cpu(), "output": o.cpu()}
            for m, i, o in calls
            if id(m) in index
        ],
    }
    return plain(out), record


class Leaf:
    """A leaf module rebuilt from its record (judge side): .kind, its hyperparameters as
    attributes (tuples where the module has tuples), .state and .training."""

    def __init__(self, record):
        self.kind = str(record["kind"])
        self.known = record["known"] is True
        self.training = record["training"] is True
        self.state = dict(record["state"])
        self.params = list(record["params"])
        self.left_out = record.get("left_out") is True  # recorded without its state
        check(
            all(isinstance(v, torch.Tensor) for v in self.state.values()),
            "The record of a layer came back malformed.",
        )
        self.attrs = {
            k: tuple(v) if isinstance(v, list) else v for k, v in dict(record["attrs"]).items()
        }

    def __getattr__(self, name):
        attrs = self.__dict__.get("attrs", {})
        if name in attrs:
            return attrs[name]
        raise AttributeError(name)

    def n_params(self):
        return sum(self.state[k].numel() for k in self.params if k in self.state)


def rebuild_trace(record, who, first_input=None, replay=True):
    """(leaves, calls) from trace_record's data, checked: every call of a layer the judge knows
    gives what that layer computes from its recorded weights and input, and the first call
    takes `first_input` (the test's own input, when given). calls are (Leaf, input, output).
    With replay=False only read: the caller runs check_replayed(calls, who) itself, later."""
    leaves = [Leaf(r) for r in record["leaves"]]
    calls = []
    for call in record["calls"]:
        i, inp, out = call["leaf"], call["input"], call["output"]
        check(
            isinstance(i, int)
            and 0 <= i < len(leaves)
            and isinstance(inp, torch.Tensor)
            and isinstance(out, torch.Tensor),
            f"The record of {who}'s layers came back malformed.",
        )
        calls.append((leaves[i], inp, out))
    if replay:
        check_replayed(calls, who)
    if first_input is not None:
        check_first_input(calls, first_input, who)
    return leaves, calls


def check_replayed(calls, who):
    """Every call of a layer the judge knows gives what that layer computes from its recorded
    weights and input (the calls of rebuild_trace)."""
    check(
        sum(replay_cost(leaf, inp) for leaf, inp, _ in calls) <= MAX_REPLAY_MACS
        and not any(leaf.left_out for leaf, _, _ in calls),
        f"The record of {who}'s layers is far larger than the test's networks: it cannot be "
        "replayed.",
    )
    for leaf, inp, out in calls:
        expected = replay(leaf, inp)
        if expected is None:
            continue
        check(
            expected.shape == out.shape
            and (expected - out).abs().max() <= 1e-4 * (1 + expected.abs().max()),
            f"{who}'s {leaf.kind} layer gave outputs that its own weights do not give for its "
            "input: the record of this network cannot be trusted.",
        )


def check_first_input(calls, first_input, who):
    """The first traced call took `first_input` (the test's own input), up to a reshape."""
    if calls:
        inp = calls[0][1]
        check(
            inp.numel() == first_input.numel()
            and torch.allclose(inp.flatten().double(), first_input.flatten().double(), atol=1e-6),
            f"{who}'s first layer did not receive the test's input: the record of this network "
            "cannot be trusted (pass the input straight to the first layer).",
        )


def check_output_is_last_layers(calls, out, who):
    """The network's output `out` is what its last traced layer gave (follows)."""
    check(
        follows(calls[-1][2], out),
        f"{who[0].upper()}{who[1:]}'s output is not what its last layer gave: the record of {who} "
        "cannot be trusted.",
    )


def check_record_is_own(calls, out, first_input, who):
    """The trace of rebuild_trace(..., replay=False) is the network's own: every layer call
    replayed from its recorded weights, its first layer took the judge's `first_input`, and its
    output is the last layer's."""
    check_replayed(calls, who)
    check_first_input(calls, first_input, who)
    check_output_is_last_layers(calls, out, who)


MAX_REPLAY_MACS = 5 * 10**9  # the test's D needs 10**7 (10**9 with 16 times the channels)


def replay_cost(leaf, x):
    """An upper bound on the multiply-adds replay(leaf, x) does, from shapes alone."""
    weight = leaf.state.get("weight")
    if not isinstance(weight, torch.Tensor) or x.dim() < 1:
        return x.numel()
    if leaf.kind == "Conv2d" and x.dim() == 4 and weight.dim() == 4:
        a = leaf.attrs
        try:  # each output pixel costs one pass of the weight
            pad = (0, 0) if a["padding"] == "valid" else a["padding"]
            size = []
            for i in (0, 1):
                reach = a["dilation"][i] * (weight.shape[2 + i] - 1) + 1
                span = x.shape[2 + i] + (0 if pad == "same" else 2 * pad[i] - reach)
                size.append(x.shape[2 + i] if pad == "same" else span // a["stride"][i] + 1)
        except (KeyError, TypeError, IndexError, ZeroDivisionError):
            return 0  # hyperparameters replay() refuses anyway
        return x.shape[0] * max(size[0], 0) * max(size[1], 0) * weight.numel()
    if leaf.kind == "ConvTranspose2d":
        return x.numel() // max(1, x.shape[1] if x.dim() > 1 else 1) * weight.numel()
    if leaf.kind == "Linear":
        return x.numel() // max(1, x.shape[-1]) * weight.numel()
    return x.numel()


def replay(leaf, x):
    """What `leaf` computes from input x with its recorded weights; None for layers that are
    random (dropout) or unknown to the judge."""
    a, st = leaf.attrs, leaf.state
    if not leaf.known or not x.is_floating_point() or a.get("inplace"):
        return None  # an in-place activation's recorded input is already its output
    x = x.float()
    kind = leaf.kind
    if kind in ("Conv2d", "ConvTranspose2d"):
        if a.get("padding_mode") != "zeros":
            return None
        small = all(
            isinstance(a.get(k), tuple) and all(isinstance(n, int) and 0 <= n <= 16 for n in a[k])
            for k in ("stride", "dilation") + (("output_padding",) if "output_padding" in a else ())
        ) and (
            a.get("padding") in ("same", "valid")
            or (
                isinstance(a.get("padding"), tuple)
                and all(isinstance(n, int) and 0 <= n <= 16 for n in a["padding"])
            )
        )
        check(
            small and isinstance(a.get("groups"), int) and 1 <= a["groups"] <= 4096,
            f"A {kind} layer's stride, padding or dilation is outside what the test accepts "
            "(0 to 16).",
        )
    if kind == "Conv2d":
        return F.conv2d(
            x, st["weight"], st.get("bias"), a["stride"], a["padding"], a["dilation"], a["groups"]
        )
    if kind == "ConvTranspose2d":
        return F.conv_transpose2d(
            x,
            st["weight"],
            st.get("bias"),
            a["stride"],
            a["padding"],
            a["output_padding"],
            a["groups"],
            a["dilation"],
        )
    if kind in ("BatchNorm2d", "InstanceNorm2d"):  # the same arguments, in the same order
        norm = F.batch_norm if kind == "BatchNorm2d" else F.instance_norm
        batch_stats = leaf.training or not a["track_running_stats"]
        return norm(
            x,
            None if batch_stats else st["running_mean"],
            None if batch_stats else st["running_var"],
            st.get("weight"),
            st.get("bias"),
            batch_stats,
            0.0,
            a["eps"],
        )
    if kind == "GroupNorm":
        return F.group_norm(x, a["num_groups"], st.get("weight"), st.get("bias"), a["eps"])
    if kind == "LayerNorm":
        shape = a["normalized_shape"]
        return F.layer_norm(x, shape, st.get("weight"), st.get("bias"), a["eps"])
    if kind == "Linear":
        return F.linear(x, st["weight"], st.get("bias"))
    if kind == "LeakyReLU":
        return F.leaky_relu(x, a["negative_slope"])
    simple = {"ReLU": F.relu, "Tanh": torch.tanh, "Sigmoid": torch.sigmoid, "Identity": lambda t: t}
    if kind in simple:
        return simple[kind](x)
    if kind == "Flatten":
        return x.flatten(a["start_dim"], a["end_dim"])
    return None


# ---- plain data for the observations of both parts' tests


def optimizer_facts(opt, D, G):
    """An optimizer as data: its class, and per parameter group the learning rate, the betas and
    which parameters it holds (["D", i] for D's i-th parameter, ["G", i], or ["other", -1])."""
    if opt is None:
        return None
    which = {id(p): ["G", i] for i, p in enumerate(G.parameters())}
    which.update({id(p): ["D", i] for i, p in enumerate(D.parameters())})
    groups = []
    for group in getattr(opt, "param_groups", []):
        groups.append(
            {
                "lr": plain(group.get("lr")),
                "betas": plain(group.get("betas")),
                "params": [which.get(id(p), ["other", -1]) for p in group.get("params", [])],
            }
        )
    return {
        "adam": isinstance(opt, torch.optim.Adam),
        "type": type(opt).__name__,
        "groups": groups,
    }


def logged_numbers(record):
    """One logged record as a list of floats (None where an entry is not a number)."""
    if not isinstance(record, (tuple, list)):
        return {"type": type(record).__name__}
    numbers = []
    for value in list(record)[:8]:
        try:
            numbers.append(float(value))
        except (TypeError, ValueError, RuntimeError):
            numbers.append(None)
    return numbers


def observe_training_run(obs, recorder, train, label, *args, **options):
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
