"""Graded tests for dlnd_face_generation.ipynb.

Each ``test_*`` function checks one piece you write in the notebook. It prints
``Tests Passed`` when the piece behaves as asked, and otherwise raises an
AssertionError that says what was expected, what your code gave, and the most
likely cause. The tests feed varied inputs (never all-equal ones), run on the
device your model is on, and each takes a few seconds on a CPU.
"""
from __future__ import annotations

import contextlib
import math
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

__all__ = [
    "test_get_dataloader", "test_scale", "test_conv", "test_deconv",
    "test_discriminator", "test_generator", "test_weights_init",
    "test_real_loss", "test_fake_loss", "test_optimizers", "test_train",
]


# ---------------------------------------------------------------- shared plumbing

class _Fail(AssertionError):
    """A graded-test failure: the message is written for the learner."""


def _check(condition, message):
    if not condition:
        raise _Fail(message)


def _passed():
    print("Tests Passed")


@contextlib.contextmanager
def _calling(what, hint=""):
    """Turn an exception raised by the learner's code into a failure that says where it came from.

    `hint` names the likely cause when the caller knows it better than the generic guesses.
    """
    try:
        yield
    except AssertionError:
        raise
    except NotImplementedError as err:
        raise _Fail(f"{what} is not implemented yet ({err}). Write it in the cell above, "
                    f"run that cell, then run this test again.") from None
    except Exception as err:  # anything else the learner's code raised
        text = f"{type(err).__name__}: {err}"
        lowered = text.lower()
        if any(word in lowered for word in ("cuda", "device", "nvidia", "driver")):
            hint = (" Likely cause: a tensor made on a fixed device (for example with .cuda()). "
                    "Create tensors on the input's device, e.g. torch.ones_like(x) or "
                    "torch.zeros(n, device=x.device).")
        elif hint:
            hint = " " + hint
        elif "shape" in lowered or "size" in lowered:
            hint = " Likely cause: a layer's size or a reshape does not match the shapes described above."
        raise _Fail(f"{what} raised {text}.{hint}") from err


def _device_of(module):
    """The device of the module's first parameter (the CPU when it has none)."""
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def _leaf_modules(module):
    return [m for m in module.modules() if not list(m.children())]


def _trace_leaves(module, *inputs):
    """Run module(*inputs) and record (leaf module, input tensor, output tensor) in call order."""
    calls, handles = [], []
    for leaf in _leaf_modules(module):
        handles.append(leaf.register_forward_hook(
            lambda m, inp, out: calls.append((m, inp[0].detach(), out.detach()))))
    try:
        out = module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return out, calls


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _samples_independent(net, inputs, n=4):
    """In eval mode, is each sample's output the same alone as inside the batch?"""
    net.eval()
    try:
        with torch.no_grad():
            together = net(inputs)
            alone = torch.cat([net(inputs[i:i + 1]) for i in range(n)])
    finally:
        net.train()
    return torch.allclose(together[:n], alone, atol=1e-4)


def _params_without_gradient(net, inputs, who):
    """Backpropagate net(inputs).sum(); return the names of parameters that got no gradient."""
    with _calling(f"Backpropagating through {who}"):
        net.zero_grad()
        net(inputs).sum().backward()
    return [n for n, p in net.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]


def _check_size_follows_conv_dim(small, big, who, low, layers):
    """Doubling conv_dim (small -> big) should roughly quadruple the parameters (convs are k x k x in x out)."""
    ratio = _n_params(big) / _n_params(small)
    _check(low < ratio < 4.5,
           f"{who}'s size should follow conv_dim: doubling conv_dim should roughly quadruple the parameters, "
           f"got {ratio:.2f}x. Build every layer from conv_dim ({layers}).")


def _push_output(module, make_input, direction, steps=25, lr=0.05):
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

def _write_test_images(root):
    """A small ImageFolder tree: square and non-square images, RGB, grayscale and RGBA.

    The non-square images have a green centre square and red strips on the long sides: a
    correct Resize + CenterCrop keeps only green, resizing to a square keeps the red.
    """
    folder = Path(root) / "faces"
    folder.mkdir(parents=True)
    gen = torch.Generator().manual_seed(7)
    for i in range(6):  # square, varied colours
        colour = tuple(int(c) for c in torch.randint(0, 256, (3,), generator=gen))
        Image.new("RGB", (64, 64), colour).save(folder / f"sq{i}.png")
    for name, (w, h) in {"wide": (96, 48), "tall": (40, 80)}.items():
        img = Image.new("RGB", (w, h), (220, 20, 20))
        # green reaches 4 px beyond the centre square, so resampling at its edge stays green
        side = min(w, h) + 8
        left, top = max((w - side) // 2, 0), max((h - side) // 2, 0)
        img.paste(Image.new("RGB", (min(side, w), min(side, h)), (20, 200, 20)), (left, top))
        img.save(folder / f"{name}.png")
    Image.new("L", (50, 50), 128).save(folder / "gray.png")
    Image.new("RGBA", (64, 64), (10, 20, 200, 255)).save(folder / "rgba.png")
    return 10


def test_get_dataloader(get_dataloader):
    """get_dataloader(batch_size, image_size, data_dir) -> shuffled DataLoader of square images in [0, 1]."""
    from torch.utils.data import DataLoader, RandomSampler

    with tempfile.TemporaryDirectory() as tmp:
        n_images = _write_test_images(tmp)
        with _calling("get_dataloader(batch_size=4, image_size=32, data_dir=...)"):
            loader = get_dataloader(4, 32, tmp)
        _check(isinstance(loader, DataLoader),
               f"get_dataloader should return a torch.utils.data.DataLoader, got {type(loader).__name__}.")
        _check(len(loader.dataset) == n_images,
               f"The DataLoader should read the {n_images} images in data_dir, but its dataset has "
               f"{len(loader.dataset)}. Make sure you pass data_dir to datasets.ImageFolder.")
        _check(loader.batch_size == 4,
               f"The DataLoader's batch_size should be the batch_size argument (4), got {loader.batch_size}.")
        _check(isinstance(loader.sampler, RandomSampler),
               "The DataLoader does not shuffle: pass shuffle=True so each epoch sees the images in a new order.")

        # Non-square images: centre crop (all green) versus squash (red strips on the sides).
        samples = getattr(loader.dataset, "samples", None)
        _check(samples is not None, "The DataLoader's dataset should be a torchvision datasets.ImageFolder.")
        by_name = {Path(p).stem: i for i, (p, _) in enumerate(samples)}
        for name in ("wide", "tall"):
            with _calling(f"Loading the non-square test image {name}.png"):
                img, _ = loader.dataset[by_name[name]]
            _check(isinstance(img, torch.Tensor),
                   f"The dataset gives {type(img).__name__} objects instead of tensors: end the transform "
                   f"with transforms.ToTensor().")
            _check(tuple(img.shape) == (3, 32, 32),
                   f"A non-square image should come out as (3, 32, 32), got {tuple(img.shape)}. "
                   f"Use transforms.Resize(image_size) followed by transforms.CenterCrop(image_size).")
            red = (img[0] > 0.5) & (img[1] < 0.4)
            _check(red.float().mean() < 0.02,
                   f"The non-square image {name}.png was squashed instead of centre-cropped: its red side "
                   f"strips are still in the output. Use transforms.Resize(image_size) (one number: the "
                   f"shorter side) followed by transforms.CenterCrop(image_size).")

        with _calling("Reading a batch from your DataLoader"):
            batches = list(loader)
        images, labels = batches[0]
        _check(isinstance(images, torch.Tensor) and images.dtype == torch.float32,
               f"Images should be a float32 tensor (transforms.ToTensor() gives one), got "
               f"{getattr(images, 'dtype', type(images))}.")
        _check(tuple(images.shape) == (4, 3, 32, 32),
               f"A batch should have shape (4, 3, 32, 32) for batch_size=4, image_size=32, got "
               f"{tuple(images.shape)}.")
        _check(images.min() >= 0 and images.max() <= 1,
               f"Pixel values should lie in [0, 1] (what ToTensor gives), got min {images.min():.3f}, "
               f"max {images.max():.3f}. Scaling to [-1, 1] comes later, in scale().")
        _check(len(labels) == 4, f"Each batch should also carry the labels, got {len(labels)} for 4 images.")

        with _calling("get_dataloader(batch_size=3, image_size=16, data_dir=...)"):
            small = next(iter(get_dataloader(3, 16, tmp)))[0]
        _check(tuple(small.shape) == (3, 3, 16, 16),
               f"With batch_size=3 and image_size=16 a batch should be (3, 3, 16, 16), got "
               f"{tuple(small.shape)}. Use the image_size argument in Resize and CenterCrop.")
    _passed()


# ---------------------------------------------------------------- scale

def test_scale(scale):
    """scale(x, feature_range) maps [0, 1] linearly onto feature_range and leaves x unchanged."""
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 1.0
    original = x.clone()
    with _calling("scale(x)"):
        out = scale(x)
    _check(isinstance(out, torch.Tensor), f"scale should return a tensor, got {type(out).__name__}.")
    _check(torch.equal(x, original),
           "scale changed its input x in place. Return a new tensor instead (e.g. x * a + b, not x.mul_()).")
    _check(out.shape == x.shape, f"scale should keep the shape {tuple(x.shape)}, got {tuple(out.shape)}.")
    _check(abs(out[0, 0, 0, 0].item() + 1) < 1e-5 and abs(out[0, 0, 0, 1].item() - 1) < 1e-5,
           f"With the default feature_range=(-1, 1), 0 should map to -1 and 1 to 1; got "
           f"{out[0, 0, 0, 0].item():.3f} and {out[0, 0, 0, 1].item():.3f}.")
    _check(torch.allclose(out, x * 2 - 1, atol=1e-5),
           "scale should be linear: with feature_range=(-1, 1), x=0.25 should give -0.5 and x=0.75 give 0.5.")

    with _calling("scale(x, feature_range=(-0.5, 2.0))"):
        other = scale(x, feature_range=(-0.5, 2.0))
    expected = x * 2.5 - 0.5
    _check(torch.allclose(other, expected, atol=1e-5),
           f"scale(x, feature_range=(-0.5, 2.0)) should map 0 to -0.5 and 1 to 2.0, got "
           f"{other[0, 0, 0, 0].item():.3f} and {other[0, 0, 0, 1].item():.3f}. Use both ends of "
           f"feature_range: x * (max - min) + min.")
    _passed()


# ---------------------------------------------------------------- conv / deconv

def _check_block(fn, name, layer_type, in_size, out_size):
    torch.manual_seed(0)
    for batch_norm in (True, False):
        with _calling(f"{name}(3, 8, 4, batch_norm={batch_norm})"):
            block = fn(3, 8, 4, batch_norm=batch_norm)
        _check(isinstance(block, nn.Module),
               f"{name} should return an nn.Sequential (an nn.Module), got {type(block).__name__}.")
        leaves = _leaf_modules(block)
        convs = [m for m in leaves if type(m) is layer_type]
        bns = [m for m in leaves if isinstance(m, nn.BatchNorm2d)]
        wrong = [m for m in leaves if type(m) is (nn.Conv2d if layer_type is nn.ConvTranspose2d else nn.ConvTranspose2d)]
        _check(not wrong, f"{name} should use nn.{layer_type.__name__}, but it contains "
                          f"nn.{type(wrong[0]).__name__ if wrong else ''}.")
        _check(len(convs) == 1, f"{name} should contain exactly one nn.{layer_type.__name__}, found {len(convs)}.")
        layer = convs[0]
        _check((layer.in_channels, layer.out_channels) == (3, 8),
               f"{name}(3, 8, 4) should have in_channels=3, out_channels=8, got "
               f"{layer.in_channels} and {layer.out_channels}.")
        _check(layer.kernel_size == (4, 4), f"{name}(3, 8, 4) should use kernel_size 4, got {layer.kernel_size}.")
        _check(layer.stride == (2, 2) and layer.padding == (1, 1),
               f"{name}'s defaults should be stride=2 and padding=1, got stride {layer.stride} and padding "
               f"{layer.padding}. Pass the stride and padding arguments on to the layer.")
        others = [m for m in leaves if m is not layer and not isinstance(m, nn.BatchNorm2d)]
        _check(not others, f"{name} should hold only the {layer_type.__name__} and an optional BatchNorm2d; it "
                           f"also has {type(others[0]).__name__ if others else ''}. The networks add their own "
                           f"activations.")
        if batch_norm:
            _check(len(bns) == 1, f"{name}(..., batch_norm=True) should add one nn.BatchNorm2d, found {len(bns)}.")
            _check(bns[0].num_features == 8,
                   f"The BatchNorm2d should normalise the {name}'s 8 output channels, got num_features="
                   f"{bns[0].num_features}. Use BatchNorm2d(out_channels).")
        else:
            _check(not bns, f"{name}(..., batch_norm=False) should have no BatchNorm2d, found {len(bns)}. "
                            f"Add batch norm only when batch_norm is True.")
        x = torch.rand(2, 3, in_size, in_size) * 2 - 1
        with _calling(f"Running {name}(3, 8, 4, batch_norm={batch_norm}) on a (2, 3, {in_size}, {in_size}) batch"):
            out, calls = _trace_leaves(block, x)
        _check(tuple(out.shape) == (2, 8, out_size, out_size),
               f"{name}(3, 8, 4) on a (2, 3, {in_size}, {in_size}) batch should give (2, 8, {out_size}, "
               f"{out_size}), got {tuple(out.shape)}.")
        if batch_norm:
            order = [type(m) for m, _, _ in calls]
            _check(order.index(layer_type) < order.index(nn.BatchNorm2d),
                   f"In {name}, batch norm should come after the {layer_type.__name__}, not before it.")

    with _calling(f"{name}(4, 6, 3, stride=1, padding=1)"):
        block = fn(4, 6, 3, stride=1, padding=1)
    with _calling(f"Running {name}(4, 6, 3, stride=1, padding=1)"):
        out = block(torch.rand(2, 4, 10, 10) * 2 - 1)
    _check(tuple(out.shape) == (2, 6, 10, 10),
           f"{name}(4, 6, 3, stride=1, padding=1) should keep a 10x10 input at 10x10, got {tuple(out.shape)}. "
           f"Use the kernel_size, stride and padding arguments, not fixed numbers.")


def test_conv(conv):
    """conv(...) -> nn.Sequential(Conv2d[, BatchNorm2d]) that halves H and W by default."""
    _check_block(conv, "conv", nn.Conv2d, 32, 16)
    _passed()


def test_deconv(deconv):
    """deconv(...) -> nn.Sequential(ConvTranspose2d[, BatchNorm2d]) that doubles H and W by default."""
    _check_block(deconv, "deconv", nn.ConvTranspose2d, 8, 16)
    _passed()


# ---------------------------------------------------------------- discriminator

def test_discriminator(Discriminator):
    """Discriminator(conv_dim): (B, 3, 32, 32) in [-1, 1] -> logits (B, 1)."""
    torch.manual_seed(0)
    with _calling("Discriminator(conv_dim=8)"):
        D = Discriminator(8)
    _check(isinstance(D, nn.Module), "Discriminator should be an nn.Module subclass.")
    device = _device_of(D)

    def images(b):
        return (torch.rand(b, 3, 32, 32) * 2 - 1).to(device)

    for b in (1, 5, 16):
        with _calling(f"D on a ({b}, 3, 32, 32) batch"):
            out = D(images(b))
        _check(isinstance(out, torch.Tensor) and tuple(out.shape) == (b, 1),
               f"D on a ({b}, 3, 32, 32) batch should return shape ({b}, 1), got "
               f"{tuple(getattr(out, 'shape', ()))}. Flatten with x.flatten(1) (or x.view(x.size(0), -1)) "
               f"before the final nn.Linear(..., 1).")

    x = images(16)
    with _calling("D on a (16, 3, 32, 32) batch"):
        out, calls = _trace_leaves(D, x)
    _check(out.std() > 1e-6, "D gives the same output for every image: its output must depend on the input.")

    convs = [(m, i, o) for m, i, o in calls if isinstance(m, nn.Conv2d)]
    _check(len(convs) >= 3, f"D should use (at least) three strided conv layers, found {len(convs)}.")
    pools = [m for m in _leaf_modules(D) if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                                                           nn.AdaptiveMaxPool2d))]
    _check(not pools, f"D should downsample with strided convolutions, not pooling; found {type(pools[0]).__name__ if pools else ''}.")
    first = convs[0][0]
    _check(first.in_channels == 3 and first.out_channels == 8,
           f"D's first conv layer should take the 3 colour channels to conv_dim=8 channels, got "
           f"{first.in_channels} -> {first.out_channels}.")
    sizes = [o.shape[-1] for _, _, o in convs[:3]]
    _check(sizes == [16, 8, 4],
           f"D's conv layers should halve the image each time (32 -> 16 -> 8 -> 4), got sizes {sizes}. "
           f"Use stride 2 (the conv helper's default).")
    depths = [m.out_channels for m, _, _ in convs[:3]]
    _check(depths == [8, 16, 32],
           f"With conv_dim=8, D's conv layers should have 8, 16, 32 output channels (conv_dim, 2x, 4x), got {depths}.")

    leaf_order = [m for m, _, _ in calls]
    after_first = leaf_order[leaf_order.index(first) + 1] if leaf_order.index(first) + 1 < len(leaf_order) else None
    _check(not isinstance(after_first, nn.BatchNorm2d),
           "D's first conv layer should have no batch norm (the paper leaves it out at D's input): "
           "use conv(..., batch_norm=False) there.")
    bn_count = sum(isinstance(m, nn.BatchNorm2d) for m in leaf_order)
    _check(bn_count >= 2, f"D should use batch norm after its 2nd and 3rd conv layers, found {bn_count} batch norm layer(s).")
    for m, inp, _ in convs[1:3]:
        _check(inp.min() < 0,
               "The input of D's second and third conv layers has no negative values, so D uses ReLU "
               "(or no activation before a ReLU-like step). Use LeakyReLU with negative slope 0.2: "
               "F.leaky_relu(x, 0.2) or nn.LeakyReLU(0.2).")
    inp2 = convs[1][1]
    _check((inp2 < 0).float().mean() > 0.05,
           "D's activations look like ReLU (almost no negative values reach the 2nd conv layer). "
           "Use LeakyReLU(0.2) between the conv layers.")

    _check(_samples_independent(D, x),
           "In eval mode, D's score for one image changes when other images are in the batch. Each "
           "image's logit must depend only on that image: check the reshape before the Linear layer "
           "(x.flatten(1), not a view that mixes images).")

    pushed_up = _push_output(D, lambda: images(8), +1)
    pushed_down = _push_output(D, lambda: images(8), -1)
    _check(pushed_up.max() > 1.0 and pushed_down.min() < 0.0,
           f"D's outputs stay inside [0, 1] even when trained to grow (max {pushed_up.max():.3f}, "
           f"min {pushed_down.min():.3f}): D ends with a sigmoid. Return the raw Linear output (logits); "
           f"BCEWithLogitsLoss applies the sigmoid.")

    xg = images(6).requires_grad_(True)
    missing = _params_without_gradient(D, xg, "D")
    _check(not missing, f"No gradient reached these parameters of D: {missing}. Every layer must be used in "
                        f"forward(), without .detach() or torch.no_grad().")
    _check(xg.grad is not None and torch.any(xg.grad != 0),
           "No gradient flows from D's output back to its input image, so G could not learn from D. "
           "Do not detach x inside forward().")

    with _calling("Discriminator(conv_dim=16)"):
        D16 = Discriminator(16)
    _check_size_follows_conv_dim(D, D16, "D", 3.0, "conv_dim, 2*conv_dim, 4*conv_dim")
    _passed()


# ---------------------------------------------------------------- generator

def test_generator(Generator):
    """Generator(z_size, conv_dim): z (B, z_size) -> images (B, 3, 32, 32) in [-1, 1]."""
    torch.manual_seed(0)
    with _calling("Generator(z_size=20, conv_dim=8)"):
        G = Generator(z_size=20, conv_dim=8)
    _check(isinstance(G, nn.Module), "Generator should be an nn.Module subclass.")
    device = _device_of(G)

    def noise(b, size=20):
        return (torch.rand(b, size) * 2 - 1).to(device)

    for b in (1, 5, 16):
        with _calling(f"G on a ({b}, 20) batch of z",
                      hint="Generator(z_size=20, ...) must accept z of shape (B, 20): build its first "
                           "Linear layer from the z_size argument, and check the layer sizes above."):
            out = G(noise(b))
        _check(isinstance(out, torch.Tensor) and tuple(out.shape) == (b, 3, 32, 32),
               f"G on a ({b}, 20) batch of z should return ({b}, 3, 32, 32), got "
               f"{tuple(getattr(out, 'shape', ()))}.")

    z = noise(16)
    with _calling("G on a (16, 20) batch of z"):
        out, calls = _trace_leaves(G, z)
    _check(out.min() >= -1 and out.max() <= 1,
           f"G's images should lie in [-1, 1], got min {out.min():.3f}, max {out.max():.3f}. End with tanh.")
    _check((out[0] - out[1]).abs().max() > 1e-4, "G makes the same image for different z: its output must depend on z.")

    deconvs = [(m, i, o) for m, i, o in calls if isinstance(m, nn.ConvTranspose2d)]
    _check(len(deconvs) >= 2, f"G should upsample with transposed convolutions (deconv), found {len(deconvs)}.")
    last = deconvs[-1][0]
    _check(last.out_channels == 3 and last.in_channels == 8,
           f"G's last transposed conv should go from conv_dim=8 channels to 3 (RGB), got "
           f"{last.in_channels} -> {last.out_channels}.")
    order = [m for m, _, _ in calls]
    after_last = order[order.index(last) + 1:]
    _check(not any(isinstance(m, nn.BatchNorm2d) for m in after_last),
           "G's output layer should have no batch norm: use deconv(..., batch_norm=False) for the last layer.")
    bn_count = sum(isinstance(m, nn.BatchNorm2d) for m in order)
    _check(bn_count >= 2, f"G should use batch norm in its hidden layers, found {bn_count} batch norm layer(s).")
    last_input = deconvs[-1][1]
    _check(last_input.min() >= 0,
           f"The input of G's last layer has negative values (min {last_input.min():.3f}): G's hidden "
           f"layers should end with ReLU (the paper uses ReLU in G and LeakyReLU only in D).")

    _check(_samples_independent(G, z),
           "In eval mode, G's image for one z changes when other z are in the batch: check the reshape "
           "after the Linear layer (x.view(-1, 4 * conv_dim, 4, 4) keeps each z's numbers together).")

    up = _push_output(G, lambda: noise(8), +1)
    down = _push_output(G, lambda: noise(8), -1)
    _check(up.max() <= 1.0 + 1e-6 and down.min() >= -1.0 - 1e-6,
           f"G's outputs leave [-1, 1] when trained to grow or shrink (max {up.max():.3f}, min "
           f"{down.min():.3f}): end G with torch.tanh.")
    _check(down.min() < -0.5,
           f"G's outputs cannot go below {down.min():.3f} even when trained to: it ends with a sigmoid "
           f"(range [0, 1]). Use torch.tanh, whose range [-1, 1] matches the scaled real images.")

    missing = _params_without_gradient(G, noise(6), "G")
    _check(not missing, f"No gradient reached these parameters of G: {missing}. Every layer must be used in forward().")

    with _calling("Generator(z_size=7, conv_dim=8)"):
        G7 = Generator(z_size=7, conv_dim=8)
    with _calling("Generator(z_size=7, conv_dim=8) on a (3, 7) batch of z"):
        out7 = G7(noise(3, 7))
    _check(tuple(out7.shape) == (3, 3, 32, 32),
           f"Generator(z_size=7) should accept z of shape (3, 7) and return (3, 3, 32, 32), got {tuple(out7.shape)}. "
           f"Use the z_size argument for the first Linear layer.")
    with _calling("Generator(z_size=20, conv_dim=16)"):
        G16 = Generator(z_size=20, conv_dim=16)
    # G's first Linear grows only linearly with conv_dim, hence the lower bound
    _check_size_follows_conv_dim(G, G16, "G", 2.5, "4*conv_dim, 2*conv_dim, conv_dim")
    _passed()


# ---------------------------------------------------------------- weights

def test_weights_init(weights_init_normal):
    """weights_init_normal(m): Conv2d, ConvTranspose2d, Linear weights ~ N(0, 0.02), biases 0."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 4, bias=True),
        nn.BatchNorm2d(64),
        nn.ConvTranspose2d(64, 64, 4, bias=True),
        nn.Conv2d(64, 32, 4, bias=False),
        nn.Linear(1024, 64, bias=True),
    )
    with torch.no_grad():
        for m in model:
            if getattr(m, "bias", None) is not None:
                m.bias.fill_(0.5)
    before = [m.weight.detach().clone() for m in model]
    with _calling("model.apply(weights_init_normal)"):
        model.apply(weights_init_normal)

    for index, kind in ((0, "Conv2d"), (2, "ConvTranspose2d"), (3, "Conv2d (bias=False)"), (4, "Linear")):
        layer = model[index]
        w = layer.weight.detach().flatten()
        _check(not torch.equal(layer.weight.detach(), before[index]),
               f"weights_init_normal left the {kind} layer's weights as they were. Check how you recognise "
               f"the layers: isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) matches all three; a "
               f"class-name string like 'Conv2D', or a check for Conv2d alone, misses some.")
        mean, std = w.mean().item(), w.std().item()
        _check(abs(std - 0.02) < 0.002,
               f"The {kind} layer's weights should have standard deviation 0.02, got {std:.4f}. "
               f"Use nn.init.normal_(m.weight, mean=0.0, std=0.02).")
        _check(abs(mean) < 0.002, f"The {kind} layer's weights should have mean 0, got {mean:.4f}.")
        beyond = (w.abs() > 2 * std).float().mean().item()
        _check(0.03 < beyond < 0.065,
               f"The {kind} layer's weights do not look normally distributed ({beyond:.1%} lie beyond two "
               f"standard deviations; a normal distribution has about 4.6%). Use nn.init.normal_, not uniform_.")
        if layer.bias is not None:
            _check(torch.all(layer.bias == 0),
                   f"The {kind} layer's bias should be set to 0, but it still holds "
                   f"{layer.bias.detach().flatten()[0].item():.3f}. Use nn.init.zeros_(m.bias).")
    bn_before = before[1]
    bn_after = model[1].weight.detach()
    _check(torch.allclose(bn_after, bn_before) or abs(bn_after.mean().item() - 1) < 0.05,
           f"Batch norm's scale (weight) should stay near 1, got mean {bn_after.mean().item():.3f}. "
           f"Initialise only Conv2d, ConvTranspose2d and Linear layers.")
    _passed()


# ---------------------------------------------------------------- losses

_LOGITS = [[2.0], [-1.0], [0.5], [-3.0], [40.0], [-40.0]]


def _bce(logits, target):
    """Hand-computed mean binary cross-entropy with logits, in float64."""
    total = 0.0
    for (x,) in logits:
        log_p = -math.log1p(math.exp(-x)) if x > 0 else x - math.log1p(math.exp(x))      # log sigmoid(x)
        log_1mp = -x - math.log1p(math.exp(-x)) if x > 0 else -math.log1p(math.exp(x))  # log(1 - sigmoid(x))
        total += -(target * log_p + (1 - target) * log_1mp)
    return total / len(logits)


def _check_loss(fn, name, call, target, devices):
    for device in devices:
        d_out = torch.tensor(_LOGITS, device=device, requires_grad=True)
        with _calling(f"{call} on a D_out of shape (6, 1) on {device}"):
            loss = fn(d_out)
        _check(isinstance(loss, torch.Tensor) and loss.dim() == 0,
               f"{name} should return a single number (a 0-dim tensor, the mean over the batch), got "
               f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}.")
        _check(torch.isfinite(loss),
               f"{name} gave {loss.item()} for logits of +-40. Use nn.BCEWithLogitsLoss, which stays finite, "
               f"instead of a sigmoid followed by a log.")
        expected = _bce(_LOGITS, target)
        got = loss.item()
        if abs(got - expected) > 1e-4 * max(1.0, abs(expected)):
            flipped = _bce(_LOGITS, 1 - target)
            cause = "Use nn.BCEWithLogitsLoss() on D_out directly (it applies the sigmoid itself) with the mean reduction."
            if abs(got - flipped) < 1e-3 * max(1.0, abs(flipped)):
                cause = f"Your labels are flipped: {name} should use label {target:g}."
            elif abs(got - expected * len(_LOGITS)) < 1e-3 * max(1.0, expected * len(_LOGITS)):
                cause = "You summed over the batch: return the mean (BCEWithLogitsLoss's default)."
            elif target in (1.0, 0.9) and abs(got - _bce(_LOGITS, 1.0 if target == 0.9 else 0.9)) < 1e-4:
                cause = ("Check smoothing: with smooth=True the real labels are 0.9, otherwise 1."
                         if target == 0.9 else "Without smoothing the real labels are exactly 1.")
            _check(False, f"{call} should be {expected:.5f} for the logits {[x for (x,) in _LOGITS]}, got {got:.5f}. {cause}")
        _check(loss.requires_grad, f"{name}'s result carries no gradient: do not detach D_out or use .item() inside the loss.")
        loss.backward()
        expected_grad = torch.tensor([[(1 / (1 + math.exp(-x)) - target) / len(_LOGITS)] for (x,) in _LOGITS])
        _check(torch.allclose(d_out.grad.cpu(), expected_grad, atol=1e-5),
               f"{name}'s gradient with respect to D_out is not that of the mean BCE with logits.")
    one = torch.tensor([[0.3]], device=devices[-1])
    with _calling(f"{call} on a D_out of shape (1, 1) (a batch of one image)"):
        single = fn(one)
    _check(isinstance(single, torch.Tensor) and single.dim() == 0 and abs(single.item() - _bce([[0.3]], target)) < 1e-4,
           f"{name} should also work for a batch of one, D_out of shape (1, 1): expected "
           f"{_bce([[0.3]], target):.5f}, got {single}. Make labels like D_out (torch.ones_like(D_out)) "
           f"instead of squeezing D_out.")


def _loss_devices():
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def test_real_loss(real_loss):
    """real_loss(D_out, smooth=False): mean BCE with logits against labels 1 (0.9 when smooth)."""
    devices = _loss_devices()
    _check_loss(real_loss, "real_loss", "real_loss(D_out)", 1.0, devices)
    _check_loss(lambda d: real_loss(d, smooth=True), "real_loss with smooth=True",
                "real_loss(D_out, smooth=True)", 0.9, devices)
    _passed()


def test_fake_loss(fake_loss):
    """fake_loss(D_out): mean BCE with logits against labels 0."""
    _check_loss(fake_loss, "fake_loss", "fake_loss(D_out)", 0.0, _loss_devices())
    _passed()


# ---------------------------------------------------------------- optimizers

def test_optimizers(D, G, d_optimizer, g_optimizer):
    """d_optimizer: Adam over exactly D's parameters; g_optimizer: Adam over exactly G's; paper settings."""
    for name, opt, net, net_name in (("d_optimizer", d_optimizer, D, "D"), ("g_optimizer", g_optimizer, G, "G")):
        _check(opt is not None, f"{name} is None: create it in the cell above.")
        _check(isinstance(opt, torch.optim.Adam),
               f"{name} should be a torch.optim.Adam, got {type(opt).__name__}.")
        covered = {id(p) for group in opt.param_groups for p in group["params"]}
        own = {id(p) for p in net.parameters()}
        other_net, other_name = (G, "G") if net is D else (D, "D")
        other = {id(p) for p in other_net.parameters()}
        _check(not covered & other,
               f"{name} updates {other_name}'s parameters. Give it {net_name}.parameters() only.")
        _check(covered == own,
               f"{name} should cover all of {net_name}'s parameters and nothing else: it covers "
               f"{len(covered & own)} of {len(own)}. Pass {net_name}.parameters().")
        for group in opt.param_groups:
            _check(abs(group["lr"] - 0.0002) < 1e-9,
                   f"{name}'s learning rate should be 0.0002 (the DCGAN paper's value), got {group['lr']}.")
            b1, b2 = group["betas"]
            _check(abs(b1 - 0.5) < 1e-9 and abs(b2 - 0.999) < 1e-9,
                   f"{name}'s betas should be (0.5, 0.999) (the paper lowers beta1 to 0.5), got {group['betas']}.")
    _check(d_optimizer is not g_optimizer, "d_optimizer and g_optimizer must be two different optimizers.")
    _passed()


# ---------------------------------------------------------------- training loop

class _TinyD(nn.Module):
    """A small DCGAN discriminator for 16x16 images, used only by test_train."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 4, 4, 2, 1), nn.LeakyReLU(0.2),                            # (B, 4, 8, 8)
            nn.Conv2d(4, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.LeakyReLU(0.2),  # (B, 8, 4, 4)
        )
        self.fc = nn.Linear(8 * 4 * 4, 1)

    def forward(self, x):
        return self.fc(self.net(x).flatten(1))


class _TinyG(nn.Module):
    """A small DCGAN generator for 16x16 images, used only by test_train."""

    def __init__(self, z_size):
        super().__init__()
        self.fc = nn.Linear(z_size, 8 * 4 * 4)
        self.net = nn.Sequential(
            nn.BatchNorm2d(8), nn.ReLU(),
            nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),  # (B, 4, 8, 8)
            nn.ConvTranspose2d(4, 3, 4, 2, 1), nn.Tanh(),                                 # (B, 3, 16, 16)
        )

    def forward(self, z):
        return self.net(self.fc(z).view(-1, 8, 4, 4))


class _Recorder:
    """Watches a training run and checks every optimizer step as it happens.

    It records the calls of D and G since the last step; at each step (before the weights
    change) it replays the expected loss on exactly those inputs and compares gradients.
    """

    def __init__(self, D, G, d_opt, g_opt, scaled_batches):
        self.D, self.G = D, G
        self.scaled_batches = scaled_batches
        self.window = []          # ("D" | "G", input, output) since the last optimizer step
        self.g_history = []       # recent G calls, to find where the fakes D scores came from
        self.last_g_grads = self._grads(G)  # G's gradients at its last step (or left from before)
        self.steps = {"d_step": 0, "g_step": 0}
        self.handles = [
            D.register_forward_hook(lambda m, i, o: self._forward("D", i, o)),
            G.register_forward_hook(lambda m, i, o: self._forward("G", i, o)),
            d_opt.register_step_pre_hook(lambda opt, a, k: self._d_step()),
            g_opt.register_step_pre_hook(lambda opt, a, k: self._g_step()),
        ]

    def _forward(self, kind, inputs, output):
        # kept on the CPU, where the test compares them with the batches it made
        event = (kind, inputs[0].detach().cpu().clone(), output.detach().cpu().clone())
        self.window.append(event)
        if kind == "G":
            self.g_history = (self.g_history + [event])[-4:]

    @staticmethod
    def _grads(net):
        return [None if p.grad is None else p.grad.detach().cpu().clone() for p in net.parameters()]

    def _d_step(self):
        self.steps["d_step"] += 1
        fakes = self.g_history[-1][2] if self.g_history else None
        _check_d_step(self._grads(self.D), self._grads(self.G), self.window, self.scaled_batches,
                      fakes, self.last_g_grads, self.D)
        self.window = []

    def _g_step(self):
        self.steps["g_step"] += 1
        grads = self._grads(self.G)
        _check_g_step(grads, self.window, self.g_history, self.scaled_batches, self.D, self.G)
        self.last_g_grads = grads
        self.window = []

    def close(self):
        for h in self.handles:
            h.remove()

    def count(self, kind):
        return self.steps[kind]


def _rows_match(rows, reference):
    """For each row of `rows`, whether it equals some row of `reference`."""
    if reference is None or rows.shape[1:] != reference.shape[1:]:
        return torch.zeros(len(rows), dtype=torch.bool)
    diff = (rows.flatten(1)[:, None, :] - reference.flatten(1)[None, :, :]).abs().amax(-1)
    return (diff < 1e-5).any(1)


def _replay_grads(nets, params_of, loss_fn):
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


def _close(grads, expected, rtol=2e-3):
    got = torch.cat([(torch.zeros(0) if g is None else g.flatten()) for g in grads])
    exp = torch.cat([e.flatten() for e in expected])
    if got.numel() != exp.numel():
        return False
    return (got - exp).norm() <= rtol * max(exp.norm().item(), 1e-8)


def _bce_logits(logits, labels):
    return F.binary_cross_entropy_with_logits(logits, labels)


@contextlib.contextmanager
def _quiet(train):
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


def test_train(train):
    """train(...) alternates a D step and a G step per batch, with the right losses and gradients."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    z_size = 8
    # the GPU when there is one, so train's own device handling is exercised too
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    D, G = _TinyD().to(device), _TinyG(z_size).to(device)
    d_opt = torch.optim.Adam(D.parameters(), lr=0.0002, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=0.0002, betas=(0.5, 0.999))
    data = torch.rand(12, 3, 16, 16)
    batches = [data[i:i + 4] for i in range(0, 12, 4)]
    loader = DataLoader(TensorDataset(data, torch.zeros(12, dtype=torch.long)), batch_size=4, shuffle=False)
    d_before = [p.detach().clone() for p in D.parameters()]
    g_before = [p.detach().clone() for p in G.parameters()]

    scaled = [b * 2 - 1 for b in batches]
    rec = _Recorder(D, G, d_opt, g_opt, scaled)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "checkpoint.pt"
        try:
            with _calling("train(D, G, d_optimizer, g_optimizer, dataloader, n_epochs=2, ...)"), _quiet(train):
                result = train(D, G, d_opt, g_opt, loader, 2, z_size, device,
                               print_every=1, checkpoint_path=checkpoint, sample_size=6)
        finally:
            rec.close()

        n_d, n_g = rec.count("d_step"), rec.count("g_step")
        _check(n_d > 0 or n_g > 0,
               "train never called d_optimizer.step() or g_optimizer.step() on the optimizers passed to it. "
               "Use the d_optimizer and g_optimizer arguments (not other optimizers from the notebook).")
        _check(n_d == 6, f"train should take one D step per batch: 3 batches x 2 epochs = 6 calls of "
                         f"d_optimizer.step(), got {n_d}.")
        _check(n_g == 6, f"train should take one G step per batch: 3 batches x 2 epochs = 6 calls of "
                         f"g_optimizer.step(), got {n_g}.")

        _check(any(not torch.equal(a, b) for a, b in zip(d_before, D.parameters())), "train did not change D's weights.")
        _check(any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters())), "train did not change G's weights.")

        _check(isinstance(result, tuple) and len(result) == 2,
               "train should return (losses, samples), as the given code at its end does.")
        losses, samples = result
        _check(len(losses) == 6 and all(len(pair) in (2, 4) and all(math.isfinite(v) for v in pair) for pair in losses),
               f"With print_every=1, train should log 6 finite (d_loss, g_loss) pairs, got {losses!r}.")
        _check(len(samples) == 2 and all(tuple(s.shape) == (6, 3, 16, 16) for s in samples),
               "train should keep one batch of sample_size=6 images per epoch (the given code does this).")
        _check(checkpoint.is_file(), "train should save a checkpoint after every epoch (the given code does this).")

        rec2 = _Recorder(D, G, d_opt, g_opt, scaled)
        try:
            with _calling("Resuming train(...) from its checkpoint with n_epochs=3"), _quiet(train):
                losses3, samples3 = train(D, G, d_opt, g_opt, loader, 3, z_size, device,
                                          print_every=1, checkpoint_path=checkpoint, sample_size=6)
        finally:
            rec2.close()
        _check(rec2.count("d_step") == 3 and len(samples3) == 3 and len(losses3) == 9,
               "Run again with n_epochs=3, train should resume after epoch 2 and train one more epoch "
               f"(3 D steps); it took {rec2.count('d_step')} D steps and returned {len(samples3)} sample batches.")
    _passed()


def _check_d_step(d_grads, g_grads, window, scaled_batches, fake_out, last_g_grads, D):
    d_calls = [e for e in window if e[0] == "D"]
    _check(d_calls, "d_optimizer.step() was called without D looking at any image since the last step.")
    labelled, real_rows, fake_rows = [], 0, 0
    for _, inp, _ in d_calls:
        is_real = torch.zeros(len(inp), dtype=torch.bool)
        for batch in scaled_batches:
            is_real |= _rows_match(inp, batch)
        is_fake = _rows_match(inp, fake_out)
        unknown = ~(is_real | is_fake)
        if unknown.any():
            raw = any(_rows_match(inp, (b + 1) / 2).any() for b in scaled_batches)
            _check(not raw, "D was trained on the real images in [0, 1]. Scale them to [-1, 1] first: "
                            "real_images = scale(real_images).")
            _check(False, "In the D step, D saw images that are neither the scaled real batch nor G's output.")
        real_rows += int(is_real.sum())
        fake_rows += int(is_fake.sum())
        labelled.append((inp, is_real))
    _check(real_rows > 0, "The D step never showed D the real images: d_loss needs real_loss(D(real_images)).")
    _check(fake_rows > 0, "The D step never showed D the fake images: d_loss needs fake_loss(D(fake_images.detach())).")

    def same(a, b):
        if a is None or b is None:
            return (a is None or not a.any()) and (b is None or not b.any())
        return torch.allclose(a, b)

    unchanged = last_g_grads is not None and all(same(a, b) for a, b in zip(g_grads, last_g_grads))
    zero = all(g is None or not g.any() for g in g_grads)
    _check(unchanged or zero,
           "The D step sent gradients into G. Detach the fakes for the D step: "
           "fake_loss(D(fake_images.detach())).")

    def loss(real_label, per_call_mean=True, factor=1.0):
        def fn():
            total = 0.0
            outs, labels = [], []
            for inp, is_real in labelled:
                out = D(inp.to(_device_of(D)))
                is_real = is_real.to(out.device)
                lab = torch.where(is_real, real_label, 0.0).view(-1, 1).to(out)
                if per_call_mean:
                    # real and fake may come in one call: mean over each kind separately
                    for mask in (is_real, ~is_real):
                        if mask.any():
                            total = total + _bce_logits(out[mask], lab[mask])
                else:
                    outs.append(out)
                    labels.append(lab)
            if not per_call_mean:
                total = _bce_logits(torch.cat(outs), torch.cat(labels))
            return factor * total
        return fn

    # Accepted forms, most common first: label 1 or 0.9 (smoothing), one mean per call or a
    # mean over one joint call, and (real + fake) / 2.
    for label in (1.0, 0.9):
        for per_call, factor in ((True, 1.0), (False, 1.0), (True, 0.5)):
            if _close(d_grads, _replay_grads((D,), D, loss(label, per_call, factor))):
                return
    flipped = _replay_grads((D,), D, _flipped_d_loss(D, labelled))
    if _close(d_grads, flipped):
        _check(False, "The D step's labels are flipped: real images need real_loss (label 1) and fakes need "
                      "fake_loss (label 0).")
    _check(False, "At d_optimizer.step(), D's gradients are not those of "
                  "real_loss(D(real_images)) + fake_loss(D(fake_images.detach())) for this batch. Likely cause: "
                  "d_optimizer.zero_grad() missing before d_loss.backward() (gradients add up across steps), "
                  "or a different loss.")


def _flipped_d_loss(D, labelled):
    def fn():
        total = 0.0
        for inp, is_real in labelled:
            out = D(inp.to(_device_of(D)))
            is_real = is_real.to(out.device)
            for mask, label in ((is_real, 0.0), (~is_real, 1.0)):
                if mask.any():
                    total = total + _bce_logits(out[mask], torch.full_like(out[mask], label))
        return total
    return fn


def _check_g_step(g_grads, window, g_history, scaled_batches, D, G):
    d_calls = [e for e in window if e[0] == "D"]
    _check(d_calls, "The G step must score G's images with D: g_loss = real_loss(D(fake_images)).")
    saw_real = any(_rows_match(inp, batch).any() for _, inp, _ in d_calls for batch in scaled_batches)
    _check(not saw_real,
           "g_optimizer.step() was called right after D scored the real images, that is, in the D step. "
           "Call d_optimizer.step() after d_loss.backward(), and g_optimizer.step() only after g_loss.backward().")
    # The fakes D scored may come from a G call before the D step (reused, not detached for G).
    source = None
    for _, inp, _ in d_calls:
        for g_event in reversed(g_history):
            if _rows_match(inp, g_event[2]).all():
                source = (g_event[1], inp)
                break
    _check(source is not None, "In the G step, D should score G's fake images (g_loss = real_loss(D(fake_images))).")
    z, _ = source

    def g_loss(label):
        def fn():
            out = D(G(z.to(_device_of(G))))
            return _bce_logits(out, torch.full_like(out, label))
        return fn

    for label in (1.0, 0.9):
        if _close(g_grads, _replay_grads((D, G), G, g_loss(label))):
            return
    if _close(g_grads, _replay_grads((D, G), G, g_loss(0.0))):
        _check(False, "The G step uses fake labels. G wants D to call its images real: g_loss = real_loss(D(fake_images)).")
    _check(False, "At g_optimizer.step(), G's gradients are not those of real_loss(D(fake_images)) for this batch. "
                  "Likely cause: g_optimizer.zero_grad() missing before g_loss.backward() (gradients add up), "
                  "or a different loss.")
