"""Entry point of the ``iis-pipe`` console script.

Each command module registers its commands on ``main``; keep them thin: parse and check
options, call a function in ``pipelines/``, print its summary.
"""

from __future__ import annotations

import click

from iis_pipe import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="iis-pipe")
def main() -> None:
    """iis-pipe: datasets to shards, streams of clicks, training and NoC evaluation."""


def _register() -> None:
    # Imported for their side effect of adding commands to ``main``.
    from cli import app, bench, data, evaluate, stream, train  # noqa: F401


_register()
