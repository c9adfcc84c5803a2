"""The model input contract, shared by every IIS model.

``model(image, click_maps, prev_mask) -> logits`` with

- ``image``      ``(B, 3, H, W)`` float in [0, 1], RGB; the model normalises it with the ImageNet
  mean/std itself, so data code never has to know which statistics a backbone wants;
- ``click_maps`` ``(B, 2, H, W)`` float in [0, 1]: positive then negative channel (disks, or
  tanh distance maps);
- ``prev_mask``  ``(B, 1, H, W)`` float in [0, 1], all zeros before the first click;
- ``logits``     ``(B, 1, H, W)`` float, at the input resolution.

H and W must be multiples of the model's ``size_divisor`` (32 for the segmenters: the deepest
feature level is at stride 32 and HRNet's fuse layers upsample by exact factors; the ViT's patch
size, 16, for the representers).
"""

from __future__ import annotations

import torch
import torch.nn as nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """``(B, 3, H, W)`` image in [0, 1] -> ImageNet-normalised image of the same shape."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        # non-persistent: constants, not learned state, so checkpoints carry weights only
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean) / self.std


def check_inputs(image: torch.Tensor, click_maps: torch.Tensor, prev_mask: torch.Tensor,
                 size_divisor: int) -> None:
    """Raise ``ValueError`` naming the first input that breaks the contract above."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
    b, _, h, w = image.shape
    if tuple(click_maps.shape) != (b, 2, h, w):
        raise ValueError(f"click_maps must be ({b}, 2, {h}, {w}), got {tuple(click_maps.shape)}")
    if tuple(prev_mask.shape) != (b, 1, h, w):
        raise ValueError(f"prev_mask must be ({b}, 1, {h}, {w}), got {tuple(prev_mask.shape)}")
    if h % size_divisor or w % size_divisor:
        raise ValueError(f"H and W must be multiples of {size_divisor}, got {h}x{w} "
                         "(pad the image, clicks and mask, then crop the logits)")


def guidance(click_maps: torch.Tensor, prev_mask: torch.Tensor) -> torch.Tensor:
    """``(B, 2, H, W)`` clicks and ``(B, 1, H, W)`` mask -> ``(B, 3, H, W)`` guidance maps."""
    return torch.cat([click_maps, prev_mask], dim=1)
