"""The CLI reference, written from the commands' own ``--help``, so it cannot drift from them.

    python -m iis_pipe.cli.reference > docs/cli.md

``tests/test_cli_reference.py`` fails when ``docs/cli.md`` differs from this output.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

WIDTH = 100  # fixed, so the text does not depend on the terminal that writes it


def _walk(command: click.Command, ctx: click.Context) -> Iterator[tuple[str, str]]:
    """``(full command name, help text)`` of ``command`` and of every subcommand, depth first in
    name order."""
    yield ctx.command_path, command.get_help(ctx)
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            yield from _walk(sub, _context(sub, name, ctx))


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    """The context ``iis-pipe ... NAME --help`` runs in (the command's own settings, such as
    ``-h``), at the fixed width."""
    return command.context_class(command, info_name=name, parent=parent, terminal_width=WIDTH,
                                 max_content_width=WIDTH, **command.context_settings)


def reference(root: click.Command | None = None) -> str:
    """The Markdown page: a contents list, then each command's help in a text block."""
    from iis_pipe.cli.main import main

    root = root or main
    pages = list(_walk(root, _context(root, "iis-pipe", None)))
    lines = ["# iis-pipe command reference", "",
             "Generated from each command's `--help` by `python -m iis_pipe.cli.reference > "
             "docs/cli.md` (the test suite fails when this file is stale). `iis-pipe COMMAND "
             "--help` prints the same text.", ""]
    lines += [f"- [`{path}`](#{_anchor(path)})" for path, _ in pages]
    for path, text in pages:
        lines += ["", f"## {path}", "", "```text", text.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, spaces to dashes, other punctuation dropped."""
    return "".join(c for c in heading.lower().replace(" ", "-") if c.isalnum() or c in "-_")


if __name__ == "__main__":
    click.echo(reference(), nl=False)
