"""docs/cli.md is the commands' own --help: regenerate it when a command changes."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from iis_pipe.cli.main import main
from iis_pipe.cli.reference import reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_docs_cli_md_is_current():
    assert DOC.read_text() == reference(), (
        "docs/cli.md is stale: run `python -m iis_pipe.cli.reference > docs/cli.md`")


def test_reference_holds_every_command_help_as_printed():
    text = DOC.read_text()
    paths = [["train"], ["evaluate"], ["profile", "loader"], ["bench", "decode"]]
    for args in paths:
        printed = CliRunner().invoke(main, [*args, "--help"], prog_name="iis-pipe",
                                     terminal_width=100)
        assert printed.exit_code == 0
        assert f"## iis-pipe {' '.join(args)}\n" in text
        # the first lines (usage and summary) as the command prints them at this width
        head = "\n".join(printed.output.splitlines()[:3])
        assert head in text, args
    for name in main.list_commands(None):
        assert f"## iis-pipe {name}\n" in text
