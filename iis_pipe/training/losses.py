"""Losses with ignore pixels (target -1), as RITM trains."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalized_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.5,
                          gamma: float = 2.0, eps: float = 1e-12) -> torch.Tensor:
    """RITM's ``NormalizedFocalLossSigmoid``: per-sample ``(B,)`` loss.

    ``logits``, ``target``: ``(B, 1, H, W)``; target 1 object, 0 background, -1 ignore. The
    focal weights ``(1 - pt) ** gamma`` are rescaled (without gradient) to sum to the number of
    valid pixels, so easy samples do not vanish from the average.
    """
    valid = (target != -1).float()
    pos = target > 0.5
    prob = torch.sigmoid(logits.float())
    w_alpha = torch.where(pos, alpha * valid, (1 - alpha) * valid)
    pt = torch.where(valid > 0, 1 - (target.float() - prob).abs(), torch.ones_like(prob))
    beta = (1 - pt) ** gamma
    dims = tuple(range(1, logits.ndim))
    mult = valid.sum(dims, keepdim=True) / (beta.sum(dims, keepdim=True) + eps)
    beta = beta * mult.detach()
    loss = -w_alpha * beta * torch.log(torch.clamp(pt + eps, max=1.0))
    return loss.sum(dims) / (valid.sum(dims) + eps)


def masked_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over non-ignore pixels, per sample ``(B,)``."""
    valid = (target != -1).float()
    loss = F.binary_cross_entropy_with_logits(logits.float(), target.clamp(min=0).float(),
                                              reduction="none") * valid
    dims = tuple(range(1, logits.ndim))
    return loss.sum(dims) / valid.sum(dims).clamp(min=1)
