"""`hnet-genomics` command line: wires the areas' commands together; user errors become one line + exit 2."""

from __future__ import annotations

import argparse
import sys

from hnet_genomics.errors import HNetError


def build_parser() -> argparse.ArgumentParser:
    # Each area owns its sub-commands; heavy imports happen inside the command functions.
    from hnet_genomics.data import commands as data_commands
    from hnet_genomics.tasks import commands as task_commands
    from hnet_genomics.reporting import commands as reporting_commands
    from hnet_genomics.export import commands as export_commands
    from hnet_genomics.export import inference_commands
    from hnet_genomics.training import commands as training_commands

    parser = argparse.ArgumentParser(prog="hnet-genomics", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for area in (data_commands, training_commands, task_commands, export_commands, inference_commands,
                 reporting_commands):
        area.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except HNetError as e:
        print(f"hnet-genomics: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hnet-genomics: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
