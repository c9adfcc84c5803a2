"""Light segmentation heads: features in, one channel of logits out (upsampling to the input
size is the model's job, so heads never need to know it)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn_relu(cin: int, cout: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ConcatHead(nn.Module):
    """HRNet-style head: every level upsampled to the finest one, concatenated, 1x1 conv+BN+ReLU,
    1x1 conv to one channel.

    ``feats``: list of ``(B, C_i, H_i, W_i)``, finest first -> ``(B, 1, H_0, W_0)`` logits.
    """

    def __init__(self, in_channels: Sequence[int], channels: int = 64):
        super().__init__()
        self.fuse = conv_bn_relu(sum(in_channels), channels, 1)
        self.classify = nn.Conv2d(channels, 1, 1)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        up = [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats[1:]]
        x = torch.cat([feats[0], *up], dim=1)
        return self.classify(self.fuse(x))


class UpsampleHead(nn.Module):
    """Token-grid head: per width, 3x3 conv+BN+ReLU then 2x bilinear upsampling; 1x1 conv to one
    channel. Convs run before each upsampling, at the lower resolution, to stay cheap.

    ``(B, C, h, w)`` -> ``(B, 1, h * 2**len(widths), w * 2**len(widths))`` logits.
    """

    def __init__(self, in_channels: int, widths: Sequence[int] = (128, 64)):
        super().__init__()
        chans = [in_channels, *widths]
        self.stages = nn.ModuleList(conv_bn_relu(a, b, 3) for a, b in zip(chans[:-1], chans[1:]))
        self.classify = nn.Conv2d(chans[-1], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = F.interpolate(stage(x), scale_factor=2, mode="bilinear", align_corners=False)
        return self.classify(x)
