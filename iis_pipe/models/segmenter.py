"""``IISSegmenter``: a CNN feature pyramid (any timm ``features_only`` backbone) + a light head,
with the guidance fused early (RITM)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backbones import create_backbone
from .fusion import FUSIONS, GUIDANCE_CHANNELS, Conv1S, input_conv, on_output
from .heads import ConcatHead
from .inputs import Normalize, check_inputs, guidance


class IISSegmenter(nn.Module):
    """``(image, click_maps, prev_mask) -> logits``, see ``iis_pipe.models.inputs`` for the
    contract: ``(B,3,H,W)`` in [0,1], ``(B,2,H,W)``, ``(B,1,H,W)`` -> ``(B,1,H,W)``, H and W
    multiples of 32.

    ``fusion``:

    - ``"conv1s"``: RITM's Conv1S. The guidance goes through a small conv branch whose output is
      added to the output of the backbone's stem conv (its first conv, before its BN) by a
      forward hook held for the duration of the call; the backbone itself is unmodified timm
      (same forward, same state-dict keys, so timm weights load as they are);
    - ``"cat"``: the guidance is concatenated to the image and the backbone built with
      ``in_chans=6``;
    - ``"none"``: image only (clicks and mask are ignored): the baseline for the cost of fusion.

    ``backbone_kwargs`` go to ``timm.create_model`` (e.g. HRNet's ``feature_location=""`` for the
    raw branch outputs); ``out_indices`` picks the pyramid levels the head sees (finest first).
    ``backbone_weights``: local timm checkpoint for the backbone; random init when ``None``.
    """

    size_divisor = 32

    def __init__(self, backbone: str = "hrnet_w18_small", fusion: str = "conv1s",
                 out_indices: Sequence[int] | None = None, head_channels: int = 64,
                 conv1s_hidden: int = 16, backbone_kwargs: dict | None = None,
                 backbone_weights: str | Path | None = None):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.fusion = fusion
        self.normalize = Normalize()
        in_chans = 3 + GUIDANCE_CHANNELS if fusion == "cat" else 3
        extra = dict(backbone_kwargs or {})
        if out_indices is not None:
            extra["out_indices"] = tuple(out_indices)
        self.backbone = create_backbone(backbone, backbone_weights, features_only=True,
                                        in_chans=in_chans, **extra)
        self.stem_name, self.maps_branch = "", None
        if fusion == "conv1s":
            self.stem_name = input_conv(self.backbone, 3)
            stem = self.backbone.get_submodule(self.stem_name)
            self.maps_branch = Conv1S(stem, hidden=conv1s_hidden)
        self.head = ConcatHead(self.backbone.feature_info.channels(), head_channels)

    def forward(self, image: torch.Tensor, click_maps: torch.Tensor,
                prev_mask: torch.Tensor) -> torch.Tensor:
        check_inputs(image, click_maps, prev_mask, self.size_divisor)
        x = self.normalize(image)
        fused = nullcontext()
        if self.fusion == "cat":
            x = torch.cat([x, guidance(click_maps, prev_mask)], dim=1)
        elif self.fusion == "conv1s":
            hidden = self.maps_branch(guidance(click_maps, prev_mask))
            fused = on_output(self.backbone.get_submodule(self.stem_name),
                              lambda out: self.maps_branch.add_to(out, hidden))
        with fused:
            feats = self.backbone(x)
        return F.interpolate(self.head(feats), size=image.shape[-2:], mode="bilinear",
                             align_corners=False)
