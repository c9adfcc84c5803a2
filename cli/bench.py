"""``iis-pipe bench ...``: throughput measurements that are part of the toolkit."""

from __future__ import annotations

import click

from cli.main import main


@main.group()
def bench() -> None:
    """Measure throughput (one core unless told otherwise)."""
