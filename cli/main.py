"""Entry point of the ``iis-pipe`` console script: the group and its commands.

The command modules define commands and never import this one; keep them thin: parse and check
options (``iis_pipe.cli.options``), call a function in ``iis_pipe.pipelines`` or
``iis_pipe``, print its summary.
"""

from __future__ import annotations

import click

from iis_pipe.cli import app, bench, data, evaluate, profile, table, train
from iis_pipe import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="iis-pipe")
def main() -> None:
    """iis-pipe: datasets to shards, streams of clicks, training and NoC evaluation."""


for command in (data.prepare, data.inspect, data.verify, data.show, data.demo,
                evaluate.evaluate, evaluate.plot, table.table, train.train, bench.bench,
                profile.profile, app.app):
    main.add_command(command)
