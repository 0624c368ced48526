"""`hnet-genomics` command line: wires the areas' commands together; user errors become one line + exit 2."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading

from hnet_genomics.errors import HNetError, Terminated

# OSErrors about a path the user gave (exit 2, like any bad input); others (disk full, I/O error) exit 1.
_PATH_ERRNOS = {
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.EEXIST,
    errno.ENAMETOOLONG,
    errno.ELOOP,
}


class HelpFormatter(argparse.HelpFormatter):
    """Every option's default in its help, unless the help already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and "default" not in text
            and default not in (None, False, [], "")
            and default is not argparse.SUPPRESS
        ):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse's own print the whole usage first)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"hnet-genomics: error: {message} (see `{self.prog} --help`)\n")


def _version() -> str:
    from importlib import metadata

    from hnet_genomics import __version__

    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    libs = ", ".join(f"{n} {installed(n)}" for n in ("torch", "lightning", "pysam", "pybigtools"))
    return f"hnet-genomics {__version__} ({libs})"


class _VersionAction(argparse.Action):
    """Like argparse's ``version`` action, but the library versions are looked up only when asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    # Each area owns its sub-commands; heavy imports happen inside the command functions.
    from hnet_genomics.data import commands as data_commands
    from hnet_genomics.export import commands as export_commands
    from hnet_genomics.export import inference_commands
    from hnet_genomics.model import commands as model_commands
    from hnet_genomics.reporting import commands as reporting_commands
    from hnet_genomics.tasks import commands as task_commands
    from hnet_genomics.training import commands as training_commands

    parser = Parser(prog="hnet-genomics", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version", action=_VersionAction, help="print the version of hnet-genomics and its main libraries, then exit"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in (
        data_commands,
        training_commands,
        task_commands,
        export_commands,
        inference_commands,
        reporting_commands,
        model_commands,
    ):
        area.register(sub)
    return parser


class _CliHandler(logging.StreamHandler):
    """The stderr handler the CLI installs, marked so a second command in the same process adds no other. It
    writes to whatever ``sys.stderr`` is when a line is logged, not to the one of the first command."""

    hnet_cli = True

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _log_to_stderr(quiet: bool) -> None:
    """The package's own log lines (which kernels run, fallbacks) go to stderr unless the command is quiet."""
    logger = logging.getLogger("hnet_genomics")
    if not any(getattr(h, "hnet_cli", False) for h in logger.handlers):
        handler = _CliHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("hnet-genomics: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def _terminate(signum, frame) -> None:
    raise Terminated("SIGTERM")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as typed, for a run's record
    _log_to_stderr(bool(getattr(args, "quiet", False)))
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        rc = args.func(args)
    except HNetError as e:
        print(f"hnet-genomics: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path problem the checks up front could not foresee, or the disk filled up
        where = f"{e.filename}: " if e.filename else ""
        print(f"hnet-genomics: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2 if e.errno in _PATH_ERRNOS else 1
    except KeyboardInterrupt:
        print("hnet-genomics: interrupted", file=sys.stderr)
        return 130
    except Terminated as e:
        detail = "" if str(e) == "SIGTERM" else f": {e}"
        print(f"hnet-genomics: terminated by SIGTERM{detail}", file=sys.stderr)
        return 143
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
