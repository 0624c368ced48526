"""The habits samtools / bedtools / deeptools users bring: --version, documented options with their defaults,
--threads and --quiet with the same names on every long-running command, progress bars only on a terminal."""

from __future__ import annotations

import argparse
import io
import re

import pytest

from hnet_genomics import __version__
from hnet_genomics.cli import build_parser, main
from hnet_genomics.options import show_progress

LONG_RUNNING = (
    "pretrain",
    "eval",
    "finetune",
    "benchmark",
    "boundaries",
    "merge-tracks",
    "data prepare",
    "data fetch-hg38",
)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    found = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    full = f"{prefix} {name}".strip()
                    if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                        walk(sub, full)
                    else:
                        found[full] = sub

    walk(build_parser(), "")
    return found


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert re.fullmatch(
        rf"hnet-genomics {re.escape(__version__)} \(torch .*, lightning .*, pysam .*\)\n", capsys.readouterr().out
    )


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_is_documented_and_shows_its_default(name):
    parser = subcommands()[name]
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or action.dest == "help":
            continue
        assert action.help and len(action.help) > 10, f"{name} {action.option_strings[0]} is undocumented"
        if action.default not in (None, False, [], "") and "default" not in action.help:
            assert f"(default: {action.default})" in text, f"{name} {action.option_strings[0]} hides its default"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_commands_take_threads_and_quiet(name):
    options = {o for a in subcommands()[name]._actions for o in a.option_strings}
    assert {"--threads", "--quiet"} <= options


def test_progress_bars_only_for_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not show_progress(False)  # a log file or a pipe gets no bar
    monkeypatch.setattr("sys.stderr", Tty())
    assert show_progress(False) and not show_progress(True)


def test_usage_errors_are_one_line_naming_the_option(capsys):
    with pytest.raises(SystemExit) as e:
        main(["boundaries", "--model", "m", "--fasta", "f", "--out", "o", "--threads", "many"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert err.startswith("hnet-genomics: error: argument --threads: expected a positive integer, got 'many'")
    assert "see `hnet-genomics boundaries --help`" in err
