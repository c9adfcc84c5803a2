"""Learning-rate schedules as pure functions of the step: constant, RITM's MultiStepLR, cosine.

A schedule multiplies every parameter group's base learning rate by ``factor(schedule, step)``
for the optimizer step ``step`` (0-based: the first step is step 0). Epochs are a stated number
of samples (RITM: 30 000), so an epoch is ``ceil(epoch_samples / global batch)`` steps:

- ``constant``: 1.
- ``multistep``: ``gamma ** (number of milestones <= epoch)`` with ``epoch = step //
  steps_per_epoch``, as torch's ``MultiStepLR`` stepped once per epoch (RITM: milestones 200
  and 220 of 230 epochs, gamma 0.1).
- ``cosine``: after the warm-up, ``min_factor + (1 - min_factor) (1 + cos(pi p)) / 2`` with
  ``p = (step - warmup) / (total - warmup)`` going from 0 at the first step after the warm-up
  to 1 at ``total``.

Any kind may start with a linear warm-up: ``factor * (step + 1) / warmup_steps`` for the first
``warmup_steps`` steps (so step 0 already trains, at ``1 / warmup_steps``).

Nothing but the step is state: a checkpoint's step and the schedule's settings give back the
exact learning rate on resume (``state`` / ``check_state``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

KINDS = ("constant", "multistep", "cosine")


@dataclass(frozen=True)
class Schedule:
    """A schedule's settings (see the module doc). ``total_steps`` is the run's length (cosine's
    end); ``steps_per_epoch`` converts ``milestones`` (epochs) to steps."""

    kind: str = "constant"
    total_steps: int = 1
    steps_per_epoch: int = 1
    milestones: tuple[int, ...] = (200, 220)
    gamma: float = 0.1
    warmup_steps: int = 0
    min_factor: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"schedule must be one of {KINDS}, got {self.kind!r}")
        if self.total_steps < 1 or self.steps_per_epoch < 1:
            raise ValueError(f"total_steps ({self.total_steps}) and steps_per_epoch "
                             f"({self.steps_per_epoch}) must be >= 1")
        if self.warmup_steps < 0 or (self.kind == "cosine"
                                     and self.warmup_steps >= self.total_steps):
            raise ValueError(f"warmup_steps must be >= 0 and, for cosine, below total_steps "
                             f"({self.total_steps}); got {self.warmup_steps}")
        if not 0 <= self.min_factor <= 1 or self.gamma <= 0:
            raise ValueError(f"min_factor must be in [0, 1] and gamma > 0, got "
                             f"{self.min_factor}, {self.gamma}")
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))


def steps_per_epoch(epoch_samples: int, global_batch: int) -> int:
    """Steps of one epoch of ``epoch_samples`` samples at ``global_batch`` samples per step."""
    if epoch_samples < 1 or global_batch < 1:
        raise ValueError(f"epoch_samples ({epoch_samples}) and the batch ({global_batch}) "
                         "must be >= 1")
    return -(-epoch_samples // global_batch)


def factor(s: Schedule, step: int) -> float:
    """Multiplier of the base learning rates at optimizer step ``step`` (0-based)."""
    if s.kind == "constant":
        f = 1.0
    elif s.kind == "multistep":
        epoch = step // s.steps_per_epoch
        f = s.gamma ** sum(1 for m in s.milestones if m <= epoch)
    else:
        p = min(1.0, max(0.0, (step - s.warmup_steps) / (s.total_steps - s.warmup_steps)))
        f = s.min_factor + (1 - s.min_factor) * 0.5 * (1 + math.cos(math.pi * p))
    if step < s.warmup_steps:
        f *= (step + 1) / s.warmup_steps
    return f


def apply(optimizer: torch.optim.Optimizer, base_lrs: list[float], s: Schedule,
          step: int) -> float:
    """Set each group's ``lr`` to its base times ``factor(s, step)``; returns the factor."""
    f = factor(s, step)
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base * f
    return f


def state(s: Schedule, step: int) -> dict[str, Any]:
    """What a checkpoint stores: the settings and the next step's factor."""
    return {**asdict(s), "milestones": list(s.milestones), "next_step": step,
            "next_factor": factor(s, step)}


def check_state(s: Schedule, stored: dict[str, Any] | None, path: str) -> None:
    """Refuse to resume a run under other schedule settings (the learning rate would jump);
    a longer run is allowed except for cosine, whose every rate depends on the length."""
    if stored is None:
        return
    now = {**asdict(s), "milestones": list(s.milestones)}
    if s.kind != "cosine":  # only cosine's rates depend on the run's length: others may extend
        now.pop("total_steps")
    diff = [f"{k}: checkpoint {stored.get(k)!r} vs now {v!r}" for k, v in now.items()
            if stored.get(k) != v]
    if diff:
        raise ValueError(f"{path}: the run was trained with another schedule ({'; '.join(diff)})")
