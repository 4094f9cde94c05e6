"""How long do part 2's trainings take per batch? (solution/part2_dcgan64_wgan.ipynb)

    python -m benchmarks.part2_speed                    # conv_dim 32, batch 64, on the CPU
    python -m benchmarks.part2_speed --conv-dim 64 --steps 20

Times the notebook's own code, read from the solution notebook (no copy): a DCGAN step of the
paper's 64x64 D and G (part 1's losses, as part 1's train takes it) and a WGAN-GP critic step
(train_wgan's, with its gradient penalty), on random images. Prints seconds per batch and what a
full epoch of the built-in set (10,000 images less 1,000 held out) costs, then one JSON line.
CPU seconds are printed beside wall seconds: on a shared machine the wall time grows.
"""

import argparse
import contextlib
import io
import os
import time

import torch
import torch.nn.functional as F

from benchmarks import print_result
from helpers.notebook import PART2_NOTEBOOK, load_solution


def timed(step, steps):
    step()  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time part 2's training steps.")
    parser.add_argument("--conv-dim", type=int, default=32, help="conv_dim (default: 32, CPU)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps each (default: 5)")
    args = parser.parse_args(argv)
    os.environ["DCGAN_QUICK"] = "1"  # the setup cells build small networks; ours are below
    with contextlib.redirect_stdout(io.StringIO()):
        nb = load_solution(PART2_NOTEBOOK)
    torch.manual_seed(0)
    b, c, z_size = args.batch_size, args.conv_dim, 100
    D, G, critic = nb["Discriminator64"](c), nb["Generator64"](z_size, c), nb["Critic"](c)
    opts = {
        n: torch.optim.Adam(m.parameters(), 1e-4) for n, m in (("D", D), ("G", G), ("C", critic))
    }
    real = torch.rand(b, 3, 64, 64) * 2 - 1

    def dcgan_step():  # part 1's train: a D step and a G step per batch
        fake = G(torch.rand(b, z_size) * 2 - 1)
        opts["D"].zero_grad()
        d_real, d_fake = D(real), D(fake.detach())
        loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
        loss = loss + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        loss.backward()
        opts["D"].step()
        opts["G"].zero_grad()
        d_out = D(fake)
        F.binary_cross_entropy_with_logits(d_out, torch.ones_like(d_out)).backward()
        opts["G"].step()

    def critic_step():  # train_wgan's critic step
        fake = G(torch.randn(b, z_size)).detach()
        opts["C"].zero_grad()
        loss = nb["critic_loss"](critic(real), critic(fake))
        (loss + 10 * nb["gradient_penalty"](critic, real, fake)).backward()
        opts["C"].step()

    batches = 9000 // b
    result = {"conv_dim": c, "batch_size": b, "threads": torch.get_num_threads()}
    for name, step in (("dcgan_step", dcgan_step), ("critic_step", critic_step)):
        wall, cpu = timed(step, args.steps)
        result[name] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
        print(
            f"{name:>12}: {wall:.3f} s per batch ({cpu:.3f} CPU s); an epoch of {batches} "
            f"batches: {wall * batches / 60:.1f} min"
        )
    # train_wgan: n_critic = 5 critic steps per G step; a G step costs about a third of a D step
    print_result(result)


if __name__ == "__main__":
    main()
