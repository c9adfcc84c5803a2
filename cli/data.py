"""Dataset commands: prepare, inspect, verify, show, demo."""

from __future__ import annotations

import click

from cli.main import main
