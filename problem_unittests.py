"""Graded tests for dlnd_face_generation.ipynb.

Each ``test_*`` function checks one piece you write in the notebook. It prints
``Tests Passed`` when the piece behaves as asked, and otherwise raises an
AssertionError that says what was expected, what your code gave, and the most
likely cause. The tests feed varied inputs (never all-equal ones), run on the
device your model is on, and each takes a few seconds on a CPU. Their machinery
(tracing layers, replaying gradients) lives in helpers/checks.py.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

from helpers.checks import (
    GradedTestFailure,  # noqa: F401  (re-exported: `except tests.GradedTestFailure`)
    Recorder,
    TinyD,
    TinyG,
    calling,
    check,
    check_block,
    check_loss,
    check_size_follows_conv_dim,
    check_conv_honours_batch_norm,
    check_init_picks_the_layers,
    check_no_dropout_on_output,
    check_train_signature,
    device_of,
    leaf_modules,
    leaky_slope,
    loss_devices,
    params_without_gradient,
    passed,
    push_output,
    quiet,
    samples_independent,
    trace_leaves,
    write_test_images,
)

ONE_IMAGE_HINT = (
    "{} works on batches of 5 and 16 but not on a batch of one image. Likely cause: squeeze() drops "
    "the batch dimension when it is 1, or a reshape assumes a batch size; keep the batch dimension "
    "(x.flatten(1), x.view(x.size(0), -1))."
)

__all__ = [
    "test_get_dataloader",
    "test_scale",
    "test_conv",
    "test_deconv",
    "test_discriminator",
    "test_generator",
    "test_weights_init",
    "test_real_loss",
    "test_fake_loss",
    "test_optimizers",
    "test_train",
]


# ---------------------------------------------------------------- data loader


def test_get_dataloader(get_dataloader):
    """get_dataloader(batch_size, image_size, data_dir) -> shuffled DataLoader of square images in [0, 1]."""
    from torch.utils.data import DataLoader, RandomSampler

    with tempfile.TemporaryDirectory() as tmp:
        n_images = write_test_images(tmp)
        with calling("get_dataloader(batch_size=4, image_size=32, data_dir=...)"):
            loader = get_dataloader(4, 32, tmp)
        check(
            isinstance(loader, DataLoader),
            f"get_dataloader should return a torch.utils.data.DataLoader, got {type(loader).__name__}.",
        )
        check(
            len(loader.dataset) == n_images,
            f"The DataLoader should read the {n_images} images in data_dir, but its dataset has "
            f"{len(loader.dataset)}. Make sure you pass data_dir to datasets.ImageFolder.",
        )
        check(
            loader.batch_size == 4,
            f"The DataLoader's batch_size should be the batch_size argument (4), got {loader.batch_size}.",
        )
        check(
            isinstance(loader.sampler, RandomSampler),
            "The DataLoader does not shuffle: pass shuffle=True so each epoch sees the images in a new order.",
        )

        # Non-square images: centre crop (all green) versus squash (red strips on the sides).
        samples = getattr(loader.dataset, "samples", None)
        check(
            samples is not None,
            "The DataLoader's dataset should be a torchvision datasets.ImageFolder.",
        )
        by_name = {Path(p).stem: i for i, (p, _) in enumerate(samples)}
        for name in ("wide", "tall"):
            with calling(f"Loading the non-square test image {name}.png"):
                img, _ = loader.dataset[by_name[name]]
            check(
                isinstance(img, torch.Tensor),
                f"The dataset gives {type(img).__name__} objects instead of tensors: end the transform "
                f"with transforms.ToTensor().",
            )
            check(
                tuple(img.shape) == (3, 32, 32),
                f"A non-square image should come out as (3, 32, 32), got {tuple(img.shape)}. The notebook "
                f"asks for transforms.Resize(image_size) followed by transforms.CenterCrop(image_size), "
                f"because Resize with one number keeps a face's proportions and CenterCrop then cuts the "
                f"square that D and G work on.",
            )
            check(
                (img.amax(0) - img.amin(0)).mean() > 0.2,
                f"The images have lost their colour: the three channels of the green test image "
                f"{name}.png are (almost) equal. The faces are RGB: leave out transforms such as "
                f"Grayscale, and keep the 3 colour channels ImageFolder loads.",
            )
            red = (img[0] > 0.5) & (img[1] < 0.4)
            check(
                red.float().mean() < 0.02,
                f"The non-square image {name}.png was squashed instead of centre-cropped: its red side "
                f"strips are still in the output. The notebook asks for transforms.Resize(image_size) (one "
                f"number: the shorter side) followed by transforms.CenterCrop(image_size), because "
                f"squashing a photo to a square distorts the faces G learns to draw.",
            )

        with calling("Reading a batch from your DataLoader"):
            batches = list(loader)
        images, labels = batches[0]
        check(
            isinstance(images, torch.Tensor) and images.dtype == torch.float32,
            f"Images should be a float32 tensor (transforms.ToTensor() gives one), got "
            f"{getattr(images, 'dtype', type(images))}.",
        )
        check(
            tuple(images.shape) == (4, 3, 32, 32),
            f"A batch should have shape (4, 3, 32, 32) for batch_size=4, image_size=32, got "
            f"{tuple(images.shape)}.",
        )
        check(
            images.min() >= 0 and images.max() <= 1,
            f"Pixel values should lie in [0, 1] (what ToTensor gives), got min {images.min():.3f}, "
            f"max {images.max():.3f}. Scaling to [-1, 1] comes later, in scale().",
        )
        check(
            len(labels) == 4,
            f"Each batch should also carry the labels, got {len(labels)} for 4 images.",
        )

        with calling("get_dataloader(batch_size=3, image_size=16, data_dir=...)"):
            small = next(iter(get_dataloader(3, 16, tmp)))[0]
        check(
            tuple(small.shape) == (3, 3, 16, 16),
            f"With batch_size=3 and image_size=16 a batch should be (3, 3, 16, 16), got "
            f"{tuple(small.shape)}. Use the image_size argument in Resize and CenterCrop.",
        )
    passed()


# ---------------------------------------------------------------- scale


def test_scale(scale):
    """scale(x, feature_range) maps [0, 1] linearly onto feature_range and leaves x unchanged."""
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 1.0
    original = x.clone()
    with calling("scale(x)"):
        out = scale(x)
    check(isinstance(out, torch.Tensor), f"scale should return a tensor, got {type(out).__name__}.")
    check(
        torch.equal(x, original),
        "scale changed its input x in place. Return a new tensor instead (e.g. x * a + b, not x.mul_()).",
    )
    check(
        out.shape == x.shape,
        f"scale should keep the shape {tuple(x.shape)}, got {tuple(out.shape)}.",
    )
    check(
        abs(out[0, 0, 0, 0].item() + 1) < 1e-5 and abs(out[0, 0, 0, 1].item() - 1) < 1e-5,
        f"With the default feature_range=(-1, 1), 0 should map to -1 and 1 to 1; got "
        f"{out[0, 0, 0, 0].item():.3f} and {out[0, 0, 0, 1].item():.3f}.",
    )
    check(
        torch.allclose(out, x * 2 - 1, atol=1e-5),
        "scale should be linear: with feature_range=(-1, 1), x=0.25 should give -0.5 and x=0.75 give 0.5.",
    )
    # A linear map is the same for every batch: one without an exact 0 and 1 must map the same way.
    middle = x[1:] * 0.5 + 0.25
    with calling("scale(x) on a batch with values in [0.25, 0.75]"):
        out_middle = scale(middle)
    check(
        torch.allclose(out_middle, middle * 2 - 1, atol=1e-5),
        f"scale depends on the batch it is given: on values in [0.25, 0.75] it gave "
        f"[{out_middle.min().item():.2f}, {out_middle.max().item():.2f}] instead of [-0.50, 0.50]. "
        f"Do not use x.min() or x.max() (min-max normalisation): scale is the fixed linear map "
        f"x * (max - min) + min of feature_range, the same for every batch.",
    )

    with calling("scale(x, feature_range=(-0.5, 2.0))"):
        other = scale(x, feature_range=(-0.5, 2.0))
    expected = x * 2.5 - 0.5
    check(
        torch.allclose(other, expected, atol=1e-5),
        f"scale(x, feature_range=(-0.5, 2.0)) should map 0 to -0.5 and 1 to 2.0, got "
        f"{other[0, 0, 0, 0].item():.3f} and {other[0, 0, 0, 1].item():.3f}. Use both ends of "
        f"feature_range: x * (max - min) + min.",
    )
    passed()


def test_conv(conv):
    """conv(...) -> nn.Sequential(Conv2d[, BatchNorm2d]) that halves H and W by default."""
    check_block(conv, "conv", nn.Conv2d, 32, 16)
    passed()


def test_deconv(deconv):
    """deconv(...) -> nn.Sequential(ConvTranspose2d[, BatchNorm2d]) that doubles H and W by default."""
    check_block(deconv, "deconv", nn.ConvTranspose2d, 8, 16)
    passed()


# ---------------------------------------------------------------- discriminator


def test_discriminator(Discriminator):
    """Discriminator(conv_dim): (B, 3, 32, 32) in [-1, 1] -> logits (B, 1)."""
    torch.manual_seed(0)
    with calling("Discriminator(conv_dim=8)"):
        D = Discriminator(8)
    check(isinstance(D, nn.Module), "Discriminator should be an nn.Module subclass.")
    device = device_of(D)

    def images(b):
        return (torch.rand(b, 3, 32, 32) * 2 - 1).to(device)

    for b in (5, 16, 1):
        with calling(
            f"D on a ({b}, 3, 32, 32) batch", hint=ONE_IMAGE_HINT.format("D") if b == 1 else ""
        ):
            out = D(images(b))
        check(
            isinstance(out, torch.Tensor) and tuple(out.shape) == (b, 1),
            f"D on a ({b}, 3, 32, 32) batch should return shape ({b}, 1), got "
            f"{tuple(getattr(out, 'shape', ()))}. Flatten with x.flatten(1) (or x.view(x.size(0), -1)) "
            f"before the final nn.Linear(..., 1).",
        )
    check_no_dropout_on_output(D, images(64))

    x = images(16)
    with calling("D on a (16, 3, 32, 32) batch"):
        out, calls = trace_leaves(D, x)
    check(
        out.std() > 1e-6,
        "D gives the same output for every image: its output must depend on the input.",
    )

    convs = [(m, i, o) for m, i, o in calls if isinstance(m, nn.Conv2d)]
    check(
        len(convs) >= 3, f"D should use (at least) three strided conv layers, found {len(convs)}."
    )
    pools = [
        m
        for m in leaf_modules(D)
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
    ]
    check(
        not pools,
        f"D should downsample with strided convolutions, not pooling; found {type(pools[0]).__name__ if pools else ''}.",
    )
    first = convs[0][0]
    check(
        first.in_channels == 3 and first.out_channels == 8,
        f"D's first conv layer should take the 3 colour channels to conv_dim=8 channels, got "
        f"{first.in_channels} -> {first.out_channels}.",
    )
    sizes = [o.shape[-1] for _, _, o in convs[:3]]
    check(
        sizes == [16, 8, 4],
        f"D's conv layers should halve the image each time (32 -> 16 -> 8 -> 4), got sizes {sizes}. "
        f"Use stride 2 (the conv helper's default).",
    )
    depths = [m.out_channels for m, _, _ in convs[:3]]
    check(
        depths == [8, 16, 32],
        f"With conv_dim=8, D's conv layers should have 8, 16, 32 output channels (conv_dim, 2x, 4x), got {depths}.",
    )

    leaf_order = [m for m, _, _ in calls]
    after_first = (
        leaf_order[leaf_order.index(first) + 1]
        if leaf_order.index(first) + 1 < len(leaf_order)
        else None
    )
    if isinstance(after_first, nn.BatchNorm2d):
        check_conv_honours_batch_norm(Discriminator)
    check(
        not isinstance(after_first, nn.BatchNorm2d),
        "D's first conv layer should have no batch norm (the paper leaves it out at D's input): "
        "use conv(..., batch_norm=False) there.",
    )
    bn_count = sum(isinstance(m, nn.BatchNorm2d) for m in leaf_order)
    check(
        bn_count >= 2,
        f"D should use batch norm after its 2nd and 3rd conv layers, found {bn_count} batch norm layer(s).",
    )
    for _, inp, _ in convs[1:3]:
        check(
            inp.min() < 0,
            "The input of D's second and third conv layers has no negative values, so D uses ReLU "
            "(or no activation before a ReLU-like step). Use LeakyReLU with negative slope 0.2: "
            "F.leaky_relu(x, 0.2) or nn.LeakyReLU(0.2).",
        )
    inp2 = convs[1][1]
    check(
        (inp2 < 0).float().mean() > 0.05,
        "D's activations look like ReLU (almost no negative values reach the 2nd conv layer). "
        "Use LeakyReLU(0.2) between the conv layers.",
    )
    slope = leaky_slope(convs[0][2], convs[1][1])
    if slope is not None:
        default = " (F.leaky_relu's default)" if abs(slope - 0.01) < 0.005 else ""
        check(
            abs(slope - 0.2) < 0.03,
            f"D's LeakyReLU has negative slope {slope:.2f}{default}. The notebook asks for 0.2, the "
            f"slope of every model in the DCGAN paper; a much smaller one passes almost no gradient "
            f"for negative inputs, close to a ReLU. Use F.leaky_relu(x, 0.2) or nn.LeakyReLU(0.2).",
        )

    check(
        samples_independent(D, x),
        "In eval mode, D's score for one image changes when other images are in the batch. Each "
        "image's logit must depend only on that image: check the reshape before the Linear layer "
        "(x.flatten(1), not a view that mixes images).",
    )

    pushed_up = push_output(D, lambda: images(8), +1)
    pushed_down = push_output(D, lambda: images(8), -1)
    check(
        pushed_up.max() > 1.0 and pushed_down.min() < 0.0,
        f"D's outputs stay inside [0, 1] even when trained to grow (max {pushed_up.max():.3f}, "
        f"min {pushed_down.min():.3f}): D ends with a sigmoid. Return the raw Linear output (logits); "
        f"BCEWithLogitsLoss applies the sigmoid.",
    )

    xg = images(6).requires_grad_(True)
    missing = params_without_gradient(D, xg, "D")
    check(
        not missing,
        f"No gradient reached these parameters of D: {missing}. Every layer must be used in "
        f"forward(), without .detach() or torch.no_grad().",
    )
    check(
        xg.grad is not None and torch.any(xg.grad != 0),
        "No gradient flows from D's output back to its input image, so G could not learn from D. "
        "Do not detach x inside forward().",
    )

    with calling("Discriminator(conv_dim=16)"):
        D16 = Discriminator(16)
    check_size_follows_conv_dim(D, D16, "D", 3.0, "conv_dim, 2*conv_dim, 4*conv_dim")
    passed()


# ---------------------------------------------------------------- generator


def test_generator(Generator):
    """Generator(z_size, conv_dim): z (B, z_size) -> images (B, 3, 32, 32) in [-1, 1]."""
    torch.manual_seed(0)
    with calling("Generator(z_size=20, conv_dim=8)"):
        G = Generator(z_size=20, conv_dim=8)
    check(isinstance(G, nn.Module), "Generator should be an nn.Module subclass.")
    device = device_of(G)

    def noise(b, size=20):
        return (torch.rand(b, size) * 2 - 1).to(device)

    for b in (5, 16, 1):
        hint = (
            ONE_IMAGE_HINT.format("G")
            if b == 1
            else "Generator(z_size=20, ...) must accept z of shape (B, 20): build its first "
            "Linear layer from the z_size argument, and check the layer sizes above."
        )
        with calling(f"G on a ({b}, 20) batch of z", hint=hint):
            out = G(noise(b))
        check(
            isinstance(out, torch.Tensor) and tuple(out.shape) == (b, 3, 32, 32),
            f"G on a ({b}, 20) batch of z should return ({b}, 3, 32, 32), got "
            f"{tuple(getattr(out, 'shape', ()))}.",
        )

    z = noise(16)
    with calling("G on a (16, 20) batch of z"):
        out, calls = trace_leaves(G, z)
    check(
        out.min() >= -1 and out.max() <= 1,
        f"G's images should lie in [-1, 1], got min {out.min():.3f}, max {out.max():.3f}. End with tanh.",
    )
    check(
        (out[0] - out[1]).abs().max() > 1e-4,
        "G makes the same image for different z: its output must depend on z.",
    )

    deconvs = [(m, i, o) for m, i, o in calls if isinstance(m, nn.ConvTranspose2d)]
    check(
        len(deconvs) >= 2,
        f"G should upsample with transposed convolutions (deconv), found {len(deconvs)}.",
    )
    last = deconvs[-1][0]
    check(
        last.out_channels == 3 and last.in_channels == 8,
        f"G's last transposed conv should go from conv_dim=8 channels to 3 (RGB), got "
        f"{last.in_channels} -> {last.out_channels}.",
    )
    order = [m for m, _, _ in calls]
    after_last = order[order.index(last) + 1 :]
    check(
        not any(isinstance(m, nn.BatchNorm2d) for m in after_last),
        "G's output layer should have no batch norm: use deconv(..., batch_norm=False) for the last layer.",
    )
    bn_count = sum(isinstance(m, nn.BatchNorm2d) for m in order)
    check(
        bn_count >= 2,
        f"G should use batch norm in its hidden layers, found {bn_count} batch norm layer(s).",
    )
    last_input = deconvs[-1][1]
    check(
        last_input.min() >= 0,
        f"The input of G's last layer has negative values (min {last_input.min():.3f}): G's hidden "
        f"layers should end with ReLU (the paper uses ReLU in G and LeakyReLU only in D).",
    )

    check(
        samples_independent(G, z),
        "In eval mode, G's image for one z changes when other z are in the batch: check the reshape "
        "after the Linear layer (x.view(-1, 4 * conv_dim, 4, 4) keeps each z's numbers together).",
    )

    up = push_output(G, lambda: noise(8), +1)
    down = push_output(G, lambda: noise(8), -1)
    check(
        up.max() <= 1.0 + 1e-6 and down.min() >= -1.0 - 1e-6,
        f"G's outputs leave [-1, 1] when trained to grow or shrink (max {up.max():.3f}, min "
        f"{down.min():.3f}): end G with torch.tanh.",
    )
    check(
        down.min() < -0.5,
        f"G's outputs cannot go below {down.min():.3f} even when trained to: it ends with a sigmoid "
        f"(range [0, 1]). Use torch.tanh, whose range [-1, 1] matches the scaled real images.",
    )

    missing = params_without_gradient(G, noise(6), "G")
    check(
        not missing,
        f"No gradient reached these parameters of G: {missing}. Every layer must be used in forward().",
    )

    with calling("Generator(z_size=7, conv_dim=8)"):
        G7 = Generator(z_size=7, conv_dim=8)
    with calling("Generator(z_size=7, conv_dim=8) on a (3, 7) batch of z"):
        out7 = G7(noise(3, 7))
    check(
        tuple(out7.shape) == (3, 3, 32, 32),
        f"Generator(z_size=7) should accept z of shape (3, 7) and return (3, 3, 32, 32), got {tuple(out7.shape)}. "
        f"Use the z_size argument for the first Linear layer.",
    )
    with calling("Generator(z_size=20, conv_dim=16)"):
        G16 = Generator(z_size=20, conv_dim=16)
    # G's first Linear grows only linearly with conv_dim, hence the lower bound
    check_size_follows_conv_dim(G, G16, "G", 2.5, "4*conv_dim, 2*conv_dim, conv_dim")
    passed()


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
    with calling("model.apply(weights_init_normal)"):
        model.apply(weights_init_normal)

    kinds = {0: "Conv2d", 2: "ConvTranspose2d", 3: "Conv2d (bias=False)", 4: "Linear"}
    check_init_picks_the_layers(model, before, kinds, batch_norm=1)
    for index, kind in kinds.items():
        layer = model[index]
        w = layer.weight.detach().flatten()
        mean, std = w.mean().item(), w.std().item()
        check(
            abs(std - 0.02) < 0.002,
            f"The {kind} layer's weights should have standard deviation 0.02, got {std:.4f}. The notebook "
            f"asks for N(0, 0.02), the DCGAN paper's initialisation: "
            f"nn.init.normal_(m.weight, mean=0.0, std=0.02).",
        )
        check(abs(mean) < 0.002, f"The {kind} layer's weights should have mean 0, got {mean:.4f}.")
        beyond = (w.abs() > 2 * std).float().mean().item()
        check(
            0.03 < beyond < 0.065,
            f"The {kind} layer's weights do not look normally distributed ({beyond:.1%} lie beyond two "
            f"standard deviations; a normal distribution has about 4.6%). Use nn.init.normal_, not uniform_.",
        )
        if layer.bias is not None:
            check(
                torch.all(layer.bias == 0),
                f"The {kind} layer's bias should be set to 0, but it still holds "
                f"{layer.bias.detach().flatten()[0].item():.3f}. Use nn.init.zeros_(m.bias).",
            )
    passed()


def test_real_loss(real_loss):
    """real_loss(D_out, smooth=False): mean BCE with logits against labels 1 (0.9 when smooth)."""
    import inspect

    devices = loss_devices()
    check_loss(real_loss, "real_loss", "real_loss(D_out)", 1.0, devices)
    if "smooth" not in inspect.signature(real_loss).parameters:
        # The original course's real_loss(D_out): correct, and train does not need smoothing.
        print(
            "Note: your real_loss has no smooth argument (the original course's signature). The "
            "notebook's is real_loss(D_out, smooth=False), for the optional label smoothing."
        )
        passed()
        return
    check_loss(
        lambda d: real_loss(d, smooth=True),
        "real_loss with smooth=True",
        "real_loss(D_out, smooth=True)",
        0.9,
        devices,
    )
    passed()


def test_fake_loss(fake_loss):
    """fake_loss(D_out): mean BCE with logits against labels 0."""
    check_loss(fake_loss, "fake_loss", "fake_loss(D_out)", 0.0, loss_devices())
    passed()


# ---------------------------------------------------------------- optimizers


def test_optimizers(D, G, d_optimizer, g_optimizer):
    """d_optimizer: Adam over exactly D's parameters; g_optimizer: Adam over exactly G's; paper settings."""
    for name, opt, net, net_name in (
        ("d_optimizer", d_optimizer, D, "D"),
        ("g_optimizer", g_optimizer, G, "G"),
    ):
        check(opt is not None, f"{name} is None: create it in the cell above.")
        check(
            isinstance(opt, torch.optim.Adam),
            f"{name} should be a torch.optim.Adam, got {type(opt).__name__}.",
        )
        covered = {id(p) for group in opt.param_groups for p in group["params"]}
        own = {id(p) for p in net.parameters()}
        other_net, other_name = (G, "G") if net is D else (D, "D")
        other = {id(p) for p in other_net.parameters()}
        check(
            not covered & other,
            f"{name} updates {other_name}'s parameters. Give it {net_name}.parameters() only.",
        )
        check(
            covered == own,
            f"{name} should cover all of {net_name}'s parameters and nothing else: it covers "
            f"{len(covered & own)} of {len(own)}. Pass {net_name}.parameters().",
        )
        for group in opt.param_groups:
            check(
                abs(group["lr"] - 0.0002) < 1e-9,
                f"{name}'s learning rate is {group['lr']}; the notebook asks for 0.0002 (lr in the "
                f"hyperparameters cell), the DCGAN paper's value, because the paper found Adam's usual "
                f"0.001 too high for GANs.",
            )
            b1, b2 = group["betas"]
            check(
                abs(b1 - 0.5) < 1e-9 and abs(b2 - 0.999) < 1e-9,
                f"{name}'s betas are {tuple(group['betas'])}; the notebook asks for (0.5, 0.999) (beta1 "
                f"and beta2 in the hyperparameters cell), because the DCGAN paper found Adam's usual "
                f"beta1 = 0.9 made training oscillate and 0.5 steadied it.",
            )
    check(
        d_optimizer is not g_optimizer,
        "d_optimizer and g_optimizer must be two different optimizers.",
    )
    passed()


def test_train(train):
    """train(...) alternates a D step and a G step per batch, with the right losses and gradients."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    z_size = 8
    # the GPU when there is one, so train's own device handling is exercised too
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    D, G = TinyD().to(device), TinyG(z_size).to(device)
    d_opt = torch.optim.Adam(D.parameters(), lr=0.0002, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=0.0002, betas=(0.5, 0.999))
    data = torch.rand(12, 3, 16, 16)
    batches = [data[i : i + 4] for i in range(0, 12, 4)]
    loader = DataLoader(
        TensorDataset(data, torch.zeros(12, dtype=torch.long)), batch_size=4, shuffle=False
    )
    d_before = [p.detach().clone() for p in D.parameters()]
    g_before = [p.detach().clone() for p in G.parameters()]

    scaled = [b * 2 - 1 for b in batches]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "checkpoint.pt"
        options = dict(print_every=1, checkpoint_path=checkpoint, sample_size=6)
        check_train_signature(train, (D, G, d_opt, g_opt, loader, 2, z_size, device), options)
        rec = Recorder(D, G, d_opt, g_opt, scaled)
        try:
            with (
                calling("train(D, G, d_optimizer, g_optimizer, dataloader, n_epochs=2, ...)"),
                quiet(train),
            ):
                result = train(D, G, d_opt, g_opt, loader, 2, z_size, device, **options)
        finally:
            rec.close()

        n_d, n_g = rec.count("d_step"), rec.count("g_step")
        check(
            n_d > 0 or n_g > 0,
            "train never called d_optimizer.step() or g_optimizer.step() on the optimizers passed to it. "
            "Use the d_optimizer and g_optimizer arguments (not other optimizers from the notebook).",
        )
        check(
            n_d == 6,
            f"train should take one D step per batch: 3 batches x 2 epochs = 6 calls of "
            f"d_optimizer.step(), got {n_d}.",
        )
        check(
            n_g == 6,
            f"train should take one G step per batch: 3 batches x 2 epochs = 6 calls of "
            f"g_optimizer.step(), got {n_g}.",
        )

        check(
            any(not torch.equal(a, b) for a, b in zip(d_before, D.parameters())),
            "train did not change D's weights.",
        )
        check(
            any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters())),
            "train did not change G's weights.",
        )

        check(
            isinstance(result, tuple) and len(result) == 2,
            "train should return (losses, samples), as the given code at its end does.",
        )
        losses, samples = result
        check(
            len(losses) == 6
            # (d_loss, g_loss), then D(x) and D(G(z)) from the given code's monitor, which may
            # be nan (a joint real+fake D call), so only the losses must be finite
            and all(
                len(rec) in (2, 4) and all(math.isfinite(v) for v in rec[:2]) for rec in losses
            ),
            f"With print_every=1, train should log 6 finite (d_loss, g_loss) pairs, got {losses!r}.",
        )
        check(
            len(samples) == 2 and all(tuple(s.shape) == (6, 3, 16, 16) for s in samples),
            "train should keep one batch of sample_size=6 images per epoch (the given code does this).",
        )
        check(
            checkpoint.is_file(),
            "train should save a checkpoint after every epoch (the given code does this).",
        )

        rec2 = Recorder(D, G, d_opt, g_opt, scaled)
        try:
            with calling("Resuming train(...) from its checkpoint with n_epochs=3"), quiet(train):
                losses3, samples3 = train(D, G, d_opt, g_opt, loader, 3, z_size, device, **options)
        finally:
            rec2.close()
        check(
            rec2.count("d_step") == 3 and len(samples3) == 3 and len(losses3) == 9,
            "Run again with n_epochs=3, train should resume after epoch 2 and train one more epoch "
            f"(3 D steps); it took {rec2.count('d_step')} D steps and returned {len(samples3)} sample batches.",
        )
    if rec.d_step_reached_g:
        print(
            "Note: your D step also computes gradients for G (the fakes are not detached), which "
            "g_optimizer.zero_grad() then throws away. Training is right; "
            "fake_loss(D(fake_images.detach())) would save that backward pass through G."
        )
    passed()
