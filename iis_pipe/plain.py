"""Plain-data copies for JSON metadata and ``weights_only`` checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def to_plain(value: Any) -> Any:
    """Dicts, lists and scalars only: tuples become lists, numpy scalars and paths their
    Python values."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
