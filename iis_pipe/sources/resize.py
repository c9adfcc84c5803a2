"""Shrinking a loaded Sample once at prepare (``--max-side``): SA-1B's ~1500x2250 images become
what a model trains on (SAM: 1024) before any record is made of them.

Lossy: the image is resampled by area (``cv2.INTER_AREA``) and a JPEG re-encoded (quality
``JPEG_QUALITY``; other images stay lossless PNG, of the resampled pixels). Each instance and the
ignore mask are resampled by area too and thresholded: a target pixel belongs to a mask when at
least half of the source area it covers does. Instances that vanish are dropped later by
``region_candidates`` (counted with ``min_area``).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import simplejpeg

from iis_pipe import images
from iis_pipe.geometry.box import box_mask
from iis_pipe.sources.types import Sample

JPEG_QUALITY = 95


def target_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``(H, W)`` scaled so the longer side is ``max_side`` (rounded; at least 1 pixel)."""
    h, w = size
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def limit_side(sample: Sample, max_side: int) -> Sample:
    """``sample`` itself when its longer side is at most ``max_side``, else a resized copy
    whose ``meta["resized_from"]`` is the original ``[H, W]``."""
    if max(sample.size) <= max_side:
        return sample
    h, w = target_size(sample.size, max_side)
    pixels = cv2.resize(images.decode_image(sample.image_bytes, sample.image_ext), (w, h),
                        interpolation=cv2.INTER_AREA)
    if sample.image_ext == "jpg":
        data = simplejpeg.encode_jpeg(pixels, quality=JPEG_QUALITY, colorspace="RGB")
    else:
        data = images.read_image_bytes(cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))[1].tobytes(),
                                       sample.key)[0]
    # each instance full size, one at a time: area resampling is not local to a box (its
    # pixel grid is the image's)
    full = np.zeros(sample.size, bool)
    instances = []
    for box, mask in sample.instance_masks:
        full[box.slices] = mask
        instances.append(box_mask(area_threshold(full, (h, w))))
        full[box.slices] = False
    return dataclasses.replace(sample, image_bytes=data, size=(h, w), instance_masks=instances,
                               ignore=area_threshold(sample.ignore, (h, w)),
                               meta={**sample.meta, "resized_from": list(sample.size)})


def area_threshold(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W) bool`` -> ``size`` ``(h, w) bool``: area resampling, kept where coverage >= 1/2."""
    if not mask.any():
        return np.zeros(size, bool)
    small = cv2.resize(mask.view(np.uint8) * np.uint8(255), (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return small >= 128
