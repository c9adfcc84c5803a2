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
from iis_pipe.stream.reader import RecordRef, scan

T = TypeVar("T")


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
                   on_error: Callable[[BadInput], None]) -> Iterator[RecordRef]:
    """Global record sequence of one epoch.

    Finite: one pass over the shards (permuted per epoch when ``shuffle_shards``) through a
    shuffle buffer. Resampled: an endless chain of such passes, each permuted anew; the caller
    takes as many positions as an epoch holds.
    """
    passes = itertools.count() if resampled else (0,)
    for q in passes:
        order = (np.random.default_rng([seed, epoch, q, 0]).permutation(len(urls))
                 if shuffle_shards else range(len(urls)))
        refs = scan([urls[i] for i in order], on_error)
        yield from shuffled(refs, buffer, np.random.default_rng([seed, epoch, q, 1]))
