"""One small training run of the notebook's own networks and train(), shared by the data-path
tests."""

import contextlib
import io

import torch


def train_one_epoch(notebook, loader, z_size=8, conv_dim=4, checkpoint_path=None, sample_size=3):
    """Train the notebook's D and G (tiny conv_dim) for one epoch on `loader`.

    Returns (losses, samples, g_changed): train's results and whether G's weights moved.
    """
    torch.manual_seed(0)
    D = notebook["Discriminator"](conv_dim)
    G = notebook["Generator"](z_size=z_size, conv_dim=conv_dim)
    d_opt = torch.optim.Adam(D.parameters(), lr=0.0002, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=0.0002, betas=(0.5, 0.999))
    g_before = [p.detach().clone() for p in G.parameters()]
    with contextlib.redirect_stdout(io.StringIO()):
        losses, samples = notebook["train"](
            D,
            G,
            d_opt,
            g_opt,
            loader,
            1,
            z_size,
            torch.device("cpu"),
            print_every=1,
            checkpoint_path=checkpoint_path,
            sample_size=sample_size,
        )
    g_changed = any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters()))
    return losses, samples, g_changed
