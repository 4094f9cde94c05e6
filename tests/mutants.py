"""A catalogue of realistic learner mistakes, each applied to the notebook's solution code.

Every mutant names the graded test that must reject it, the function (or class) whose code
it edits, the edit itself (old text -> new text, which must occur exactly once in that
function), and words the AssertionError message must contain, so that the test not only
fails but points at the mistake. tests/test_mutants.py runs them all.
"""

from __future__ import annotations

import ast
import contextlib
import io
from dataclasses import dataclass

from helpers.notebook import (
    DEFINITION_TAGS,
    NOTEBOOK,
    graded_test_calls,
    numbered_cells,
    read_notebook,
    run_cells,
)


@dataclass(frozen=True)
class Mutant:
    test: str  # graded test that must reject it, e.g. "test_scale"
    name: str  # short id
    mistake: str  # what the learner got wrong, in words
    scope: str  # top-level function/class whose code is edited ("<module>" for module code)
    edits: tuple  # ((old, new), ...) applied inside `scope`
    expect: tuple  # words the failure message must contain (case-insensitive)


@dataclass(frozen=True)
class Region:
    """Stands for the text of the scope's n-th solution region (between the BEGIN and END
    SOLUTION lines) in an edit: (Region(0), new_code) rewrites the whole region."""

    index: int = 0


def M(test, name, mistake, scope, edits, *expect):
    return Mutant(test, name, mistake, scope, tuple(edits), tuple(expect))


LEAKY = "F.leaky_relu(self.conv{0}(x), 0.2)"
# dropout on D's logits, then a sigmoid
DROPOUT_SIGMOID = (
    "return self.fc(x)",
    "return torch.sigmoid(F.dropout(self.fc(x), 0.5, self.training))",
)

MUTANTS = [
    # ---- get_dataloader
    M(
        "test_get_dataloader",
        "fixed-size",
        "ignores image_size (always 32)",
        "get_dataloader",
        [
            ("transforms.Resize(image_size)", "transforms.Resize(32)"),
            ("transforms.CenterCrop(image_size)", "transforms.CenterCrop(32)"),
        ],
        "image_size",
    ),
    M(
        "test_get_dataloader",
        "no-center-crop",
        "Resize without CenterCrop on non-square images",
        "get_dataloader",
        [("            transforms.CenterCrop(image_size),  # then the central square\n", "")],
        "centercrop",
    ),
    M(
        "test_get_dataloader",
        "squash",
        "Resize((s, s)) squashes instead of cropping",
        "get_dataloader",
        [
            ("transforms.Resize(image_size)", "transforms.Resize((image_size, image_size))"),
            ("            transforms.CenterCrop(image_size),  # then the central square\n", ""),
        ],
        "squashed",
    ),
    M(
        "test_get_dataloader",
        "no-shuffle",
        "forgets to shuffle",
        "get_dataloader",
        [("shuffle=True", "shuffle=False")],
        "shuffle",
    ),
    M(
        "test_get_dataloader",
        "fixed-batch",
        "ignores batch_size",
        "get_dataloader",
        [("batch_size=batch_size", "batch_size=64")],
        "batch_size",
    ),
    M(
        "test_get_dataloader",
        "no-to-tensor",
        "forgets ToTensor, so batches hold PIL images",
        "get_dataloader",
        [("            transforms.ToTensor(),  # (3, H, W), float in [0, 1]\n", "")],
        "totensor",
    ),
    M(
        "test_get_dataloader",
        "normalised",
        "normalises to [-1, 1] already in the loader",
        "get_dataloader",
        [
            (
                "transforms.ToTensor(),",
                "transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),",
            )
        ],
        "[0, 1]",
    ),
    M(
        "test_get_dataloader",
        "ignores-data-dir",
        "hard-codes the data folder",
        "get_dataloader",
        [("datasets.ImageFolder(data_dir,", "datasets.ImageFolder('processed_celeba_small/',")],
        "data_dir",
    ),
    # ---- scale
    M(
        "test_scale",
        "hard-coded",
        "ignores feature_range (always x * 2 - 1)",
        "scale",
        [("return x * (high - low) + low", "return x * 2 - 1")],
        "feature_range",
    ),
    M(
        "test_scale",
        "minus-low",
        "subtracts min instead of adding it",
        "scale",
        [("return x * (high - low) + low", "return x * (high - low) - low")],
        "should map to -1",
    ),
    M(
        "test_scale",
        "in-place",
        "scales the input tensor in place",
        "scale",
        [("return x * (high - low) + low", "return x.mul_(high - low).add_(low)")],
        "in place",
    ),
    M(
        "test_scale",
        "times-max",
        "multiplies by max instead of the range",
        "scale",
        [("return x * (high - low) + low", "return x * high + low")],
        "should map to -1",
    ),
    M(
        "test_scale",
        "inverse",
        "applies the inverse map",
        "scale",
        [("return x * (high - low) + low", "return (x - low) / (high - low)")],
        "should map",
    ),
    # ---- conv
    M(
        "test_conv",
        "bn-always",
        "adds batch norm even when batch_norm=False",
        "conv",
        [("    if batch_norm:\n", "    if True:\n")],
        "batch_norm=false",
    ),
    M(
        "test_conv",
        "bn-never",
        "never adds batch norm",
        "conv",
        [("    if batch_norm:\n", "    if False:\n")],
        "batch_norm=true",
    ),
    M(
        "test_conv",
        "stride-1",
        "passes stride 1 instead of the stride argument",
        "conv",
        [("kernel_size, stride, padding, bias", "kernel_size, 1, padding, bias")],
        "stride",
    ),
    M(
        "test_conv",
        "padding-0",
        "forgets the padding",
        "conv",
        [("kernel_size, stride, padding, bias", "kernel_size, stride, 0, bias")],
        "padding",
    ),
    M(
        "test_conv",
        "bn-in-channels",
        "batch norm over the input channels",
        "conv",
        [("nn.BatchNorm2d(out_channels)", "nn.BatchNorm2d(in_channels)")],
        "num_features",
    ),
    M(
        "test_conv",
        "relu-inside",
        "puts an activation inside the block",
        "conv",
        [
            (
                "    return nn.Sequential(*layers)",
                "    layers.append(nn.ReLU())\n    return nn.Sequential(*layers)",
            )
        ],
        "activations",
    ),
    # ---- deconv
    M(
        "test_deconv",
        "conv2d",
        "uses Conv2d instead of ConvTranspose2d",
        "deconv",
        [("nn.ConvTranspose2d(", "nn.Conv2d(")],
        "convtranspose2d",
    ),
    M(
        "test_deconv",
        "bn-always",
        "adds batch norm even when batch_norm=False",
        "deconv",
        [("    if batch_norm:\n", "    if True:\n")],
        "batch_norm=false",
    ),
    M(
        "test_deconv",
        "bn-never",
        "never adds batch norm",
        "deconv",
        [("    if batch_norm:\n", "    if False:\n")],
        "batch_norm=true",
    ),
    M(
        "test_deconv",
        "kernel-4",
        "hard-codes kernel size 4",
        "deconv",
        [
            (
                "out_channels, kernel_size, stride, padding, bias",
                "out_channels, 4, stride, padding, bias",
            )
        ],
        "kernel_size",
    ),
    # ---- Discriminator
    M(
        "test_discriminator",
        "sigmoid",
        "ends D with a sigmoid",
        "Discriminator",
        [("return self.fc(x)", "return torch.sigmoid(self.fc(x))")],
        "sigmoid",
    ),
    M(
        "test_discriminator",
        "bn-first",
        "batch norm on D's first layer",
        "Discriminator",
        [("conv(3, conv_dim, 4, batch_norm=False)", "conv(3, conv_dim, 4)")],
        "first conv layer",
    ),
    M(
        "test_discriminator",
        "relu",
        "ReLU instead of LeakyReLU",
        "Discriminator",
        [(LEAKY.format(n), f"F.relu(self.conv{n}(x))") for n in (1, 2, 3)],
        "leakyrelu",
    ),
    M(
        "test_discriminator",
        "fixed-depth",
        "ignores conv_dim (hard-coded 32)",
        "Discriminator",
        [
            ("conv(3, conv_dim, 4", "conv(3, 32, 4"),
            ("conv(conv_dim, conv_dim * 2, 4)", "conv(32, 64, 4)"),
            ("conv(conv_dim * 2, conv_dim * 4, 4)", "conv(64, 128, 4)"),
            ("nn.Linear(conv_dim * 4 * 4 * 4, 1)", "nn.Linear(128 * 4 * 4, 1)"),
        ],
        "conv_dim",
    ),
    M(
        "test_discriminator",
        "detached",
        "detaches the features before the Linear layer",
        "Discriminator",
        [("x = x.flatten(start_dim=1)", "x = x.flatten(start_dim=1).detach()")],
        "no gradient",
    ),
    M(
        "test_discriminator",
        "two-layers",
        "only two conv layers",
        "Discriminator",
        [
            ("        x = F.leaky_relu(self.conv3(x), 0.2)", "        pass"),
            ("nn.Linear(conv_dim * 4 * 4 * 4, 1)", "nn.Linear(conv_dim * 2 * 8 * 8, 1)"),
        ],
        "three",
    ),
    M(
        "test_discriminator",
        "batch-mixing",
        "a reshape that mixes the images of a batch",
        "Discriminator",
        [("x = x.flatten(start_dim=1)", "x = x.transpose(0, 1).reshape(x.size(0), -1)")],
        "other images",
    ),
    # ---- Generator
    M(
        "test_generator",
        "no-tanh",
        "forgets tanh at the end of G",
        "Generator",
        [("return torch.tanh(self.deconv3(x))", "return self.deconv3(x)")],
        "tanh",
    ),
    M(
        "test_generator",
        "sigmoid",
        "ends G with a sigmoid",
        "Generator",
        [("return torch.tanh(self.deconv3(x))", "return torch.sigmoid(self.deconv3(x))")],
        "sigmoid",
    ),
    M(
        "test_generator",
        "bn-output",
        "batch norm on G's output layer",
        "Generator",
        [("deconv(conv_dim, 3, 4, batch_norm=False)", "deconv(conv_dim, 3, 4)")],
        "output layer",
    ),
    M(
        "test_generator",
        "leaky",
        "LeakyReLU in G",
        "Generator",
        [("x = F.relu(self.deconv2(x))", "x = F.leaky_relu(self.deconv2(x), 0.2)")],
        "relu",
    ),
    M(
        "test_generator",
        "16px",
        "the last layer does not upsample, so images are 16x16",
        "Generator",
        [
            (
                "deconv(conv_dim, 3, 4, batch_norm=False)",
                "deconv(conv_dim, 3, 3, stride=1, batch_norm=False)",
            )
        ],
        "3, 32, 32",
    ),
    M(
        "test_generator",
        "fixed-z",
        "ignores z_size (always 100)",
        "Generator",
        [("nn.Linear(z_size,", "nn.Linear(100,")],
        "z_size",
    ),
    # ---- weights_init_normal
    M(
        "test_weights_init",
        "classname-typo",
        "class-name test that never matches ('Conv2D')",
        "weights_init_normal",
        [
            (
                "    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):",
                "    classname = m.__class__.__name__\n    if classname.find('Conv2D') != -1 or "
                "classname.find('Linear') != -1:",
            )
        ],
        "left the conv2d",
    ),
    M(
        "test_weights_init",
        "conv2d-only",
        "isinstance(m, nn.Conv2d) misses transposed convs and Linear",
        "weights_init_normal",
        [("isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))", "isinstance(m, nn.Conv2d)")],
        "convtranspose2d",
    ),
    M(
        "test_weights_init",
        "uniform",
        "uniform instead of normal",
        "weights_init_normal",
        [
            (
                "nn.init.normal_(m.weight, mean=0.0, std=0.02)",
                "nn.init.uniform_(m.weight, -0.02, 0.02)",
            )
        ],
        "standard deviation",
    ),
    M(
        "test_weights_init",
        "uniform-same-std",
        "uniform with the right standard deviation",
        "weights_init_normal",
        [
            (
                "nn.init.normal_(m.weight, mean=0.0, std=0.02)",
                "nn.init.uniform_(m.weight, -0.0346, 0.0346)",
            )
        ],
        "normally distributed",
    ),
    M(
        "test_weights_init",
        "std-0.2",
        "standard deviation 0.2",
        "weights_init_normal",
        [("std=0.02", "std=0.2")],
        "0.02",
    ),
    M(
        "test_weights_init",
        "bias-left",
        "leaves the biases",
        "weights_init_normal",
        [("            nn.init.zeros_(m.bias)", "            pass")],
        "bias",
    ),
    M(
        "test_weights_init",
        "bias-none",
        "sets a bias that does not exist (bias=False)",
        "weights_init_normal",
        [
            (
                "        if m.bias is not None:\n            nn.init.zeros_(m.bias)",
                "        m.bias.data.fill_(0)",
            )
        ],
        "raised",
    ),
    M(
        "test_weights_init",
        "mean-0.02",
        "passes 0.02 as the mean",
        "weights_init_normal",
        [("nn.init.normal_(m.weight, mean=0.0, std=0.02)", "nn.init.normal_(m.weight, 0.02)")],
        "standard deviation",
    ),
    M(
        "test_weights_init",
        "batchnorm-too",
        "initialises batch norm like a conv layer",
        "weights_init_normal",
        [
            (
                "(nn.Conv2d, nn.ConvTranspose2d, nn.Linear)",
                "(nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d)",
            )
        ],
        "batch norm",
    ),
    # ---- real_loss
    M(
        "test_real_loss",
        "flipped",
        "real labels 0",
        "real_loss",
        [("0.9 if smooth else 1.0", "0.1 if smooth else 0.0")],
        "flipped",
    ),
    M(
        "test_real_loss",
        "smooth-ignored",
        "ignores smooth",
        "real_loss",
        [("0.9 if smooth else 1.0", "1.0")],
        "smooth",
    ),
    M(
        "test_real_loss",
        "always-smooth",
        "always smooths",
        "real_loss",
        [("0.9 if smooth else 1.0", "0.9")],
        "exactly 1",
        "0.9 even without smooth=true",
        "harm g's loss",
    ),
    M(
        "test_real_loss",
        "sum",
        "sums over the batch",
        "real_loss",
        [("nn.BCEWithLogitsLoss()", "nn.BCEWithLogitsLoss(reduction='sum')")],
        "mean",
    ),
    M(
        "test_real_loss",
        "bce-on-logits",
        "BCELoss on raw logits",
        "real_loss",
        [("nn.BCEWithLogitsLoss()", "nn.BCELoss()")],
        "raised",
        "bcewithlogitsloss",
        "probabilities in [0, 1]",
    ),
    M(
        "test_real_loss",
        "cuda-labels",
        "labels made with .cuda()",
        "real_loss",
        [
            (
                "labels = torch.full_like(D_out, 0.9 if smooth else 1.0)",
                "labels = (torch.ones(D_out.size(0), 1) * (0.9 if smooth else 1.0)).cuda()",
            )
        ],
        "device",
    ),
    M(
        "test_real_loss",
        "squeezed",
        "squeezes D_out, which breaks a batch of one",
        "real_loss",
        [
            (
                "    labels = torch.full_like(D_out, 0.9 if smooth else 1.0)\n    return "
                "nn.BCEWithLogitsLoss()(D_out, labels)",
                "    labels = torch.ones(D_out.size(0), device=D_out.device) * (0.9 if smooth "
                "else 1.0)\n"
                "    return nn.BCEWithLogitsLoss()(D_out.squeeze(), labels)",
            )
        ],
        "batch of one",
        "shaped like d_out",
    ),
    # ---- fake_loss
    M(
        "test_fake_loss",
        "flipped",
        "fake labels 1",
        "fake_loss",
        [("torch.zeros_like(D_out)", "torch.ones_like(D_out)")],
        "flipped",
    ),
    M(
        "test_fake_loss",
        "sum",
        "sums over the batch",
        "fake_loss",
        [("nn.BCEWithLogitsLoss()", "nn.BCEWithLogitsLoss(reduction='sum')")],
        "mean",
    ),
    M(
        "test_fake_loss",
        "negated",
        "negates the real loss",
        "fake_loss",
        [
            (
                "    labels = torch.zeros_like(D_out)\n    return nn.BCEWithLogitsLoss()(D_out, "
                "labels)",
                "    return -real_loss(D_out)",
            )
        ],
        "should be",
    ),
    M(
        "test_fake_loss",
        "smoothed",
        "smooths the fake labels to 0.1",
        "fake_loss",
        [("torch.zeros_like(D_out)", "torch.full_like(D_out, 0.1)")],
        "should be",
    ),
    # ---- optimizers
    M(
        "test_optimizers",
        "swapped",
        "each optimizer over the other network",
        "<module>",
        [
            ("optim.Adam(D.parameters(), lr=lr", "optim.Adam(G.parameters(), lr=lr"),
            ("g_optimizer = optim.Adam(G.parameters()", "g_optimizer = optim.Adam(D.parameters()"),
        ],
        "updates",
    ),
    M(
        "test_optimizers",
        "both-d",
        "both optimizers over D",
        "<module>",
        [("g_optimizer = optim.Adam(G.parameters()", "g_optimizer = optim.Adam(D.parameters()")],
        "updates d's",
    ),
    M(
        "test_optimizers",
        "lr-1e-3",
        "learning rate 0.001",
        "<module>",
        [
            (
                "d_optimizer = optim.Adam(D.parameters(), lr=lr,",
                "d_optimizer = optim.Adam(D.parameters(), lr=0.001,",
            )
        ],
        "learning rate",
    ),
    M(
        "test_optimizers",
        "default-betas",
        "Adam's default betas (0.9, 0.999)",
        "<module>",
        [
            (
                "g_optimizer = optim.Adam(G.parameters(), lr=lr, betas=(beta1, beta2))",
                "g_optimizer = optim.Adam(G.parameters(), lr=lr)",
            )
        ],
        "betas",
    ),
    M(
        "test_optimizers",
        "sgd",
        "SGD instead of Adam",
        "<module>",
        [
            (
                "d_optimizer = optim.Adam(D.parameters(), lr=lr, betas=(beta1, beta2))",
                "d_optimizer = optim.SGD(D.parameters(), lr=lr, momentum=beta1)",
            )
        ],
        "adam",
    ),
    M(
        "test_optimizers",
        "fc-only",
        "only the last layer's parameters",
        "<module>",
        [("d_optimizer = optim.Adam(D.parameters()", "d_optimizer = optim.Adam(D.fc.parameters()")],
        "cover all",
    ),
    # ---- train
    M(
        "test_train",
        "no-d-zero-grad",
        "forgets d_optimizer.zero_grad()",
        "train",
        [("            d_optimizer.zero_grad()\n", "")],
        "zero_grad",
    ),
    M(
        "test_train",
        "no-detach",
        "does not detach the fakes in the D step and reuses them in the G step",
        "train",
        [("fake_loss(D(fake_images.detach()))", "fake_loss(D(fake_images))")],
        "detach",
    ),
    M(
        "test_train",
        "g-fake-labels",
        "trains G with fake labels",
        "train",
        [("g_loss = real_loss(D(fake_images))", "g_loss = fake_loss(D(fake_images))")],
        "fake labels",
    ),
    M(
        "test_train",
        "no-scale",
        "forgets to scale the real images",
        "train",
        [("            real_images = scale(real_images)\n", "")],
        "scale",
    ),
    M(
        "test_train",
        "d-flipped",
        "swaps the labels in the D step",
        "train",
        [
            (
                "d_loss = real_loss(D(real_images)) + fake_loss(D(fake_images.detach()))",
                "d_loss = fake_loss(D(real_images)) + real_loss(D(fake_images.detach()))",
            )
        ],
        "flipped",
    ),
    M(
        "test_train",
        "no-g-zero-grad",
        "forgets g_optimizer.zero_grad()",
        "train",
        [("            g_optimizer.zero_grad()\n", "")],
        "zero_grad",
    ),
    M(
        "test_train",
        "wrong-optimizer-step",
        "steps g_optimizer after the D loss",
        "train",
        [
            (
                "            d_loss.backward()\n            d_optimizer.step()",
                "            d_loss.backward()\n            g_optimizer.step()",
            )
        ],
        "d step",
    ),
    M(
        "test_train",
        "d-real-only",
        "trains D on real images only",
        "train",
        [
            (
                "d_loss = real_loss(D(real_images)) + fake_loss(D(fake_images.detach()))",
                "d_loss = real_loss(D(real_images))",
            )
        ],
        "fake images",
    ),
    M(
        "test_train",
        "g-detached",
        "detaches the fakes in the G step too",
        "train",
        [("g_loss = real_loss(D(fake_images))", "g_loss = real_loss(D(fake_images.detach()))")],
        "g_optimizer.step()",
    ),
    # ---- real mistakes from the original course's submissions (issue 9)
    M(
        "test_get_dataloader",
        "grayscale",
        "converts the faces to grey (Grayscale(3))",
        "get_dataloader",
        [("transforms.ToTensor(),", "transforms.Grayscale(3), transforms.ToTensor(),")],
        "colour",
    ),
    M(
        "test_scale",
        "min-max-per-batch",
        "min-max normalises each batch instead of the fixed map",
        "scale",
        [
            (
                "return x * (high - low) + low",
                "return (x - x.min()) / (x.max() - x.min()) * (high - low) + low",
            )
        ],
        "min-max",
        "every batch",
    ),
    M(
        "test_discriminator",
        "dropout-logits",
        "dropout on D's final logit (F.dropout)",
        "Discriminator",
        [("return self.fc(x)", "return F.dropout(self.fc(x), 0.3, self.training)")],
        "dropout",
        "logits",
    ),
    M(
        "test_discriminator",
        "dropout-after-fc",
        "nn.Dropout after D's last Linear layer",
        "Discriminator",
        [
            (
                "self.fc = nn.Linear(conv_dim * 4 * 4 * 4, 1)",
                "self.fc = nn.Sequential(nn.Linear(conv_dim * 4 * 4 * 4, 1), nn.Dropout(0.5))",
            )
        ],
        "dropout",
    ),
    M(
        "test_discriminator",
        "dropout-before-sigmoid",
        "dropout on D's logits, then a sigmoid",
        "Discriminator",
        [DROPOUT_SIGMOID],
        "applies dropout to its last layer's output (the logits) before its sigmoid",
        "also, d ends with a sigmoid",
    ),
    M(
        "test_discriminator",
        "leaky-default-slope",
        "F.leaky_relu with its default slope 0.01",
        "Discriminator",
        [(LEAKY.format(n), f"F.leaky_relu(self.conv{n}(x))") for n in (1, 2, 3)],
        "0.01",
        "0.2",
    ),
    M(
        "test_discriminator",
        "conv-ignores-batch-norm",
        "a conv() that ignores batch_norm, so D's first layer gets batch norm",
        "conv",
        [("    if batch_norm:\n", "    if True:\n")],
        "ignores batch_norm=false",
    ),
    M(
        "test_weights_init",
        "find-truthy-or",
        "class-name test `if classname.find('Conv') or ...` (0 is falsy)",
        "weights_init_normal",
        [
            (
                "    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):",
                "    classname = m.__class__.__name__\n"
                "    if hasattr(m, 'weight') and (classname.find('Conv') or "
                "classname.find('Linear')):",
            )
        ],
        "batch norm",
        "!= -1",
    ),
    M(
        "test_weights_init",
        "find-truthy",
        "class-name test `if classname.find('Conv'):` (0 is falsy)",
        "weights_init_normal",
        [
            (
                "    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):",
                "    classname = m.__class__.__name__\n"
                "    if hasattr(m, 'weight') and classname.find('Conv'):",
            )
        ],
        "left the conv2d",
        "!= -1",
    ),
    M(
        "test_weights_init",
        "convo2d-typo",
        "a misspelt class name ('Convo2d')",
        "weights_init_normal",
        [
            (
                "    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):",
                "    classname = m.__class__.__name__\n"
                "    if classname.find('Convo2d') != -1 or classname.find('ConvTranspose2d') != -1 "
                "or classname.find('Linear') != -1:",
            )
        ],
        "left the conv2d",
        "misspelt",
    ),
    M(
        "test_weights_init",
        "and-chain",
        "class-name tests joined with `and`, never true",
        "weights_init_normal",
        [
            (
                "    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):",
                "    classname = m.__class__.__name__\n"
                "    if classname.find('Conv') != -1 and classname.find('Linear') != -1:",
            )
        ],
        "changed no layer",
        "`or`",
    ),
    M(
        "test_real_loss",
        "sigmoid-then-bce-logits",
        "a sigmoid output fed to BCEWithLogitsLoss",
        "real_loss",
        [
            (
                "nn.BCEWithLogitsLoss()(D_out, labels)",
                "nn.BCEWithLogitsLoss()(torch.sigmoid(D_out), labels)",
            )
        ],
        "sigmoid",
    ),
    M(
        "test_train",
        "no-detach-early-g-zero-grad",
        "fakes not detached in the D step, and "
        "g_optimizer.zero_grad() before the D step instead of before the G step",
        "train",
        [
            ("fake_loss(D(fake_images.detach()))", "fake_loss(D(fake_images))"),
            (
                "            g_optimizer.zero_grad()\n            g_loss = "
                "real_loss(D(fake_images))",
                "            g_loss = real_loss(D(G(z)))",
            ),
            (
                "            d_optimizer.zero_grad()\n",
                "            d_optimizer.zero_grad()\n            g_optimizer.zero_grad()\n",
            ),
        ],
        "detach",
        "g_optimizer.zero_grad() right before",
    ),
    M(
        "test_train",
        "no-d-zero-grad-no-detach",
        "forgets d_optimizer.zero_grad(), fakes not detached",
        "train",
        [
            ("            d_optimizer.zero_grad()\n", ""),
            ("fake_loss(D(fake_images.detach()))", "fake_loss(D(fake_images))"),
            ("g_loss = real_loss(D(fake_images))", "g_loss = real_loss(D(G(z)))"),
        ],
        "d_optimizer.zero_grad() is missing",
    ),
    M(
        "test_train",
        "g-smoothed",
        "label smoothing on G's loss instead of D's real loss",
        "train",
        [("g_loss = real_loss(D(fake_images))", "g_loss = real_loss(D(fake_images), smooth=True)")],
        "smooth",
        "d's loss on real images",
    ),
    M(
        "test_get_dataloader",
        "crop-before-resize",
        "CenterCrop before Resize, so a large image keeps only its central patch",
        "get_dataloader",
        [
            (
                "            transforms.Resize(image_size),  # shorter side -> image_size, "
                "keeps the aspect ratio\n"
                "            transforms.CenterCrop(image_size),  # then the central square\n",
                "            transforms.CenterCrop(image_size),\n"
                "            transforms.Resize(image_size),\n",
            )
        ],
        "centercrop",
        "before",
    ),
    M(
        "test_get_dataloader",
        "random-resized-crop",
        "RandomResizedCrop instead of Resize + CenterCrop (random face fragments)",
        "get_dataloader",
        [
            (
                "            transforms.Resize(image_size),  # shorter side -> image_size, "
                "keeps the aspect ratio\n"
                "            transforms.CenterCrop(image_size),  # then the central square\n",
                "            transforms.RandomResizedCrop(image_size),\n",
            )
        ],
        "random",
    ),
    M(
        "test_train",
        "fakes-from-fixed-z",
        "the D and G steps use the fixed sample noise instead of fresh z",
        "train",
        [("z = torch.rand(batch_size, z_size, device=device) * 2 - 1", "z = fixed_z")],
        "fresh",
        "fixed",
    ),
    M(
        "test_train",
        "d-fakes-from-fixed-z",
        "the D step scores G(fixed_z), the sample noise, instead of the batch's fakes",
        "train",
        [("fake_loss(D(fake_images.detach()))", "fake_loss(D(G(fixed_z).detach()))")],
        "fresh",
        "fixed",
    ),
    M(
        "test_real_loss",
        "noisy-labels-above-1",
        "real labels drawn from uniform(0.7, 1.2), some above 1",
        "real_loss",
        [
            (
                "labels = torch.full_like(D_out, 0.9 if smooth else 1.0)",
                "labels = torch.ones_like(D_out) * torch.empty_like(D_out).uniform_(0.7, 1.2)",
            )
        ],
        "above 1",
    ),
    M(
        "test_real_loss",
        "labels-global-batch-size",
        "labels sized by the notebook's global batch_size, not by D_out",
        "real_loss",
        [
            (
                "labels = torch.full_like(D_out, 0.9 if smooth else 1.0)",
                "labels = torch.ones(batch_size, 1, device=D_out.device) * "
                "(0.9 if smooth else 1.0)",
            )
        ],
        "batch_size",
        "d_out",
    ),
]


def _scope_span(source, scope):
    """(start, end) offsets of top-level `scope` in source; the whole source for '<module>'."""
    if scope == "<module>":
        return 0, len(source)
    lines = source.splitlines(keepends=True)
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == scope:
            start = sum(len(line) for line in lines[: node.lineno - 1])
            end = sum(len(line) for line in lines[: node.end_lineno])
            return start, end
    raise LookupError(f"no top-level function or class named {scope!r} in the solution")


def apply(mutant, cells):
    """Return a copy of the cell sources with the mutant's edits applied.

    Each edit must match exactly once inside its scope, so a change to the notebook that
    makes a mutant silently stop applying fails loudly instead.
    """
    cells = list(cells)
    for old, new in mutant.edits:
        if isinstance(old, Region):
            old = _region_text(cells, mutant.scope, old.index)
        hits = []
        for i, source in enumerate(cells):
            if mutant.scope != "<module>":
                try:
                    start, end = _scope_span(source, mutant.scope)
                except LookupError:
                    continue
            else:
                start, end = 0, len(source)
            count = source.count(old, start, end)
            hits += [(i, start, end)] * count
        if len(hits) != 1:
            raise ValueError(
                f"mutant {mutant.test}/{mutant.name}: {old!r} occurs {len(hits)} times in "
                f"{mutant.scope}, expected exactly once"
            )
        i, start, end = hits[0]
        cells[i] = cells[i][:start] + cells[i][start:end].replace(old, new) + cells[i][end:]
    return cells


def _region_text(cells, scope, index):
    """The lines between the index-th BEGIN/END SOLUTION pair inside `scope` (markers excluded).

    A function's AST span ends at its last statement, before the END line, so the END line is
    looked for after the BEGIN line in the whole cell.
    """
    for source in cells:
        try:
            start, end = _scope_span(source, scope)
        except LookupError:
            continue
        lines = source[start:].splitlines(keepends=True)
        in_scope = len(source[start:end].splitlines())
        begins = [
            i
            for i, line in enumerate(lines[:in_scope])
            if line.strip().startswith("### BEGIN SOLUTION")
        ]
        if index < len(begins):
            first = begins[index] + 1
            last = next(
                i
                for i in range(first, len(lines))
                if lines[i].strip().startswith("### END SOLUTION")
            )
            return "".join(lines[first:last])
    raise LookupError(f"no solution region {index} in {scope!r}")


# ---------------------------------------------------------------- real learners, round 2
# Misleading messages found on real submissions to the original course (issue 21): each mutant's
# message must name the real cause first.

ROUND2_MUTANTS = [
    M(
        "test_discriminator",
        "template-stub",
        "the original template's empty Discriminator: no layers, forward returns x",
        "Discriminator",
        [(Region(0), "        pass\n"), (Region(1), "        return x\n")],
        "should return shape (5, 1)",
        "got (5, 3, 32, 32)",
    ),
    M(
        "test_weights_init",
        "template-stub",
        "the original template's empty weights_init_normal: reads the class name, sets nothing",
        "weights_init_normal",
        [(Region(0), "    classname = m.__class__.__name__\n")],
        "changed no layer's weights",
        "n(0, 0.02)",
    ),
    M(
        "test_discriminator",
        "conv-signature",
        "calls conv with arguments its signature does not take",
        "Discriminator",
        [
            (
                "self.conv1 = conv(3, conv_dim, 4, batch_norm=False)",
                "self.conv1 = conv(3, batch_norm=False)",
            )
        ],
        "signature",
        "conv() missing 2 required positional arguments",
    ),
    M(
        "test_discriminator",
        "instance-norm-slope",
        "InstanceNorm2d in D (allowed), with a LeakyReLU slope of 0.001",
        "Discriminator",
        [
            (
                "self.conv2 = conv(conv_dim, conv_dim * 2, 4)",
                "self.conv2 = nn.Sequential(\n"
                "            nn.Conv2d(conv_dim, conv_dim * 2, 4, 2, 1), "
                "nn.InstanceNorm2d(conv_dim * 2)\n        )",
            ),
            (
                "self.conv3 = conv(conv_dim * 2, conv_dim * 4, 4)",
                "self.conv3 = nn.Sequential(\n"
                "            nn.Conv2d(conv_dim * 2, conv_dim * 4, 4, 2, 1), "
                "nn.InstanceNorm2d(conv_dim * 4)\n        )",
            ),
            ("F.leaky_relu(self.conv1(x), 0.2)", "F.leaky_relu(self.conv1(x), 0.001)"),
            ("F.leaky_relu(self.conv2(x), 0.2)", "F.leaky_relu(self.conv2(x), 0.001)"),
            ("F.leaky_relu(self.conv3(x), 0.2)", "F.leaky_relu(self.conv3(x), 0.001)"),
        ],
        "negative slope 0.00",
    ),
    M(
        "test_weights_init",
        "batch-norm-normal",
        "batch norm's scale drawn from N(0, 0.02) on purpose, like the conv weights",
        "weights_init_normal",
        [
            (
                "            nn.init.zeros_(m.bias)\n",
                "            nn.init.zeros_(m.bias)\n"
                "    elif isinstance(m, nn.BatchNorm2d):\n"
                "        nn.init.normal_(m.weight, 0.0, 0.02)\n"
                "        nn.init.zeros_(m.bias)\n",
            )
        ],
        "batch norm's scale",
        "n(0, 0.02)",
        "n(1, 0.02)",
    ),
    M(
        "test_discriminator",
        "squeezed-output",
        "D's forward returns self.fc(x).squeeze()",
        "Discriminator",
        [("return self.fc(x)", "return self.fc(x).squeeze()")],
        "should return shape (5, 1)",
        "got (5,)",
    ),
]

# Messages that name the real cause (issue 21, the corpus of real learner notebooks): choices the
# original course allowed and the kit's notebook does not, and mistakes whose messages misled.
MUTANTS += [
    M(
        "test_real_loss",
        "least-squares",
        "the least-squares loss the original course offered, in the kit's notebook",
        "real_loss",
        [("return nn.BCEWithLogitsLoss()(D_out, labels)", "return ((D_out - labels) ** 2).mean()")],
        "least-squares loss",
        "bcewithlogitsloss",
    ),
    M(
        "test_discriminator",
        "selu",
        "F.selu(x, 0.2) between D's conv layers, taking selu's inplace flag for a slope",
        "Discriminator",
        [(LEAKY.format(n), f"F.selu(self.conv{n}(x), 0.2)") for n in (1, 2, 3)],
        "d uses selu",
        "inplace, not a slope",
    ),
    M(
        "test_generator",
        "fixed-1024",
        "G hard-codes conv_dim = 1024 filters, ignoring its argument",
        "Generator",
        [("        self.conv_dim = conv_dim\n", "        self.conv_dim = conv_dim = 1024\n")],
        "parameters",
        "conv_dim",
    ),
    M(
        "test_discriminator",
        "batch-norm-1x1",
        "a 4x4 conv head followed by batch norm on its 1x1 map",
        "Discriminator",
        [
            (
                Region(0),
                "        self.conv1 = conv(3, conv_dim, 4, batch_norm=False)\n"
                "        self.conv2 = conv(conv_dim, conv_dim * 2, 4)\n"
                "        self.conv3 = conv(conv_dim * 2, conv_dim * 4, 4)\n"
                "        self.head = conv(conv_dim * 4, 1, 4, 1, 0)  # with batch norm on 1x1\n",
            ),
            (
                Region(1),
                "        x = F.leaky_relu(self.conv1(x), 0.2)\n"
                "        x = F.leaky_relu(self.conv2(x), 0.2)\n"
                "        x = F.leaky_relu(self.conv3(x), 0.2)\n"
                "        return self.head(x).view(-1, 1)\n",
            ),
        ],
        "batch norm",
        "1x1",
    ),
]

# ---------------------------------------------------------------- the original course's format
# Mistakes in the original course's train(D, G, n_epochs, print_every=50), which reads the
# optimizers, the loader and z_size from globals: edits of tests/original_format.py's cells (the
# train cell is scope "train"), graded as the grader picks and runs an untagged notebook's cells.

MUTANTS += ROUND2_MUTANTS

ORIGINAL_MUTANTS = [
    M(
        "test_train",
        "original-fixed-z",
        "both steps make their fakes from fixed_z, so G only ever learns 16 images",
        "train",
        [("fake_images = G(z)", "fake_images = G(fixed_z)")],
        "fixed_z",
        "sample images",
    ),
    M(
        "test_train",
        "original-g-smoothed",
        "G's loss smoothed, real_loss(D_fake, smooth=True)",
        "train",
        [
            (
                "g_loss = real_loss(D(fake_images))",
                "D_fake = D(fake_images)\n            g_loss = real_loss(D_fake, smooth=True)",
            )
        ],
        "smoothed labels",
        "g's loss uses labels 1",
    ),
    M(
        "test_train",
        "original-no-d-zero-grad",
        "never calls d_optimizer.zero_grad()",
        "train",
        [("            d_optimizer.zero_grad()\n", "")],
        "d_optimizer.zero_grad() is missing",
    ),
    M(
        "test_train",
        "original-no-scale",
        "trains D on images in [0, 1], never scaled",
        "train",
        [("            real_images = scale(real_images)\n", "")],
        "scale",
    ),
    M(
        "test_train",
        "original-g-fake-loss",
        "G's loss against fake labels, fake_loss(D_fake)",
        "train",
        [("g_loss = real_loss(D(fake_images))", "g_loss = fake_loss(D(fake_images))")],
        "real_loss",
    ),
]


def _kit_mutant(test, name):
    """The kit's mutant `name` of `test`, as an original-format one (its edits are of the
    solution code the original-format notebook holds too)."""
    import dataclasses

    found = next(m for m in MUTANTS if (m.test, m.name) == (test, name))
    return dataclasses.replace(found, name=f"original-{name}")


# The original-format notebook's losses (tests/original_format.py's LOSSES), as edits find them
OWN_LOSS = (
    "    criterion = nn.BCEWithLogitsLoss()\n    return criterion(D_out, labels)\n\ndef fake_loss"
)
OWN_FAKE_LOSS = (
    "    labels = torch.zeros(batch_size, 1)\n"
    "    if train_on_gpu:\n        labels = labels.cuda()\n"
    "    criterion = nn.BCEWithLogitsLoss()\n    return criterion(D_out, labels)"
)
# Both losses least squares, which the original course offered
LEAST_SQUARES = (
    (OWN_LOSS, "    return torch.mean((D_out - labels) ** 2)\n\ndef fake_loss"),
    (OWN_FAKE_LOSS, "    return torch.mean(D_out ** 2)"),
)

# Real mistakes the original format's judges (which accept the choices that course left open,
# docs/testing.md) must still reject, graded as the grader grades an untagged notebook.
ORIGINAL_MUTANTS += [
    *(
        _kit_mutant(*key)
        for key in (
            ("test_get_dataloader", "random-resized-crop"),
            ("test_get_dataloader", "grayscale"),
            ("test_get_dataloader", "crop-before-resize"),
            ("test_get_dataloader", "ignores-data-dir"),
            ("test_conv", "stride-1"),
            ("test_conv", "bn-always"),
            ("test_discriminator", "relu"),
            ("test_discriminator", "sigmoid"),  # with the notebook's BCEWithLogitsLoss
        )
    ),
    M(
        "test_discriminator",
        "original-dropout-before-sigmoid",
        "dropout on D's logits before its sigmoid (the sigmoid is right with least squares)",
        "<module>",
        [DROPOUT_SIGMOID, *LEAST_SQUARES],
        "applies dropout to its last layer's output (the logits) before its sigmoid",
        "sigmoid is right with your real_loss and fake_loss",
    ),
    M(
        "test_weights_init",
        "original-bias-normal",
        "draws the biases from N(0, 0.02) too: neither left alone nor 0",
        "weights_init_normal",
        [("nn.init.zeros_(m.bias)", "nn.init.normal_(m.bias, 0.0, 0.02)")],
        "bias should be set to 0",
    ),
    M(
        "test_weights_init",
        "original-bias-none",
        "sets the bias of a layer built with bias=False (m.bias is None)",
        "weights_init_normal",
        [
            (
                "        if m.bias is not None:\n            nn.init.zeros_(m.bias)",
                "        m.bias.data.fill_(0)",
            )
        ],
        "bias=false",
        "m.bias is not none",
    ),
    M(
        "test_real_loss",
        "original-squared-mean",
        "least squares written as torch.mean(D_out - 1)**2: the square of the mean",
        "<module>",
        [(OWN_LOSS, "    return torch.mean(D_out - labels) ** 2\n\ndef fake_loss")],
        "squares the mean",
    ),
    M(
        "test_optimizers",
        "original-lr-0.1",
        "a learning rate of 0.1, far too high for a GAN",
        "<module>",
        [("lr = 0.0002", "lr = 0.1")],
        "learning rate is 0.1",
        "0.0002",
    ),
    M(
        "test_discriminator",
        "original-slope-0.001",
        "LeakyReLU slope 0.001, close to a ReLU",
        "Discriminator",
        [(LEAKY.format(n), f"F.leaky_relu(self.conv{n}(x), 0.001)") for n in (1, 2, 3)],
        "close to a relu",
    ),
    M(
        "test_generator",
        "original-no-activation",
        "no activation between G's hidden layers (linear up to the tanh)",
        "Generator",
        [
            ("x = F.relu(self.deconv1(x))", "x = self.deconv1(x)"),
            ("x = F.relu(self.deconv2(x))", "x = self.deconv2(x)"),
        ],
        "should end with relu",
    ),
    M(
        "test_generator",
        "original-one-channel",
        "G's last layer makes 1 channel, not 3",
        "Generator",
        [("deconv(conv_dim, 3, 4, batch_norm=False)", "deconv(conv_dim, 1, 4, batch_norm=False)")],
        "got (5, 1, 32, 32)",
    ),
]


# ---------------------------------------------------------------- part 2
# Mistakes in solution/part2_dcgan64_wgan.ipynb, rejected by part2_unittests.py; run by
# tests/test_part2_mutants.py.

PART2_MUTANTS = [
    # ---- Discriminator64
    M(
        "test_discriminator64",
        "bn-on-input",
        "batch norm on D's first layer",
        "Discriminator64",
        [
            (
                "nn.Conv2d(3, c, 4, 2, 1),  # no batch norm on D's input layer\n",
                "nn.Conv2d(3, c, 4, 2, 1),\n            nn.BatchNorm2d(c),\n",
            )
        ],
        "first conv layer should have no batch norm",
    ),
    M(
        "test_discriminator64",
        "relu",
        "ReLU instead of LeakyReLU in the middle of D",
        "Discriminator64",
        [("nn.LeakyReLU(0.2),  # (B, 4c, 8, 8)", "nn.ReLU(),")],
        "LeakyReLU",
    ),
    M(
        "test_discriminator64",
        "default-slope",
        "LeakyReLU with its default slope 0.01",
        "Discriminator64",
        [("nn.LeakyReLU(0.2),  # (B, c, 32, 32)", "nn.LeakyReLU(),")],
        "slope",
    ),
    M(
        "test_discriminator64",
        "linear-head",
        "a fully connected layer instead of the last 4x4 conv",
        "Discriminator64",
        [
            (
                "nn.Conv2d(c * 8, 1, 4, 1, 0),  # (B, 1, 1, 1): one logit, no fully "
                "connected layer",
                "nn.Flatten(),\n            nn.Linear(c * 8 * 4 * 4, 1),",
            )
        ],
        "fully connected",
    ),
    M(
        "test_discriminator64",
        "sigmoid",
        "a sigmoid on D's output",
        "Discriminator64",
        [("return self.net(x).flatten(1)", "return torch.sigmoid(self.net(x).flatten(1))")],
        "sigmoid",
    ),
    M(
        "test_discriminator64",
        "squeeze",
        "squeeze() instead of flatten(1)",
        "Discriminator64",
        [("return self.net(x).flatten(1)", "return self.net(x).squeeze()")],
        "shape",
    ),
    M(
        "test_discriminator64",
        "fixed-depth",
        "ignores conv_dim (always 64)",
        "Discriminator64",
        [("c = conv_dim", "c = 64")],
        "conv_dim",
    ),
    # ---- Generator64
    M(
        "test_generator64",
        "no-tanh",
        "forgets tanh at the end",
        "Generator64",
        [("            nn.Tanh(),\n", "")],
        "tanh",
    ),
    M(
        "test_generator64",
        "bn-on-output",
        "batch norm on G's output layer",
        "Generator64",
        [
            (
                "nn.ConvTranspose2d(c, 3, 4, 2, 1),  # (B, 3, 64, 64): no batch norm on G's output",
                "nn.ConvTranspose2d(c, 3, 4, 2, 1),\n            nn.BatchNorm2d(3),",
            )
        ],
        "output layer should have no batch norm",
    ),
    M(
        "test_generator64",
        "leaky",
        "LeakyReLU in G instead of ReLU",
        "Generator64",
        [
            (
                "            nn.BatchNorm2d(c * 4),\n            nn.ReLU(),",
                "            nn.BatchNorm2d(c * 4),\n            nn.LeakyReLU(0.2),",
            )
        ],
        "ReLU",
    ),
    M(
        "test_generator64",
        "no-bn",
        "no batch norm in G's hidden layers",
        "Generator64",
        [("            nn.BatchNorm2d(c * 2),\n", "")],
        "BatchNorm2d right after",
    ),
    M(
        "test_generator64",
        "view-mixes",
        "reshapes z with a view that mixes the batch",
        "Generator64",
        [
            (
                "z.view(z.size(0), self.z_size, 1, 1)",
                "z.reshape(self.z_size, -1).t().reshape(-1, self.z_size, 1, 1)",
            )
        ],
        "other z",
    ),
    M(
        "test_generator64",
        "no-flat-z",
        "accepts only (B, z, 1, 1) noise",
        "Generator64",
        [("self.net(z.view(z.size(0), self.z_size, 1, 1))", "self.net(z)")],
        "(B, z_size)",
    ),
    M(
        "test_generator64",
        "fixed-z",
        "first layer built for z of size 100",
        "Generator64",
        [
            (
                "nn.ConvTranspose2d(z_size, c * 8, 4, 1, 0, bias=False)",
                "nn.ConvTranspose2d(100, c * 8, 4, 1, 0, bias=False)",
            )
        ],
        "z_size",
    ),
    # ---- Critic
    M(
        "test_critic",
        "batch-norm",
        "batch norm in the critic",
        "Critic",
        [("nn.GroupNorm(1, c * 4),", "nn.BatchNorm2d(c * 4),")],
        "batch norm",
    ),
    M(
        "test_critic",
        "sigmoid",
        "a sigmoid on the critic's score",
        "Critic",
        [("return self.net(x).flatten(1)", "return torch.sigmoid(self.net(x).flatten(1))")],
        "sigmoid",
    ),
    M(
        "test_critic",
        "relu",
        "ReLU instead of LeakyReLU in the critic",
        "Critic",
        [("nn.LeakyReLU(0.2),  # (B, 2c, 16, 16)", "nn.ReLU(),")],
        "LeakyReLU",
    ),
    M(
        "test_critic",
        "batch-mean",
        "centres the scores over the batch",
        "Critic",
        [
            (
                "return self.net(x).flatten(1)",
                "s = self.net(x).flatten(1)\n        return s - s.mean()",
            )
        ],
        "other images",
    ),
    # ---- gradient_penalty
    M(
        "test_gradient_penalty",
        "no-create-graph",
        "torch.autograd.grad without create_graph",
        "gradient_penalty",
        [("create_graph=True,", "create_graph=False,")],
        "create_graph",
    ),
    M(
        "test_gradient_penalty",
        "one-eps",
        "one eps for the whole batch",
        "gradient_penalty",
        [
            (
                "torch.rand(batch_size, 1, 1, 1, device=real_images.device)",
                "torch.rand(1, device=real_images.device)",
            )
        ],
        "one eps per image",
    ),
    M(
        "test_gradient_penalty",
        "eps-per-pixel",
        "one eps per pixel",
        "gradient_penalty",
        [
            (
                "torch.rand(batch_size, 1, 1, 1, device=real_images.device)",
                "torch.rand_like(real_images)",
            )
        ],
        "not one per pixel",
    ),
    M(
        "test_gradient_penalty",
        "no-minus-one",
        "penalises the squared norm, not its distance to 1",
        "gradient_penalty",
        [("((norms - 1) ** 2).mean()", "(norms**2).mean()")],
        "(||grad|| - 1)^2",
    ),
    M(
        "test_gradient_penalty",
        "not-squared",
        "|norm - 1| instead of its square",
        "gradient_penalty",
        [("((norms - 1) ** 2).mean()", "(norms - 1).abs().mean()")],
        "square",
    ),
    M(
        "test_gradient_penalty",
        "batch-norm",
        "one norm over the whole batch's gradient",
        "gradient_penalty",
        [("grads.flatten(1).norm(2, dim=1)", "grads.norm(2)")],
        "norm per image",
    ),
    M(
        "test_gradient_penalty",
        "grad-of-mean",
        "gradient of the mean score (each gradient divided by B)",
        "gradient_penalty",
        [("        scores.sum(),\n", "        scores.mean(),\n")],
        "critic(x_hat).sum()",
    ),
    M(
        "test_gradient_penalty",
        "gaussian-eps",
        "eps drawn from a normal distribution",
        "gradient_penalty",
        [("eps = torch.rand(", "eps = torch.randn(")],
        "[0, 1]",
    ),
    # ---- critic_loss / generator_loss
    M(
        "test_critic_loss",
        "sign",
        "real minus fake",
        "critic_loss",
        [
            (
                "return fake_scores.mean() - real_scores.mean()",
                "return real_scores.mean() - fake_scores.mean()",
            )
        ],
        "wrong sign",
    ),
    M(
        "test_critic_loss",
        "sum",
        "sums over the batch",
        "critic_loss",
        [
            (
                "return fake_scores.mean() - real_scores.mean()",
                "return fake_scores.sum() - real_scores.sum()",
            )
        ],
        "mean",
    ),
    M(
        "test_critic_loss",
        "bce",
        "the BCE loss of part 1",
        "critic_loss",
        [
            (
                "return fake_scores.mean() - real_scores.mean()",
                "return F.binary_cross_entropy_with_logits(real_scores, "
                "torch.ones_like(real_scores))"
                " + F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))",
            )
        ],
        "no BCE",
    ),
    M(
        "test_critic_loss",
        "item",
        "returns a float",
        "critic_loss",
        [
            (
                "return fake_scores.mean() - real_scores.mean()",
                "return (fake_scores.mean() - real_scores.mean()).item()",
            )
        ],
        "0-dim tensor",
    ),
    M(
        "test_generator_loss",
        "sign",
        "plus the mean fake score",
        "generator_loss",
        [("return -fake_scores.mean()", "return fake_scores.mean()")],
        "wrong sign",
    ),
    M(
        "test_generator_loss",
        "sum",
        "sums over the batch",
        "generator_loss",
        [("return -fake_scores.mean()", "return -fake_scores.sum()")],
        "mean",
    ),
    M(
        "test_generator_loss",
        "log-sigmoid",
        "the non-saturating GAN loss of part 1",
        "generator_loss",
        [("return -fake_scores.mean()", "return -F.logsigmoid(fake_scores).mean()")],
        "no sigmoid",
    ),
    M(
        "test_generator_loss",
        "detached",
        "detaches the scores",
        "generator_loss",
        [("return -fake_scores.mean()", "return -fake_scores.detach().mean()")],
        "keep the graph",
    ),
    # ---- optimizers
    M(
        "test_wgan_optimizers",
        "dcgan-betas",
        "part 1's betas (0.5, 0.999)",
        "<module>",
        [
            (
                "c_optimizer = optim.Adam(critic.parameters(), lr=wgan_lr, betas=wgan_betas)",
                "c_optimizer = optim.Adam(critic.parameters(), lr=wgan_lr, betas=(0.5, 0.999))",
            )
        ],
        "(0.0, 0.9)",
    ),
    M(
        "test_wgan_optimizers",
        "adam-default-lr",
        "no lr: Adam's default 0.001",
        "<module>",
        [
            (
                "g_optimizer = optim.Adam(G.parameters(), lr=wgan_lr, betas=wgan_betas)",
                "g_optimizer = optim.Adam(G.parameters(), betas=wgan_betas)",
            )
        ],
        "0.0001",
    ),
    M(
        "test_wgan_optimizers",
        "swapped",
        "the critic's optimizer over G's parameters",
        "<module>",
        [("optim.Adam(critic.parameters(),", "optim.Adam(G.parameters(),")],
        "updates G's parameters",
    ),
    # ---- train_wgan
    M(
        "test_train_wgan",
        "no-penalty",
        "leaves the gradient penalty out of the critic's loss",
        "train_wgan",
        [("(c_loss + gp_weight * penalty).backward()", "c_loss.backward()")],
        "leave out the gradient penalty",
    ),
    M(
        "test_train_wgan",
        "unweighted",
        "adds the penalty without gp_weight",
        "train_wgan",
        [("(c_loss + gp_weight * penalty).backward()", "(c_loss + penalty).backward()")],
        "gp_weight",
    ),
    M(
        "test_train_wgan",
        "g-every-step",
        "a generator step after every critic step",
        "train_wgan",
        [("if step % n_critic == 0:", "if True:")],
        "n_critic",
    ),
    M(
        "test_train_wgan",
        "no-detach",
        "the critic step's fakes are not detached",
        "train_wgan",
        [("fake_images = G(z).detach()  # this step trains the critic only", "fake_images = G(z)")],
        "detach",
    ),
    M(
        "test_train_wgan",
        "g-sign",
        "G maximises its loss (the critic's score of fakes goes down)",
        "train_wgan",
        [("g_loss = generator_loss(critic(G(z)))", "g_loss = -generator_loss(critic(G(z)))")],
        "wrong sign",
    ),
    M(
        "test_train_wgan",
        "c-sign",
        "the critic maximises its loss",
        "train_wgan",
        [
            (
                "(c_loss + gp_weight * penalty).backward()",
                "(-c_loss + gp_weight * penalty).backward()",
            )
        ],
        "wrong sign",
    ),
    M(
        "test_train_wgan",
        "no-zero-grad",
        "never zeroes the critic's gradients",
        "train_wgan",
        [("            c_optimizer.zero_grad()\n", "")],
        "zero_grad",
    ),
    # ---- slerp
    M(
        "test_slerp",
        "lerp",
        "straight-line interpolation",
        "slerp",
        [("    return w0 * z0 + w1 * z1\n", "    return (1 - t) * z0 + t * z1\n")],
        "great circle",
    ),
    M(
        "test_slerp",
        "batch-angle",
        "one angle for the whole batch",
        "slerp",
        [
            (
                "F.cosine_similarity(z0, z1, dim=1)",
                "F.cosine_similarity(z0.flatten(), z1.flatten(), dim=0).expand(len(z0))",
            )
        ],
        "per row",
    ),
    M(
        "test_slerp",
        "swapped-weights",
        "swaps the weights of z0 and z1",
        "slerp",
        [("    return w0 * z0 + w1 * z1\n", "    return w1 * z0 + w0 * z1\n")],
        "should give z0 exactly",
    ),
    M(
        "test_slerp",
        "no-fallback",
        "divides by sin(omega) even for parallel vectors",
        "slerp",
        [("safe = sin.abs() > 1e-6", "safe = sin.abs() >= 0")],
        "parallel",
    ),
    M(
        "test_slerp",
        "t-not-per-row",
        "t as a (B,) tensor broadcast along z instead of per row",
        "slerp",
        [("t = t.reshape(-1, 1) if t.dim() else t", "pass")],
        "(B, 1)",
    ),
    # ---- attribute_vector
    M(
        "test_attribute_vector",
        "sign",
        "without minus with",
        "attribute_vector",
        [("return z[has].mean(0) - z[~has].mean(0)", "return z[~has].mean(0) - z[has].mean(0)")],
        "wrong way",
    ),
    M(
        "test_attribute_vector",
        "mean-of-all",
        "subtracts the mean of all samples",
        "attribute_vector",
        [("return z[has].mean(0) - z[~has].mean(0)", "return z[has].mean(0) - z.mean(0)")],
        "mean of all samples",
    ),
    M(
        "test_attribute_vector",
        "sums",
        "differences of sums",
        "attribute_vector",
        [("return z[has].mean(0) - z[~has].mean(0)", "return z[has].sum(0) - z[~has].sum(0)")],
        "not sums",
    ),
    M(
        "test_attribute_vector",
        "int-mask",
        "indexes with the 0/1 labels as integers",
        "attribute_vector",
        [("has = has_attribute.bool()", "has = has_attribute")],
        "0s and 1s",
    ),
    # ---- more, so every part-2 graded test meets at least six mistakes
    M(
        "test_critic",
        "fixed-depth",
        "ignores conv_dim (always 64)",
        "Critic",
        [("c = conv_dim", "c = 64")],
        "conv_dim",
    ),
    M(
        "test_critic",
        "linear-head",
        "a fully connected layer instead of the last 4x4 conv",
        "Critic",
        [
            (
                "nn.Conv2d(c * 8, 1, 4, 1, 0),  # (B, 1, 1, 1): a score, not a probability",
                "nn.Flatten(),\n            nn.Linear(c * 8 * 4 * 4, 1),",
            )
        ],
        "fully connected",
    ),
    M(
        "test_critic",
        "dcgan-first-layer-bn",
        "batch norm on the critic's first layer",
        "Critic",
        [
            (
                "            nn.Conv2d(3, c, 4, 2, 1),\n",
                "            nn.Conv2d(3, c, 4, 2, 1),\n            nn.BatchNorm2d(c),\n",
            )
        ],
        "batch norm",
    ),
    M(
        "test_wgan_optimizers",
        "sgd",
        "SGD instead of Adam",
        "<module>",
        [
            (
                "g_optimizer = optim.Adam(G.parameters(), lr=wgan_lr, betas=wgan_betas)",
                "g_optimizer = optim.SGD(G.parameters(), lr=wgan_lr)",
            )
        ],
        "torch.optim.Adam",
    ),
    M(
        "test_wgan_optimizers",
        "adam-defaults",
        "Adam with its defaults (lr 0.001)",
        "<module>",
        [
            (
                "c_optimizer = optim.Adam(critic.parameters(), lr=wgan_lr, betas=wgan_betas)",
                "c_optimizer = optim.Adam(critic.parameters())",
            )
        ],
        "0.0001",
    ),
    M(
        "test_wgan_optimizers",
        "one-optimizer",
        "one optimizer for both networks",
        "<module>",
        [
            (
                "g_optimizer = optim.Adam(G.parameters(), lr=wgan_lr, betas=wgan_betas)",
                "g_optimizer = c_optimizer",
            )
        ],
        "updates the critic's parameters",
    ),
    M(
        "test_critic_loss",
        "sigmoid",
        "probabilities of the scores",
        "critic_loss",
        [
            (
                "return fake_scores.mean() - real_scores.mean()",
                "return torch.sigmoid(fake_scores).mean() - torch.sigmoid(real_scores).mean()",
            )
        ],
        "no sigmoid",
    ),
    M(
        "test_critic_loss",
        "hinge",
        "the hinge loss instead of the Wasserstein one",
        "critic_loss",
        [
            (
                "return fake_scores.mean() - real_scores.mean()",
                "return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()",
            )
        ],
        "fake_scores.mean() - real_scores.mean()",
    ),
    M(
        "test_critic_loss",
        "detached",
        "detaches the scores",
        "critic_loss",
        [
            (
                "return fake_scores.mean() - real_scores.mean()",
                "return fake_scores.detach().mean() - real_scores.detach().mean()",
            )
        ],
        "keep the graph",
    ),
    M(
        "test_generator_loss",
        "item",
        "returns a float",
        "generator_loss",
        [("return -fake_scores.mean()", "return -fake_scores.mean().item()")],
        "0-dim tensor",
    ),
    M(
        "test_generator_loss",
        "minimax",
        "the saturating minimax loss of the original GAN",
        "generator_loss",
        [("return -fake_scores.mean()", "return torch.log(1 - torch.sigmoid(fake_scores)).mean()")],
        "no sigmoid",
    ),
    M(
        "test_attribute_vector",
        "keepdim",
        "keeps the batch dimension, (1, z)",
        "attribute_vector",
        [
            (
                "return z[has].mean(0) - z[~has].mean(0)",
                "return z[has].mean(0, keepdim=True) - z[~has].mean(0, keepdim=True)",
            )
        ],
        "shape (6,)",
    ),
    M(
        "test_attribute_vector",
        "only-with",
        "the mean z of the samples with the attribute only",
        "attribute_vector",
        [("return z[has].mean(0) - z[~has].mean(0)", "return z[has].mean(0)")],
        "difference of two means",
    ),
    M(
        "test_slerp",
        "raw-dot",
        "the angle from the dot product of unnormalised vectors",
        "slerp",
        [
            (
                "cos = F.cosine_similarity(z0, z1, dim=1).clamp(-1, 1).unsqueeze(1)",
                "cos = (z0 * z1).sum(1, keepdim=True)",
            )
        ],
        "normalised vectors",
    ),
]


def definition_cells(notebook=NOTEBOOK):
    """(cell numbers, definition cell sources, {graded test: its argument names}) of a solution
    notebook: what the mutation and variant suites edit and run."""
    nb = read_notebook(notebook)
    numbers, cells = zip(*numbered_cells(nb, *DEFINITION_TAGS))
    return numbers, cells, graded_test_calls(nb)


def run_definitions(numbers, cells):
    """Run the (edited) definition cells as a learner would: one by one, past errors, printing
    nothing; a broken cell leaves its names undefined, as in Jupyter. (namespace, errors)."""
    namespace = {"__name__": "__notebook__"}
    with contextlib.redirect_stdout(io.StringIO()):
        errors = run_cells(zip(numbers, cells), namespace)
    return namespace, errors
