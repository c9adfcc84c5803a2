"""timm backbones, built offline: random init, or weights from a local file only."""

from __future__ import annotations

import re
from pathlib import Path

import timm
import torch.nn as nn

_REMOTE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://|hf[-_]hub:)")


def local_file(path: str | Path, what: str) -> Path:
    """``path`` as an existing local file; URLs and hub ids are refused (``ValueError``), a
    missing file is a ``FileNotFoundError``, both naming ``what`` it was meant to be."""
    text = str(path)
    if _REMOTE.match(text):
        raise ValueError(f"{what} must be a local file path, got {text!r}: "
                         "hub ids and URLs are refused (models are built offline)")
    file = Path(text).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{what} not found: {file}")
    return file


def create_backbone(name: str, weights: str | Path | None = None, **kwargs) -> nn.Module:
    """``timm.create_model(name, **kwargs)``, never touching the network.

    ``weights``: a local timm checkpoint of the full classifier (e.g. ImageNet weights copied by
    hand). It goes through timm's own pretrained loader, which drops the classifier for
    ``features_only``/``num_classes=0`` and adapts the stem to ``in_chans != 3``.
    """
    if weights is None:
        return timm.create_model(name, pretrained=False, **kwargs)
    file = local_file(weights, "backbone weights")
    # source="file" overrides the model's default hf-hub source, so timm reads only this file
    overlay = {"source": "file", "file": str(file)}
    return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
