"""Iterative training's extra clicks: from the model's errors, over a whole batch on CPU."""

from __future__ import annotations

import numpy as np
import torch

from iis_pipe.clicking.robots import iterative


def add_error_clicks(probs: torch.Tensor, target: torch.Tensor, clicks: torch.Tensor,
                     rng: np.random.Generator, threshold: float = 0.49) -> torch.Tensor:
    """One more click per sample with RITM's iterative-training rule.

    ``probs``: ``(B, 1, H, W)`` predictions; ``target``: ``(B, 1, H, W)`` (1, 0, -1 ignore);
    ``clicks``: ``(B, 2N, 3) int32`` (y, x, order; positives first). Returns a new clicks
    tensor: the click goes into its side's first free slot (or replaces that side's last
    click when the side is full) with order = the sample's latest order + 1. A sample whose
    prediction is already right gets no click.
    """
    pred = (probs[:, 0] > threshold).cpu().numpy()
    tgt = target[:, 0].cpu().numpy()
    out = clicks.cpu().numpy().copy()
    n = out.shape[1] // 2
    for b in range(out.shape[0]):
        gt, ign = tgt[b] == 1, tgt[b] == -1
        past = out[b][out[b, :, 0] >= 0]
        c = iterative(gt, pred[b], ign, past, rng)
        if c is None:
            continue
        side = out[b, :n] if c.positive else out[b, n:]
        free = np.flatnonzero(side[:, 0] < 0)
        slot = free[0] if free.size else n - 1
        side[slot] = (c.y, c.x, int(past[:, 2].max()) + 1 if len(past) else 0)
    return torch.from_numpy(out).to(clicks.device)
