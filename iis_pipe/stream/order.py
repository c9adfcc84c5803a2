"""The epoch's global record order: the same in every rank and worker, whatever the timing.

Every reader scans the whole (cheap) sequence of record references and keeps its share by
position, so assignment to ranks, workers and batches is arithmetic on positions and a resumed
run can skip to any batch without decoding what it skips.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np

from iis_pipe.errors import BadInput
from iis_pipe.remote import OnRetry, RetryPolicy
from iis_pipe.stream.reader import RecordRef, scan

T = TypeVar("T")


def sample_generators(seed: int, epoch: int) -> Callable[[int], np.random.Generator]:
    """``generator(p)``: the random generator of the epoch's sample at position ``p``.

    Philox (a counter-based generator) keyed by ``(seed, epoch)``, at counter block ``p``
    (counters ``(i, 0, p, 0)``): the samples' streams cannot overlap, and moving to a sample
    sets a counter instead of hashing a seed (``SeedSequence`` was a visible share of a
    sample's time in the loader). One generator is moved from sample to sample: use each before the next."""
    key = np.array([seed % 2**64, epoch % 2**64], np.uint64)
    bits = np.random.Philox(key=key)
    gen = np.random.Generator(bits)
    state = bits.state

    def generator(p: int) -> np.random.Generator:
        state["state"]["counter"] = np.array([0, 0, p, 0], np.uint64)
        state["buffer_pos"] = 4  # the buffer of drawn words is empty
        state["has_uint32"] = 0
        bits.state = state
        return gen

    return generator


def shuffled(items: Iterable[T], size: int, rng: np.random.Generator) -> Iterator[T]:
    """Shuffle buffer of ``size`` items (``size <= 1``: input order). Deterministic in ``rng``."""
    if size <= 1:
        yield from items
        return
    buf: list[T] = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        j = int(rng.integers(size))
        buf[j], item = item, buf[j]
        yield item
    rng.shuffle(buf)
    yield from buf


def epoch_sequence(urls: list[str], seed: int, epoch: int, *, shuffle_shards: bool = True,
                   buffer: int = 1000, resampled: bool = False,
                   on_error: Callable[[BadInput], None], policy: RetryPolicy = RetryPolicy(),
                   on_retry: OnRetry | None = None) -> Iterator[RecordRef]:
    """Global record sequence of one epoch.

    Finite: one pass over the shards (permuted per epoch when ``shuffle_shards``) through a
    shuffle buffer. Resampled: an endless chain of such passes, each permuted anew; the caller
    takes as many positions as an epoch holds. A pass that finds no record ends the sequence
    (the stream then reports an empty epoch) instead of spinning. ``policy``, ``on_retry``:
    remote reads (``reader.scan``).
    """
    passes = itertools.count() if resampled else (0,)
    for q in passes:
        order = (np.random.default_rng([seed, epoch, q, 0]).permutation(len(urls))
                 if shuffle_shards else range(len(urls)))
        refs = Counted(scan([urls[i] for i in order], on_error, policy, on_retry))
        yield from shuffled(refs, buffer, np.random.default_rng([seed, epoch, q, 1]))
        if not refs.count:  # a pass without records: the next ones would spin, empty, forever
            return


class Counted:
    """An iterator that counts what it yields (``count``)."""

    def __init__(self, items: Iterable[T]):
        self.items, self.count = iter(items), 0

    def __iter__(self) -> "Counted":
        return self

    def __next__(self) -> T:
        item = next(self.items)
        self.count += 1
        return item
