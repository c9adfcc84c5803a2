"""Choosing the target region(s) of a training sample, as plain functions of region areas.

They work on areas alone so that they serve both at prepare time (on stored areas) and at
stream time (on areas measured after augmentation and cropping).
"""

from __future__ import annotations

import numpy as np


def eligible(areas: np.ndarray, min_area: int = 1) -> np.ndarray:
    """Indices of regions whose area is at least ``min_area`` (and non-zero)."""
    return np.flatnonzero(np.asarray(areas) >= max(min_area, 1))


def choose_single(rng: np.random.Generator, areas: np.ndarray, min_area: int = 1) -> list[int]:
    """One eligible region uniformly at random; ``[]`` when none is eligible."""
    idx = eligible(areas, min_area)
    # rng.integers draws what rng.choice(idx) draws, at a seventh of its time
    return [int(idx[rng.integers(idx.size)])] if idx.size else []


def choose_merged(rng: np.random.Generator, areas: np.ndarray, max_merged: int = 2,
                  min_area: int = 1) -> list[int]:
    """Between 2 and ``max_merged`` distinct eligible regions (fewer when fewer exist)."""
    idx = eligible(areas, min_area)
    if idx.size <= 1:
        return idx.tolist()
    k = int(rng.integers(2, min(max_merged, idx.size) + 1))
    return sorted(int(i) for i in rng.choice(idx, size=k, replace=False))


def choose_regions(rng: np.random.Generator, areas: np.ndarray, merge_prob: float = 0.0,
                   max_merged: int = 2, min_area: int = 1) -> list[int]:
    """RITM's rule: with probability ``merge_prob`` a merge of up to ``max_merged`` regions,
    otherwise a single one."""
    if max_merged > 1 and merge_prob > 0 and rng.random() < merge_prob:
        return choose_merged(rng, areas, max_merged, min_area)
    return choose_single(rng, areas, min_area)
