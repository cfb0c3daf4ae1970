"""Index samplers that make data order and augmentation a pure function of (seed, epoch, index).

Each sampler yields ``(dataset_index, item_seed)`` pairs. Because every random draw of a sample comes from
its ``item_seed``, the data order and augmentations do not depend on the number of loader workers, and a
resumed run reproduces the unbroken one. The sampler also shards across DDP ranks (Lightning's own
distributed sampler is turned off): the index list is padded by repeating its head so every rank gets the
same number of samples; evaluation drops those repeats by video index.

Repeated augmentation (``repeats=k``, Hoffer et al. 2020; DeiT's ``RASampler`` as timm's ``RepeatAugSampler``,
timm/data/distributed_sampler.py@372ad5fa:101-129): every index appears k times per epoch, the k copies next to
each other in the shuffled order (``[a, a, b, b, ...]``, timm :116), so that over N ranks the copies of a video
land on different ranks in the same step and on one rank in the same batch. Copy r of index i gets the item seed
``item_seed(seed, epoch, r · size + i)`` (r = 0 is the plain sampler's seed), so each copy is augmented
differently. Unlike timm's sampler, the epoch is not cut back to ``size`` samples (timm :128): it holds
``k · size`` samples, padded like the plain sampler.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant for seed mixing
_MASK = (1 << 63) - 1


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample of one epoch (splitmix-style mixing of three integers)."""
    x = (seed * _MIX + epoch) & _MASK
    x = (x * _MIX + index) & _MASK
    x ^= x >> 31
    x = (x * 0xBF58476D1CE4E5B9) & _MASK
    return x ^ (x >> 29)


class ShardedSampler(Sampler):
    """Shuffled (or ordered) indices for one of ``num_replicas`` ranks, re-drawn each epoch via ``set_epoch``;
    each index ``repeats`` times per epoch (repeated augmentation, training only).

    Padding rule: the epoch's list (``repeats · size`` entries) is padded with its own head, cycled, up to a
    multiple of ``num_replicas`` (``drop_last`` instead drops its tail), and rank r takes entries r, r + N, ...
    """

    def __init__(self, size: int, shuffle: bool, seed: int = 0, num_replicas: int = 1, rank: int = 0,
                 drop_last: bool = False, repeats: int = 1):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} out of range for {num_replicas} replicas")
        if int(repeats) != repeats or repeats < 1:
            raise ValueError(f"repeats must be a positive integer, got {repeats}")
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        self.repeats = int(repeats)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch start."""
        self.epoch = epoch

    def _entries(self) -> list[tuple[int, int]]:
        """The epoch's ``(index, copy)`` list over all ranks, padded or cut to a multiple of the ranks."""
        if self.shuffle:
            gen = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, -1))
            order = torch.randperm(self.size, generator=gen).tolist()
        else:
            order = list(range(self.size))
        entries = [(i, r) for i in order for r in range(self.repeats)]
        if self.drop_last:
            return entries[: len(entries) - len(entries) % self.num_replicas]
        pad = (-len(entries)) % self.num_replicas
        return entries + (entries * (pad // max(len(entries), 1) + 1))[:pad]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i, r in self._entries()[self.rank :: self.num_replicas]:
            yield i, item_seed(self.seed, self.epoch, r * self.size + i)

    def __len__(self) -> int:
        total = self.size * self.repeats
        if self.drop_last:
            return total // self.num_replicas
        return -(-total // self.num_replicas)
