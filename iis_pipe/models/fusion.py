"""Early fusion of the guidance maps (clicks + previous mask) into a backbone.

timm backbones own their forward, so the guidance enters by adding an extra tensor to the
output of one of their modules (the stem conv, or the ViT patch embedding) through a forward hook
that lives only for the duration of one call (``on_output``). That keeps every timm model
usable unmodified: no copy of its forward, no wrapper that changes its state-dict keys.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn as nn

FUSIONS = ("conv1s", "cat", "none")
GUIDANCE_CHANNELS = 3  # positive clicks, negative clicks, previous mask


@contextmanager
def on_output(module: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Within the block, ``module(x)`` returns ``fn(module(x))``; the hook is gone afterwards,
    even on error."""
    handle = module.register_forward_hook(lambda _mod, _inp, out: fn(out))
    try:
        yield
    finally:
        handle.remove()


def input_conv(backbone: nn.Module, in_chans: int) -> str:
    """Qualified name of the backbone's stem conv: its first ``Conv2d`` (in registration order,
    which is call order for timm stems) reading ``in_chans`` channels. A name, not the module, so
    that holding it does not register the conv twice in the owner's state dict."""
    for name, mod in backbone.named_modules():
        if isinstance(mod, nn.Conv2d) and mod.in_channels == in_chans:
            return name
    raise ValueError(f"{type(backbone).__name__} has no Conv2d with {in_chans} input channels "
                     "to fuse the clicks into")


class Conv1S(nn.Module):
    """RITM's Conv1S guidance encoder, shaped to add onto a given stem conv's output.

    ``forward``: ``(B, 3, H, W)`` guidance -> ``(B, hidden, H', W')`` through a conv with the stem
    conv's own class, kernel, stride, padding and dilation (so ``H', W'`` are the stem's by
    construction) and LeakyReLU(0.2). ``add_to(stem_out, hidden)``: ``stem_out += scale *
    project(hidden)``, ``project`` a 1x1 conv to the stem's ``C`` channels.

    RITM puts the 1x1 conv first, at full resolution, and strides the 3x3 one; striding first
    does the same two-layer, 3x3-receptive-field job on 1/4 of the pixels. The 1x1 conv is then
    accumulated straight into the stem output (one batched matmul, in place) instead of writing a
    stem-sized tensor and adding it: at stem resolution those passes over memory, not the
    arithmetic, are what costs (on CPU a fraction of an HRNet-18s forward the RITM way, much less
    this way: README, benchmark notes). ``project`` has no bias: a per-channel constant before the stem's BN is a no-op. The
    learnable ``scale``, 0.05 at init as in RITM, keeps the untrained branch from swamping the
    image features at the start of training.
    """

    def __init__(self, stem: nn.Conv2d, in_chans: int = GUIDANCE_CHANNELS, hidden: int = 16,
                 init_scale: float = 0.05):
        super().__init__()
        self.embed = type(stem)(in_chans, hidden, stem.kernel_size, stride=stem.stride,
                                padding=stem.padding, dilation=stem.dilation)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.project = nn.Conv2d(hidden, stem.out_channels, kernel_size=1, bias=False)
        self.scale = nn.Parameter(torch.tensor(float(init_scale)))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.act(self.embed(maps))

    def add_to(self, stem_out: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """``stem_out + scale * project(hidden)``, computed in place in ``stem_out`` (a conv output,
        which the conv's backward does not need)."""
        b, c = stem_out.shape[:2]
        # in-place ops escape autocast: match the stem output's dtype (bf16 under AMP) by hand
        weight = (self.project.weight.view(c, -1) * self.scale).to(stem_out.dtype)
        weight = weight.expand(b, -1, -1)
        acc = stem_out.flatten(2)  # a view when contiguous; a copy (still correct) otherwise
        return acc.baddbmm_(weight, hidden.flatten(2)).view(stem_out.shape)
