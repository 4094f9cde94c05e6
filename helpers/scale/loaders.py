"""Each process's share of the training images, for ``python -m helpers distributed`` (the
notebook's "Train" step on several processes, GPUs or machines).
Its GPU path is not yet measured on a GPU (docs/performance.md will hold the numbers when it is).

``ShardedLoader`` serves this rank's share of the decoded images (the fast path, as
``helpers.fastdata.FastLoader`` does for one process); ``SampledLoader`` reads it through the
learner's own dataset when its transforms draw new pixels every epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["SampledLoader", "ShardedLoader"]


class ShardedLoader:
    """This process's share of a uint8 image tensor, as shuffled batches (a distributed FastLoader).

    Rank r of W holds ``images[r::W]``, cut to ``len(images) // W`` images so every rank runs
    the same number of steps (DDP needs all ranks in every step). Each epoch reshuffles the
    share with a seed made of (``seed``, epoch, rank): reproducible, different every epoch and
    on every rank. Batches come from ``helpers.fastdata.FastLoader`` over the share: ``(images,
    labels)``, images float (batch_size, 3, S, S) in [0, 1] on ``device``, as the notebook's
    ``train`` expects, with the learner's random ``flips`` (from ``load_dataset``) drawn per
    batch. Set ``epoch`` before iterating to resume (``train`` does not say which epoch it is
    in; each pass counts one).

    Without shuffling, the union of the ranks' k-th batches is exactly batch k of one process
    with W times the batch size: what the 1-vs-N equivalence test relies on.
    """

    # which data this is, for a checkpoint's run record (helpers.fastdata.data_identity)
    data_identity: dict[str, Any] | None = None

    def __init__(
        self,
        images_uint8: torch.Tensor,
        batch_size: int,
        device: torch.device | str,
        rank: int,
        world_size: int,
        seed: int = 0,
        shuffle: bool = True,
        channels_last: bool = False,
        flips: Iterable[Any] = (),
    ) -> None:
        if not isinstance(images_uint8, torch.Tensor) or images_uint8.dtype != torch.uint8:
            raise ValueError(
                "ShardedLoader needs the uint8 (N, 3, S, S) tensor that "
                "helpers.fastdata.load_dataset returns."
            )
        per_rank = images_uint8.shape[0] // world_size
        if per_rank < batch_size:
            raise ValueError(
                f"{images_uint8.shape[0]} training images shared by {world_size} processes give "
                f"{per_rank} each, fewer than the per-process batch of {batch_size}: no full "
                f"batch. Use more images, a smaller --batch-size or fewer processes."
            )
        self.device = torch.device(device)
        # A copy of just this share (strided slices keep the whole tensor alive), on the device.
        share = images_uint8[rank::world_size][:per_rank]
        self.share = share.to(self.device) if self.device.type != "cpu" else share.contiguous()
        self.batch_size, self.rank, self.seed = batch_size, rank, seed
        self.shuffle, self.channels_last, self.flips = shuffle, channels_last, tuple(flips)
        self.epoch = 0
        self.batches_served = 0

    def seed_for(self, epoch: int) -> int:
        """The shuffling seed of `epoch` on this rank."""
        return (self.seed << 40) + (epoch << 20) + self.rank

    def __len__(self) -> int:
        return self.share.shape[0] // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Any]]:
        from helpers.fastdata import FastLoader

        loader = FastLoader(
            self.share,
            self.batch_size,
            self.device,
            shuffle=self.shuffle,
            drop_last=True,
            seed=self.seed_for(self.epoch),
            channels_last=self.channels_last,
            flips=self.flips,
        )
        self.epoch += 1
        for batch in loader:
            self.batches_served += 1
            yield batch


class SampledLoader:
    """This process's share of the learner's dataset through a DataLoader: the fallback for a
    ``get_dataloader`` whose transforms draw new pixels every epoch (no fast path then).

    ``DistributedSampler`` gives each rank every W-th index of one permutation per epoch
    (seeded by ``seed`` and the epoch), dropping the tail so every rank has as many batches.
    """

    # which data this is, for a checkpoint's run record (helpers.fastdata.data_identity)
    data_identity: dict[str, Any] | None = None

    def __init__(
        self,
        dataset: Dataset[Any],
        batch_size: int,
        rank: int,
        world_size: int,
        seed: int = 0,
        shuffle: bool = True,
        workers: int = 0,
    ) -> None:
        self.sampler: DistributedSampler[Any] = DistributedSampler(
            dataset, world_size, rank, shuffle=shuffle, seed=seed, drop_last=True
        )
        self.loader = DataLoader(
            dataset, batch_size, sampler=self.sampler, num_workers=workers, drop_last=True
        )
        self.batch_size, self.epoch, self.batches_served = batch_size, 0, 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        for batch in self.loader:
            self.batches_served += 1
            yield batch
