"""Named stream recipes: the one registry the CLI (``--recipe``) and the trainer choose from.

A preset is a set of ``stream_config`` keywords; explicit keywords override it.
"""

from __future__ import annotations

from types import MappingProxyType

# RITM's COCO+LVIS HRNet-18 training data recipe (models/iter_mask/cocolvis_hrnet18s_itermask.py)
RITM = MappingProxyType(dict(
    batch_size=28, resampled=True, samples_per_epoch=30000, crop_size=(320, 480),
    scale_range=(0.75, 1.40), max_num_points=24, prob_gamma=0.80, merge_prob=0.15, max_merged=2,
    min_object_area=1000, background_prob=0.05, pad_ignore=False, image_dtype="uint8",
    target_dtype="int8"))

PRESETS = MappingProxyType({
    "ritm": RITM,                     # see ritm_cocolvis_hrnet18
    "plain": MappingProxyType({}),    # the stream's defaults
})


def preset(name: str, shards, **overrides):
    """The ``StreamConfig`` of preset ``name`` on ``shards``, ``overrides`` (any
    ``stream_config`` keyword) on top. Unknown names raise ValueError."""
    if name not in PRESETS:
        raise ValueError(f"unknown stream preset {name!r}; choose from {sorted(PRESETS)}")
    # The loader (torch) loads on use: the CLI lists the preset names at start-up.
    from iis_pipe.stream.loader import stream_config

    return stream_config(shards, **{**PRESETS[name], **overrides})


def ritm_cocolvis_hrnet18(shards, **overrides):
    """RITM's COCO+LVIS HRNet-18 training data recipe (models/iter_mask/
    cocolvis_hrnet18s_itermask.py): crop 320x480, resize 0.75-1.40, flip, brightness/contrast
    (-0.25..0.25, -0.15..0.4, p 0.75), RGB shift 10 (p 0.75), 24 points per side with gamma 0.8,
    merges of up to 2 objects with p 0.15, objects of at least 1000 px, 5% background samples,
    padding counted as background,
    batch 28, 30000 samples per epoch drawn with replacement. Images come as uint8 and targets
    as int8: move them to the device first, then convert (a quarter of the bytes to copy, and
    to pass from DataLoader workers through shared memory)."""
    return preset("ritm", shards, **overrides)
