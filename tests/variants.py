"""Correct alternatives to the notebook's solution, each applied to the solution code.

The mirror image of mutants.py: every variant is a way a learner may rightly write a
piece (a different style, an order or extra layer the spec allows, the original course's
habits), and the graded test for that piece must pass it. tests/test_variants.py runs
them all. Edits use the same mechanism as the mutants (mutants.apply); Region(n) stands for
the whole n-th solution region of the scope.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from tests.mutants import LEAST_SQUARES, OWN_FAKE_LOSS, OWN_LOSS, Region


@dataclass(frozen=True)
class Variant:
    test: str  # graded test that must pass it
    name: str  # short id
    style: str  # what is different, in words
    scope: str  # top-level function/class whose code is edited ("<module>" for module code)
    edits: tuple  # ((old, new), ...) as in mutants.py


def code(text, indent):
    """Dedented `text` re-indented by `indent` spaces, ending with a newline (a region's body)."""
    return textwrap.indent(textwrap.dedent(text).strip("\n") + "\n", " " * indent)


def V(test, name, style, scope, *edits):
    return Variant(test, name, style, scope, tuple(edits))


TRAIN = "train"

VARIANTS = [
    # ---- get_dataloader
    V(
        "test_get_dataloader",
        "course-style",
        "positional arguments, torch.utils.data.DataLoader",
        "get_dataloader",
        (
            Region(0),
            code(
                """
        transform = transforms.Compose([transforms.Resize(image_size),
                                        transforms.CenterCrop(image_size),
                                        transforms.ToTensor()])
        dataset = datasets.ImageFolder(data_dir, transform)
        data_loader = torch.utils.data.DataLoader(dataset, batch_size, shuffle=True)
        return data_loader
        """,
                4,
            ),
        ),
    ),
    V(
        "test_get_dataloader",
        "keywords-drop-last",
        "keyword arguments, num_workers=0, drop_last=True",
        "get_dataloader",
        (
            Region(0),
            code(
                """
        transform = transforms.Compose([
            transforms.Resize(size=image_size),
            transforms.CenterCrop(size=image_size),
            transforms.ToTensor(),
        ])
        dataset = datasets.ImageFolder(root=data_dir, transform=transform)
        return DataLoader(dataset=dataset, batch_size=batch_size, shuffle=True, num_workers=0,
                          drop_last=True)
        """,
                4,
            ),
        ),
    ),
    V(
        "test_get_dataloader",
        "horizontal-flip",
        "adds RandomHorizontalFlip (a mirrored face is still a face)",
        "get_dataloader",
        (
            "        transforms.ToTensor(),",
            "        transforms.RandomHorizontalFlip(),\n        transforms.ToTensor(),",
        ),
    ),
    # ---- scale
    V(
        "test_scale",
        "course-names",
        "min, max = feature_range (the original course's names)",
        "scale",
        (
            Region(0),
            code(
                """
        min, max = feature_range
        x = x * (max - min) + min
        return x
        """,
                4,
            ),
        ),
    ),
    V(
        "test_scale",
        "indexing",
        "indexes feature_range",
        "scale",
        (Region(0), code("return feature_range[0] + x * (feature_range[1] - feature_range[0])", 4)),
    ),
    # ---- conv / deconv
    V(
        "test_conv",
        "course-append",
        "the original course's layers.append form, bias=False always",
        "conv",
        (
            Region(0),
            code(
                """
        layers = []
        conv_layer = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        layers.append(conv_layer)
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        return nn.Sequential(*layers)
        """,
                4,
            ),
        ),
    ),
    V(
        "test_conv",
        "ordered-dict",
        "named layers in an OrderedDict, bias kept",
        "conv",
        (
            Region(0),
            code(
                """
        from collections import OrderedDict
        layers = OrderedDict(conv=nn.Conv2d(in_channels, out_channels, kernel_size,
                                            stride=stride, padding=padding))
        if batch_norm:
            layers["bn"] = nn.BatchNorm2d(out_channels)
        return nn.Sequential(layers)
        """,
                4,
            ),
        ),
    ),
    V(
        "test_deconv",
        "course-append",
        "the original course's layers.append form",
        "deconv",
        (
            Region(0),
            code(
                """
        layers = []
        layers.append(nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding,
                                         bias=False))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        return nn.Sequential(*layers)
        """,
                4,
            ),
        ),
    ),
    # ---- Discriminator
    V(
        "test_discriminator",
        "one-sequential",
        "one nn.Sequential, nn.LeakyReLU(0.2, inplace=True), nn.Flatten",
        "Discriminator",
        (
            Region(0),
            code(
                """
        self.model = nn.Sequential(
            nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(conv_dim, conv_dim * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(conv_dim * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(conv_dim * 2, conv_dim * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(conv_dim * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
            nn.Linear(conv_dim * 4 * 4 * 4, 1),
        )
        """,
                8,
            ),
        ),
        (Region(1), code("return self.model(x)", 8)),
    ),
    V(
        "test_discriminator",
        "course-view",
        "x.view(-1, ...) and nn.functional.leaky_relu(..., negative_slope=0.2)",
        "Discriminator",
        (
            Region(1),
            code(
                """
        out = nn.functional.leaky_relu(self.conv1(x), negative_slope=0.2)
        out = nn.functional.leaky_relu(self.conv2(out), negative_slope=0.2)
        out = nn.functional.leaky_relu(self.conv3(out), negative_slope=0.2)
        out = out.view(-1, self.conv_dim * 4 * 4 * 4)
        out = self.fc(out)
        return out
        """,
                8,
            ),
        ),
    ),
    V(
        "test_discriminator",
        "conv-head",
        "a 4x4 conv to one channel instead of the Linear layer",
        "Discriminator",
        (
            Region(0),
            code(
                """
        self.conv1 = conv(3, conv_dim, 4, batch_norm=False)
        self.conv2 = conv(conv_dim, conv_dim * 2, 4)
        self.conv3 = conv(conv_dim * 2, conv_dim * 4, 4)
        self.head = nn.Conv2d(conv_dim * 4, 1, 4, 1, 0)   # (B, 1, 1, 1)
        """,
                8,
            ),
        ),
        (
            Region(1),
            code(
                """
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.conv2(x), 0.2)
        x = F.leaky_relu(self.conv3(x), 0.2)
        return self.head(x).view(-1, 1)
        """,
                8,
            ),
        ),
    ),
    V(
        "test_discriminator",
        "extra-stride-1",
        "an extra stride-1 conv layer before the Linear layer",
        "Discriminator",
        (
            "        self.fc = nn.Linear(",
            "        self.conv4 = conv(conv_dim * 4, conv_dim * 4, 3, stride=1, padding=1)\n"
            "        self.fc = nn.Linear(",
        ),
        (
            "        x = x.flatten(start_dim=1)",
            "        x = F.leaky_relu(self.conv4(x), 0.2)\n        x = x.flatten(start_dim=1)",
        ),
    ),
    V(
        "test_discriminator",
        "stride-1-between",
        "stride-1 conv layers between the strided ones (real learners' deeper D)",
        "Discriminator",
        (
            "        self.conv2 = conv(conv_dim, conv_dim * 2, 4)",
            "        self.keep1 = conv(conv_dim, conv_dim, 3, stride=1, padding=1)\n"
            "        self.conv2 = conv(conv_dim, conv_dim * 2, 4)\n"
            "        self.keep2 = conv(conv_dim * 2, conv_dim * 2, 3, stride=1, padding=1)",
        ),
        (
            "        x = F.leaky_relu(self.conv2(x), 0.2)  # (B, 2*conv_dim, 8, 8)",
            "        x = F.leaky_relu(self.keep1(x), 0.2)\n"
            "        x = F.leaky_relu(self.conv2(x), 0.2)  # (B, 2*conv_dim, 8, 8)\n"
            "        x = F.leaky_relu(self.keep2(x), 0.2)",
        ),
    ),
    V(
        "test_discriminator",
        "dropout-hidden",
        "dropout before the Linear layer (not on the logits)",
        "Discriminator",
        (
            "        x = x.flatten(start_dim=1)",
            "        x = F.dropout(x.flatten(start_dim=1), 0.3, self.training)",
        ),
    ),
    # ---- Generator
    V(
        "test_generator",
        "one-sequential",
        "one nn.Sequential with nn.Unflatten and nn.Tanh",
        "Generator",
        (
            Region(0),
            code(
                """
        self.model = nn.Sequential(
            nn.Linear(z_size, conv_dim * 4 * 4 * 4),
            nn.Unflatten(1, (conv_dim * 4, 4, 4)),
            nn.BatchNorm2d(conv_dim * 4), nn.ReLU(True),
            nn.ConvTranspose2d(conv_dim * 4, conv_dim * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(conv_dim * 2), nn.ReLU(True),
            nn.ConvTranspose2d(conv_dim * 2, conv_dim, 4, 2, 1, bias=False),
            nn.BatchNorm2d(conv_dim), nn.ReLU(True),
            nn.ConvTranspose2d(conv_dim, 3, 4, 2, 1),
            nn.Tanh(),
        )
        """,
                8,
            ),
        ),
        (Region(1), code("return self.model(x)", 8)),
    ),
    V(
        "test_generator",
        "course-no-bn0",
        "the original course's form: fc, view, ReLU (no batch norm on the fc)",
        "Generator",
        ("        self.bn0 = nn.BatchNorm2d(conv_dim * 4)\n", ""),
        (
            Region(1),
            code(
                """
        out = self.fc(x)
        out = out.view(-1, self.conv_dim * 4, 4, 4)
        out = F.relu(out)
        out = F.relu(self.deconv1(out))
        out = F.relu(self.deconv2(out))
        out = self.deconv3(out)
        out = torch.tanh(out)
        return out
        """,
                8,
            ),
        ),
    ),
    V(
        "test_generator",
        "extra-stride-1",
        "an extra stride-1 deconv before the output layer",
        "Generator",
        (
            "        self.deconv3 = deconv(conv_dim, 3, 4, batch_norm=False)",
            "        self.extra = deconv(conv_dim, conv_dim, 3, stride=1, padding=1)\n"
            "        self.deconv3 = deconv(conv_dim, 3, 4, batch_norm=False)",
        ),
        (
            "        return torch.tanh(self.deconv3(x))",
            "        x = F.relu(self.extra(x))\n        return torch.tanh(self.deconv3(x))",
        ),
    ),
    # ---- weights_init_normal
    V(
        "test_weights_init",
        "classname-find",
        "class-name test with find(...) != -1 (the original course)",
        "weights_init_normal",
        (
            Region(0),
            code(
                """
        classname = m.__class__.__name__
        is_layer = classname.find('Conv') != -1 or classname.find('Linear') != -1
        if hasattr(m, 'weight') and is_layer:
            nn.init.normal_(m.weight.data, 0.0, 0.02)
            if hasattr(m, 'bias') and m.bias is not None:
                nn.init.constant_(m.bias.data, 0.0)
        """,
                4,
            ),
        ),
    ),
    V(
        "test_weights_init",
        "dcgan-example",
        "pytorch/examples dcgan: .data.normal_, and batch norm N(1, 0.02)",
        "weights_init_normal",
        (
            Region(0),
            code(
                """
        classname = m.__class__.__name__
        if 'Conv' in classname or 'Linear' in classname:
            m.weight.data.normal_(0.0, 0.02)
            if m.bias is not None:
                m.bias.data.fill_(0)
        elif classname.find('BatchNorm') != -1:
            m.weight.data.normal_(1.0, 0.02)
            m.bias.data.fill_(0)
        """,
                4,
            ),
        ),
    ),
    V(
        "test_weights_init",
        "type-in-tuple",
        "type(m) in (...) and .zero_()",
        "weights_init_normal",
        (
            Region(0),
            code(
                """
        if type(m) in (nn.Conv2d, nn.ConvTranspose2d, nn.Linear):
            torch.nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                m.bias.data.zero_()
        """,
                4,
            ),
        ),
    ),
    # ---- real_loss / fake_loss
    V(
        "test_real_loss",
        "functional-bce",
        "F.binary_cross_entropy_with_logits, ones_like * 0.9",
        "real_loss",
        (
            Region(0),
            code(
                """
        labels = torch.ones_like(D_out)
        if smooth:
            labels = labels * 0.9
        return F.binary_cross_entropy_with_logits(D_out, labels)
        """,
                4,
            ),
        ),
    ),
    V(
        "test_real_loss",
        "flat-labels",
        "labels of shape (B,) against D_out.view(-1)",
        "real_loss",
        (
            Region(0),
            code(
                """
        batch_size = D_out.size(0)
        labels = torch.ones(batch_size, device=D_out.device) * (0.9 if smooth else 1.0)
        criterion = nn.BCEWithLogitsLoss()
        return criterion(D_out.view(-1), labels)
        """,
                4,
            ),
        ),
    ),
    V(
        "test_real_loss",
        "squeeze-1",
        "labels of shape (B,) against D_out.squeeze(1)",
        "real_loss",
        (
            Region(0),
            code(
                """
        labels = torch.full((D_out.size(0),), 0.9 if smooth else 1.0, device=D_out.device)
        return nn.BCEWithLogitsLoss()(D_out.squeeze(1), labels)
        """,
                4,
            ),
        ),
    ),
    V(
        "test_real_loss",
        "course-signature",
        "the original course's real_loss(D_out), without smooth",
        "real_loss",
        ("def real_loss(D_out, smooth=False):", "def real_loss(D_out):"),
        (
            Region(0),
            code(
                """
        labels = torch.ones(D_out.size(0), 1).to(D_out.device)
        return nn.BCEWithLogitsLoss()(D_out, labels)
        """,
                4,
            ),
        ),
    ),
    V(
        "test_fake_loss",
        "functional-bce",
        "F.binary_cross_entropy_with_logits with torch.full_like",
        "fake_loss",
        (
            Region(0),
            code(
                "return F.binary_cross_entropy_with_logits(D_out, torch.full_like(D_out, 0.0))", 4
            ),
        ),
    ),
    V(
        "test_fake_loss",
        "course-style",
        "torch.zeros(batch_size) against D_out.squeeze(1)",
        "fake_loss",
        (
            Region(0),
            code(
                """
        batch_size = D_out.size(0)
        labels = torch.zeros(batch_size).to(D_out.device)
        criterion = nn.BCEWithLogitsLoss()
        loss = criterion(D_out.squeeze(1), labels)
        return loss
        """,
                4,
            ),
        ),
    ),
    # ---- optimizers
    V(
        "test_optimizers",
        "positional-list",
        "lr and betas positional, betas as a list",
        "<module>",
        (
            "d_optimizer = optim.Adam(D.parameters(), lr=lr, betas=(beta1, beta2))",
            "d_optimizer = optim.Adam(D.parameters(), 0.0002, [0.5, 0.999])",
        ),
        (
            "g_optimizer = optim.Adam(G.parameters(), lr=lr, betas=(beta1, beta2))",
            "g_optimizer = torch.optim.Adam(G.parameters(), lr=0.0002, betas=[beta1, 0.999])",
        ),
    ),
    # ---- train
    V(
        "test_train",
        "no-detach",
        "fakes not detached in the D step (retain_graph); g_optimizer.zero_grad() "
        "before the G step",
        TRAIN,
        ("fake_loss(D(fake_images.detach()))", "fake_loss(D(fake_images))"),
        ("d_loss.backward()", "d_loss.backward(retain_graph=True)"),
    ),
    V(
        "test_train",
        "course-loop",
        "the original course's loop: numpy z, separate losses, new fakes for G",
        TRAIN,
        (
            Region(0),
            code(
                """
        real_images = scale(real_images)

        d_optimizer.zero_grad()
        D_real = D(real_images)
        d_real_loss = real_loss(D_real)
        z = np.random.uniform(-1, 1, size=(batch_size, z_size))
        z = torch.from_numpy(z).float().to(device)
        fake_images = G(z)
        D_fake = D(fake_images)
        d_fake_loss = fake_loss(D_fake)
        d_loss = d_real_loss + d_fake_loss
        d_loss.backward()
        d_optimizer.step()

        g_optimizer.zero_grad()
        z = np.random.uniform(-1, 1, size=(batch_size, z_size))
        z = torch.from_numpy(z).float().to(device)
        fake_images = G(z)
        D_fake = D(fake_images)
        g_loss = real_loss(D_fake)
        g_loss.backward()
        g_optimizer.step()
        """,
                12,
            ),
        ),
    ),
    V(
        "test_train",
        "joint-batch",
        "D scores real and fake images in one call",
        TRAIN,
        (
            "d_loss = real_loss(D(real_images)) + fake_loss(D(fake_images.detach()))",
            "d_out = D(torch.cat([real_images, fake_images.detach()]))\n"
            "            d_loss = real_loss(d_out[:batch_size]) + fake_loss(d_out[batch_size:])",
        ),
    ),
    V(
        "test_train",
        "smoothed-half",
        "label smoothing on D's real loss, d_loss halved",
        TRAIN,
        (
            "d_loss = real_loss(D(real_images)) + fake_loss(D(fake_images.detach()))",
            "d_loss = (real_loss(D(real_images), smooth=True) + "
            "fake_loss(D(fake_images.detach()))) / 2",
        ),
    ),
    V(
        "test_train",
        "zero-grad-on-modules",
        "D.zero_grad() and G.zero_grad(), both at the top of the step",
        TRAIN,
        (
            "            d_optimizer.zero_grad()\n",
            "            D.zero_grad()\n            G.zero_grad()\n",
        ),
        ("            g_optimizer.zero_grad()\n", ""),
    ),
]

# Correct code from real submissions (issue 21) that a graded test must still pass.
VARIANTS += [
    V(
        "test_discriminator",
        "instance-norm",
        "InstanceNorm2d instead of BatchNorm2d after D's 2nd and 3rd conv (the original course "
        "allowed it)",
        "Discriminator",
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
            "nn.InstanceNorm2d(conv_dim * 4, affine=True)\n        )",
        ),
    ),
    V(
        "test_real_loss",
        "cuda-if-train-on-gpu",
        "labels moved with .cuda() when train_on_gpu (the original course's habit)",
        "real_loss",
        (
            Region(0),
            code(
                """
        batch_size = D_out.size(0)
        labels = torch.ones(batch_size, 1) * (0.9 if smooth else 1.0)
        if torch.cuda.is_available():
            labels = labels.cuda()
        return nn.BCEWithLogitsLoss()(D_out, labels)
        """,
                4,
            ),
        ),
    ),
]

# The original course's train(D, G, n_epochs, print_every=50), right in ways learners wrote it:
# edits of tests/original_format.py's cells (the train cell is scope "train"), graded with the
# globals the original notebook gives it. Each passes with the note that says so (ORIGINAL_NOTE).
ORIGINAL_VARIANTS = [
    V(
        "test_train",
        "original-template",
        "the original course's loop as its template has it",
        TRAIN,
    ),
    V(
        "test_train",
        "original-new-fakes",
        "fakes not detached in the D step; new fakes for G after g_optimizer.zero_grad()",
        TRAIN,
        ("fake_loss(D(fake_images.detach()))", "fake_loss(D(fake_images))"),
        (
            "            g_optimizer.zero_grad()\n",
            "            g_optimizer.zero_grad()\n"
            "            z = np.random.uniform(-1, 1, size=(batch_size, z_size))\n"
            "            z = torch.from_numpy(z).float()\n"
            "            if train_on_gpu:\n"
            "                z = z.cuda()\n"
            "            fake_images = G(z)\n",
        ),
    ),
    V(
        "test_train",
        "original-renamed",
        "the loader named train_loader, the optimizers d_opt and g_opt, samples under no_grad",
        "<module>",
        ("enumerate(celeba_train_loader)", "enumerate(train_loader)"),
        ("d_optimizer = optim.Adam(", "d_opt = optim.Adam("),
        ("g_optimizer = optim.Adam(", "g_opt = optim.Adam("),
        ("            d_optimizer.zero_grad()\n", "            d_opt.zero_grad()\n"),
        ("            d_optimizer.step()\n", "            d_opt.step()\n"),
        ("            g_optimizer.zero_grad()\n", "            g_opt.zero_grad()\n"),
        ("            g_optimizer.step()\n", "            g_opt.step()\n"),
        (
            "        samples.append(G(fixed_z))\n",
            "        with torch.no_grad():\n            samples.append(G(fixed_z).cpu())\n",
        ),
    ),
    V(
        "test_train",
        "original-separate-losses",
        "the course's suggested loop: D_real, D_fake, separate losses, global batch_size",
        TRAIN,
        ("            batch_size = real_images.size(0)\n", ""),
        (
            "d_loss = real_loss(D(real_images)) + fake_loss(D(fake_images.detach()))",
            "D_real = D(real_images)\n"
            "            d_real_loss = real_loss(D_real, smooth=True)\n"
            "            D_fake = D(fake_images.detach())\n"
            "            d_fake_loss = fake_loss(D_fake)\n"
            "            d_loss = d_real_loss + d_fake_loss",
        ),
    ),
]

# Choices the original course left open, in original-format notebooks: each passes with a note
# that says what the kit's notebook recommends and why (ORIGINAL_NOTES: words the note holds).
# A sigmoid at D's end, right when the losses take probabilities
SIGMOID_D = ("return self.fc(x)", "return torch.sigmoid(self.fc(x))")
BCE_LOSSES = (
    (OWN_LOSS, "    return nn.BCELoss()(D_out, labels)\n\ndef fake_loss"),
    (OWN_FAKE_LOSS, OWN_FAKE_LOSS.replace("nn.BCEWithLogitsLoss()", "nn.BCELoss()")),
)
ORIGINAL_VARIANTS += [
    V(
        "test_discriminator",
        "original-sigmoid-least-squares",
        "D ends with a sigmoid, and both losses are least squares on its probabilities",
        "<module>",
        SIGMOID_D,
        *LEAST_SQUARES,
    ),
    V(
        "test_discriminator",
        "original-sigmoid-bce",
        "D ends with an nn.Sigmoid module, and both losses are nn.BCELoss",
        "<module>",
        (
            "        self.fc = nn.Linear(conv_dim * 4 * 4 * 4, 1)",
            "        self.fc = nn.Linear(conv_dim * 4 * 4 * 4, 1)\n        self.out = nn.Sigmoid()",
        ),
        ("return self.fc(x)", "return self.out(self.fc(x))"),
        *BCE_LOSSES,
    ),
    V(
        "test_weights_init",
        "original-bias-left",
        "biases left alone (the original: they 'may be left alone or set to 0')",
        "weights_init_normal",
        ("            nn.init.zeros_(m.bias)", "            pass"),
    ),
    V(
        "test_real_loss",
        "original-least-squares",
        "the least-squares loss",
        "<module>",
        *LEAST_SQUARES,
    ),
    V(
        "test_fake_loss",
        "original-least-squares",
        "the least-squares loss",
        "<module>",
        *LEAST_SQUARES,
    ),
    V(
        "test_train",
        "original-least-squares",
        "the original loop, the notebook's losses least-squares (it runs with the course's own)",
        "<module>",
        *LEAST_SQUARES,
    ),
    V(
        "test_optimizers",
        "original-own-settings",
        "lr 0.0005 and betas (0.1, 0.99), 'appropriate hyperparameters'",
        "<module>",
        ("lr = 0.0002\nbeta1 = 0.5\nbeta2 = 0.999", "lr = 0.0005\nbeta1 = 0.1\nbeta2 = 0.99"),
    ),
    V(
        "test_get_dataloader",
        "original-resize-alone",
        "Resize(image_size) alone, right on the course's square 64x64 images",
        "get_dataloader",
        ("            transforms.CenterCrop(image_size),  # then the central square\n", ""),
    ),
    V(
        "test_get_dataloader",
        "original-resize-square",
        "Resize((s, s)) alone, right on the course's square images",
        "get_dataloader",
        ("transforms.Resize(image_size)", "transforms.Resize((image_size, image_size))"),
        ("            transforms.CenterCrop(image_size),  # then the central square\n", ""),
    ),
    V(
        "test_discriminator",
        "original-slope-0.1",
        "LeakyReLU slope 0.1",
        "Discriminator",
        *[
            (f"F.leaky_relu(self.conv{n}(x), 0.2)", f"F.leaky_relu(self.conv{n}(x), 0.1)")
            for n in (1, 2, 3)
        ],
    ),
    V(
        "test_discriminator",
        "original-selu",
        "SELU between D's conv layers",
        "Discriminator",
        *[(f"F.leaky_relu(self.conv{n}(x), 0.2)", f"F.selu(self.conv{n}(x))") for n in (1, 2, 3)],
    ),
    V(
        "test_discriminator",
        "original-deeper",
        "a stride-1 layer that grows the depth: the strided ones have conv_dim, 4x, 4x",
        "Discriminator",
        (
            "        self.conv2 = conv(conv_dim, conv_dim * 2, 4)\n"
            "        self.conv3 = conv(conv_dim * 2, conv_dim * 4, 4)",
            "        self.conv2 = conv(conv_dim, conv_dim * 2, 3, stride=1)\n"
            "        self.down2 = conv(conv_dim * 2, conv_dim * 4, 4)\n"
            "        self.conv3 = conv(conv_dim * 4, conv_dim * 4, 4)",
        ),
        (
            "        x = F.leaky_relu(self.conv2(x), 0.2)  # (B, 2*conv_dim, 8, 8)",
            "        x = F.leaky_relu(self.conv2(x), 0.2)\n"
            "        x = F.leaky_relu(self.down2(x), 0.2)",
        ),
    ),
    V(
        "test_generator",
        "original-leaky",
        "LeakyReLU(0.2) in G's hidden layers",
        "Generator",
        ("x = F.relu(self.bn0(x))", "x = F.leaky_relu(self.bn0(x), 0.2)"),
        ("x = F.relu(self.deconv1(x))", "x = F.leaky_relu(self.deconv1(x), 0.2)"),
        ("x = F.relu(self.deconv2(x))", "x = F.leaky_relu(self.deconv2(x), 0.2)"),
    ),
    V(
        "test_generator",
        "original-leaky-module",
        "an nn.LeakyReLU(0.2) module in G's hidden layers",
        "Generator",
        (
            "        self.deconv3 = deconv(conv_dim, 3, 4, batch_norm=False)",
            "        self.act = nn.LeakyReLU(0.2)\n"
            "        self.deconv3 = deconv(conv_dim, 3, 4, batch_norm=False)",
        ),
        ("x = F.relu(self.bn0(x))", "x = self.act(self.bn0(x))"),
        ("x = F.relu(self.deconv1(x))", "x = self.act(self.deconv1(x))"),
        ("x = F.relu(self.deconv2(x))", "x = self.act(self.deconv2(x))"),
    ),
    V(
        "test_train",
        "original-two-g-steps",
        "two G steps per batch, each with new fakes",
        TRAIN,
        (
            "            g_optimizer.zero_grad()\n"
            "            g_loss = real_loss(D(fake_images))\n"
            "            g_loss.backward()\n"
            "            g_optimizer.step()\n",
            "            for _ in range(2):\n"
            "                g_optimizer.zero_grad()\n"
            "                z = np.random.uniform(-1, 1, size=(batch_size, z_size))\n"
            "                z = torch.from_numpy(z).float()\n"
            "                if train_on_gpu:\n"
            "                    z = z.cuda()\n"
            "                g_loss = real_loss(D(G(z)))\n"
            "                g_loss.backward()\n"
            "                g_optimizer.step()\n",
        ),
    ),
    V(
        "test_generator",
        "original-wide-last",
        "G's last layer fed from 2*conv_dim channels",
        "Generator",
        ("deconv(conv_dim * 2, conv_dim, 4)", "deconv(conv_dim * 2, conv_dim * 2, 4)"),
        (
            "deconv(conv_dim, 3, 4, batch_norm=False)",
            "deconv(conv_dim * 2, 3, 4, batch_norm=False)",
        ),
    ),
    V(
        "test_conv",
        "original-own-defaults",
        "conv with its own defaults (stride 1), the stride passed where needed",
        "conv",
        (
            "kernel_size, stride=2, padding=1, batch_norm",
            "kernel_size, stride=1, padding=1, batch_norm",
        ),
    ),
    V(
        "test_conv",
        "original-own-names",
        "conv whose batch-norm switch is named norm",
        "conv",
        ("padding=1, batch_norm=True):", "padding=1, norm=True):"),
        ("bias=not batch_norm)", "bias=not norm)"),
        ("    if batch_norm:\n", "    if norm:\n"),
    ),
]

# Words every original-format train variant's note holds.
ORIGINAL_NOTE = "original course's signature"

# Variants that pass with a printed note that teaches something (words the note must contain);
# every other variant passes without one.
NOTES = {
    ("test_real_loss", "course-signature"): "no smooth argument",
    ("test_train", "no-detach"): "fakes are not detached",
    ("test_train", "course-loop"): "fakes are not detached",
    ("test_train", "original-new-fakes"): "fakes are not detached",
    ("test_weights_init", "original-bias-left"): "leaves the biases",
    ("test_real_loss", "original-least-squares"): "least-squares loss",
    ("test_discriminator", "original-sigmoid-least-squares"): "which take probabilities (a least",
    ("test_discriminator", "original-sigmoid-bce"): "which take probabilities (nn.BCELoss)",
    ("test_fake_loss", "original-least-squares"): "least-squares loss",
    ("test_optimizers", "original-own-settings"): "lr 0.0002 and betas (0.5, 0.999)",
    ("test_get_dataloader", "original-resize-alone"): "right on square images",
    ("test_get_dataloader", "original-resize-square"): "right on square images",
    ("test_discriminator", "original-slope-0.1"): "slope 0.10",
    ("test_discriminator", "original-selu"): "uses SELU",
    ("test_generator", "original-leaky"): "use LeakyReLU",
    ("test_generator", "original-wide-last"): "takes 16 channels",
    ("test_generator", "original-leaky-module"): "use LeakyReLU",
    ("test_train", "original-two-g-steps"): "2 G steps per batch",
    ("test_conv", "original-own-defaults"): "own defaults",
    ("test_conv", "original-own-names"): "own signature",
}
