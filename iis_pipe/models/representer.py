"""``IISRepresenter``: a plain timm ViT whose patch tokens also carry the guidance (SimpleClick),
with a small upsampling head."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import PatchEmbed

from .backbones import create_backbone
from .fusion import GUIDANCE_CHANNELS, on_output
from .heads import UpsampleHead
from .inputs import Normalize, check_inputs, guidance

REPRESENTER_FUSIONS = ("patch", "none")


class IISRepresenter(nn.Module):
    """``(image, click_maps, prev_mask) -> logits`` (contract in ``iis_pipe.models.inputs``):
    ``(B,3,H,W)`` in [0,1], ``(B,2,H,W)``, ``(B,1,H,W)`` -> ``(B,1,H,W)``, H and W multiples of
    the patch size (16 for the default).

    ``fusion="patch"`` (SimpleClick): the 3 guidance maps get their own patch embedding, added to
    the image patch tokens before the position embedding (a forward hook on the ViT's
    ``patch_embed``, held for the call). ``"none"``: image only, the baseline for fusion cost.

    The ViT is built for ``img_size`` with ``dynamic_img_size=True``: other sizes work, the
    position embedding being interpolated. Head: tokens back to a ``(D, H/16, W/16)`` grid, one
    3x3 conv+BN+ReLU and 2x upsampling per ``head_widths`` entry, 1x1 conv, bilinear to (H, W).
    ``backbone_weights``: local timm checkpoint for the ViT; random init when ``None``.
    """

    def __init__(self, backbone: str = "vit_small_patch16_224", fusion: str = "patch",
                 img_size: Sequence[int] = (320, 480), head_widths: Sequence[int] = (128, 64),
                 drop_path_rate: float = 0.0, backbone_weights: str | Path | None = None):
        super().__init__()
        if fusion not in REPRESENTER_FUSIONS:
            raise ValueError(f"fusion must be one of {REPRESENTER_FUSIONS}, got {fusion!r}")
        self.fusion = fusion
        self.normalize = Normalize()
        self.vit = create_backbone(backbone, backbone_weights, img_size=tuple(img_size),
                                   dynamic_img_size=True, num_classes=0, global_pool="",
                                   drop_path_rate=drop_path_rate)
        patch = self.vit.patch_embed.patch_size
        self.size_divisor = max(patch)
        self.maps_embed = None
        if fusion == "patch":
            # same geometry and NHWC token layout as the image embedding, so the two just add
            self.maps_embed = PatchEmbed(img_size=tuple(img_size), patch_size=patch,
                                         in_chans=GUIDANCE_CHANNELS, embed_dim=self.vit.embed_dim,
                                         output_fmt="NHWC", strict_img_size=False)
        self.head = UpsampleHead(self.vit.embed_dim, head_widths)

    def forward(self, image: torch.Tensor, click_maps: torch.Tensor,
                prev_mask: torch.Tensor) -> torch.Tensor:
        check_inputs(image, click_maps, prev_mask, self.size_divisor)
        fused = nullcontext()
        if self.maps_embed is not None:
            maps_tokens = self.maps_embed(guidance(click_maps, prev_mask))
            # in place: the patch embedding's backward does not need its output
            fused = on_output(self.vit.patch_embed, lambda tokens: tokens.add_(maps_tokens))
        with fused:
            tokens = self.vit.forward_features(self.normalize(image))  # (B, prefix + h*w, D)
        b, _, h, w = image.shape
        ph, pw = self.vit.patch_embed.patch_size
        patches = tokens[:, self.vit.num_prefix_tokens:]  # drop the class token(s)
        grid = patches.transpose(1, 2).reshape(b, -1, h // ph, w // pw)
        return F.interpolate(self.head(grid), size=(h, w), mode="bilinear", align_corners=False)
