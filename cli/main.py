"""Entry point of the ``iis-pipe`` console script: the group and its commands.

The command modules define commands and never import this one; keep them thin: parse and check
options (``iis_pipe.cli.options``), call a function in ``iis_pipe.pipelines`` or
``iis_pipe``, print its summary.
"""

from __future__ import annotations

import errno

import click

from iis_pipe.cli import app, bench, data, evaluate, profile, table, train
from iis_pipe import __version__
from iis_pipe.errors import IISError


def os_message(e: OSError) -> str:
    """``path: reason`` of an operating-system error (both paths of a rename)."""
    paths = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
    reason = e.strerror or str(e)
    return f"{paths}: {reason}" if paths else reason


class Commands(click.Group):
    """The command group; what a command lets through becomes one line and exit status 1: the
    project's errors (``iis_pipe.errors.IISError``: they name the file and the reason) and
    operating-system errors (read-only or full disk, a path under a file...) as ``path:
    reason``. Commands keep their own, more specific messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except IISError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            if e.errno == errno.EPIPE:  # click's own handling: a closed pipe is no error
                raise
            raise click.ClickException(os_message(e)) from None


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="iis-pipe")
def main() -> None:
    """iis-pipe: datasets to shards, streams of clicks, training and NoC evaluation."""


for command in (data.prepare, data.inspect, data.verify, data.show, data.demo,
                evaluate.evaluate, evaluate.plot, table.table, train.train, bench.bench,
                profile.profile, app.app):
    main.add_command(command)
