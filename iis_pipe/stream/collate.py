"""Samples to a batch of tensors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info

from iis_pipe.clicking.format import stack_clicks


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor. In a DataLoader worker its storage is shared memory from
    the start, as ``default_collate`` makes it: sending the batch to the main process then
    copies nothing (otherwise every batch is copied once more into shared memory).

    In the main process its memory comes from numpy: the allocator hands freed batches' pages
    back, where a fresh ``torch.empty`` of a batch's size page-faults on every first write
    (several times slower to fill: README, benchmark notes)."""
    if get_worker_info() is None:
        return torch.from_numpy(np.empty(shape, torch.empty(0, dtype=dtype).numpy().dtype))
    storage = torch.UntypedStorage._new_shared(math.prod(shape) * dtype.itemsize)
    stride = [math.prod(shape[i + 1:]) for i in range(len(shape))]
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape, stride)


def batch_buffers(size: int, crop: tuple[int, int], image_dtype: str = "float32",
                  target_dtype: str = "float32") -> dict[str, torch.Tensor]:
    """Batch tensors that samples are written into directly (``make_sample(out=...)``), for
    the dtypes samples have: ``image (B, H, W, 3) uint8`` when the batch is uint8, ``target
    (B, 1, H, W) int8`` when it is int8 (float batches are converted in ``collate``)."""
    out = {}
    if image_dtype == "uint8":
        out["image"] = _empty((size, *crop, 3), torch.uint8)
    if target_dtype == "int8":
        out["target"] = _empty((size, 1, *crop), torch.int8)
    return out


def slots(buffers: dict[str, torch.Tensor]) -> list[dict[str, np.ndarray]]:
    """Each sample's ``image (H, W, 3)`` and ``target (H, W)`` arrays in ``batch_buffers``
    (made once per batch: ``Tensor.numpy`` costs tens of microseconds in a busy loader)."""
    views = {k: v.numpy() for k, v in buffers.items()}
    size = next(iter(buffers.values())).shape[0] if buffers else 0
    return [{k: v[i].reshape(v.shape[-3:] if k == "image" else v.shape[-2:])
             for k, v in views.items()} for i in range(size)]


def collate(samples: list[dict[str, Any]], image_dtype: str = "float32",
            target_dtype: str = "float32", into: dict[str, torch.Tensor] | None = None
            ) -> dict[str, Any]:
    """``image (B, 3, H, W)`` float32 in [0, 1] (or uint8; channels-last strides),
    ``target (B, 1, H, W)`` float32 (or int8) with -1 on ignore, ``clicks (B, 2N, 3) int32``,
    ``maps (B, 2, H, W)`` when present, ``transform (B, 2, 3)`` (original -> crop pixel
    centres), ``keys`` and ``regions``. ``into``: ``batch_buffers`` whose first B slots
    already hold the samples' images / targets (written there by ``make_sample``)."""
    into = into or {}
    b, (h, w, c) = len(samples), samples[0]["image"].shape
    # channels-last memory behind a (B, 3, H, W) view: no transposing copy, and convolutions
    # take this layout natively
    if "image" in into:
        images = into["image"][:b]
    else:
        images = _empty((b, h, w, c), torch.float32 if image_dtype == "float32" else torch.uint8)
        if image_dtype == "float32":  # numpy: one predictable pass, no intra-op thread start-up
            np.multiply(np.stack([s["image"] for s in samples]), np.float32(1 / 255),
                        out=images.numpy())
        else:
            np.stack([s["image"] for s in samples], out=images.numpy())
    if "target" in into:
        target = into["target"][:b]
    else:
        target = _empty((b, 1, h, w), torch.float32 if target_dtype == "float32" else torch.int8)
        # int8 per sample: stacked (and made float when asked) in one pass over the batch
        np.stack([s["target"] for s in samples], out=target.numpy()[:, 0])
    batch = {
        "image": images.permute(0, 3, 1, 2),
        "target": target,
        "clicks": torch.from_numpy(stack_clicks([s["clicks"] for s in samples])),
        "transform": torch.from_numpy(np.stack([s["transform"] for s in samples])),
        "keys": [s["key"] for s in samples],
        "regions": [s["regions"] for s in samples],
    }
    if "maps" in samples[0]:
        batch["maps"] = torch.from_numpy(np.stack([s["maps"] for s in samples]))
    return batch
