"""iterit.cli.options: --quiet silences progress messages and bars; bars only on a terminal."""

from __future__ import annotations

import click
from click.testing import CliRunner

from iterit.cli import options


@click.command()
@options.progress_option
def command(progress: bool) -> None:
    options.info("loading ...")
    click.echo(f"progress={progress}")


def test_quiet_silences_messages_and_bars():
    res = CliRunner().invoke(command, ["--quiet", "--progress"])
    assert res.exit_code == 0 and res.output == "progress=False\n"


def test_messages_and_bars_by_default_off_a_terminal():
    res = CliRunner().invoke(command, [])
    assert res.exit_code == 0
    assert "loading ..." in res.output and "progress=False" in res.output
    assert "progress=True" in CliRunner().invoke(command, ["--progress"]).output
