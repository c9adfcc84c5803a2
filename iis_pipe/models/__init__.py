"""Thin IIS models on timm backbones, built offline (random init or local files only).

Every model is ``model(image, click_maps, prev_mask) -> logits`` with ``(B,3,H,W)`` images in
[0, 1] (normalised inside), ``(B,2,H,W)`` positive/negative click maps, a ``(B,1,H,W)``
previous mask, and ``(B,1,H,W)`` logits out; see ``inputs`` for the full contract.

    model = create("hrnet18s-conv1s")              # or "timm:resnet50", fusion="cat"
    save(model, "ckpt.pt", epoch=3)
    model = load("ckpt.pt")
"""

from .backbones import BackboneWeightsError
from .inputs import IMAGENET_MEAN, IMAGENET_STD
from .registry import (MODELS, CheckpointError, available, create, load, read_checkpoint,
                       resolve, save)
from .representer import IISRepresenter
from .segmenter import IISSegmenter

__all__ = ["BackboneWeightsError", "IMAGENET_MEAN", "IMAGENET_STD", "MODELS", "CheckpointError",
           "IISRepresenter",
           "IISSegmenter", "available", "create", "load", "read_checkpoint", "resolve", "save"]
