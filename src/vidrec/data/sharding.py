"""Index samplers that make data order and augmentation a pure function of (seed, epoch, index).

Each sampler yields ``(dataset_index, item_seed)`` pairs. Because every random draw of a sample comes from
its ``item_seed``, the data order and augmentations do not depend on the number of loader workers, and a
resumed run reproduces the unbroken one. The sampler also shards across DDP ranks (Lightning's own
distributed sampler is turned off): the index list is padded by repeating its head so every rank gets the
same number of samples; evaluation drops those repeats by video index.
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
    """Shuffled (or ordered) indices for one of ``num_replicas`` ranks, re-drawn each epoch via ``set_epoch``."""

    def __init__(self, size: int, shuffle: bool, seed: int = 0, num_replicas: int = 1, rank: int = 0, drop_last: bool = False):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} out of range for {num_replicas} replicas")
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch start."""
        self.epoch = epoch

    def _indices(self) -> list[int]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, -1))
            order = torch.randperm(self.size, generator=gen).tolist()
        else:
            order = list(range(self.size))
        if self.drop_last:
            return order[: len(order) - len(order) % self.num_replicas]
        pad = (-len(order)) % self.num_replicas
        return order + (order * (pad // max(len(order), 1) + 1))[:pad]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i in self._indices()[self.rank :: self.num_replicas]:
            yield i, item_seed(self.seed, self.epoch, i)

    def __len__(self) -> int:
        if self.drop_last:
            return self.size // self.num_replicas
        return -(-self.size // self.num_replicas)
