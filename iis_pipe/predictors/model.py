"""A trained checkpoint as a predictor: clicks encoded to maps, the previous output fed back,
sigmoid of the logits, at a working size the model accepts."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn

from iis_pipe.clicking import Click, clicks_to_array, encode_clicks
from iis_pipe.clicking.encode import MODES
from iis_pipe.predictors.options import Option


class ModelPredictor:
    """``ModelPredictor(model)(image, clicks, prev) -> probs``, see ``iis_pipe.predictors``.

    The image is resized so that its long side is at most ``max_size`` and zero-padded at the
    bottom and right to a multiple of ``model.size_divisor``; clicks are encoded there as the
    model was trained (``mode``, ``radius``, ``norm_radius`` of ``encode_clicks``) and the
    probabilities are cropped and resized back to the image.
    """

    OPTIONS: ClassVar[dict[str, Option]] = {
        "max_size": Option(int, 16, 16384), "mode": Option(str, choices=tuple(MODES)),
        "radius": Option(float, 0, low_open=True), "norm_radius": Option(float, 0, low_open=True),
        "device": Option(str)}

    def __init__(self, model: nn.Module, max_size: int = 480, mode: str = "disk",
                 radius: float = 5.0, norm_radius: float = 260.0, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.max_size, self.mode = max_size, mode
        self.radius, self.norm_radius = radius, norm_radius
        self.device = torch.device(device)
        self.divisor = int(getattr(model, "size_divisor", 32))

    @classmethod
    def from_checkpoint(cls, path: str | Path, **options) -> "ModelPredictor":
        from iis_pipe.models import load

        return cls(load(path), **options)

    def __call__(self, image: np.ndarray, clicks: Sequence[Click], prev: np.ndarray) -> np.ndarray:
        big_h, big_w = image.shape[:2]
        s = min(1.0, self.max_size / max(big_h, big_w))
        h, w = max(1, round(big_h * s)), max(1, round(big_w * s))
        ph, pw = -(-h // self.divisor) * self.divisor, -(-w // self.divisor) * self.divisor
        small = image if s == 1 else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        prev_small = prev if s == 1 else cv2.resize(prev, (w, h), interpolation=cv2.INTER_LINEAR)
        scaled = [Click(min(h - 1, int((c.y + 0.5) * s)), min(w - 1, int((c.x + 0.5) * s)),
                        c.positive) for c in clicks]
        maps = encode_clicks(clicks_to_array(scaled, max(1, len(scaled))), (ph, pw), self.mode,
                             self.radius, self.norm_radius)
        img = np.zeros((ph, pw, 3), np.float32)
        img[:h, :w] = small / np.float32(255)
        mask = np.zeros((ph, pw), np.float32)
        mask[:h, :w] = prev_small
        with torch.inference_mode():
            logits = self.model(
                torch.from_numpy(img).permute(2, 0, 1)[None].to(self.device),
                torch.from_numpy(maps)[None].to(self.device),
                torch.from_numpy(mask)[None, None].to(self.device))
        probs = torch.sigmoid(logits)[0, 0, :h, :w].float().cpu().numpy()
        if s == 1:
            return probs
        return cv2.resize(probs, (big_w, big_h), interpolation=cv2.INTER_LINEAR)
