"""`harness` command line: parses arguments and maps outcomes to exit codes.

Each subcommand lives in `harness/commands/<name>.py` and provides
`configure(parser)` and `run(args) -> int`. Those modules import heavy libraries
(torch, libcst) inside `run`, so `harness --help` stays fast.

Exit codes (DESIGN.md): 0 accepted / clean, 1 rejected / error findings,
2 bad input or usage (one line, no traceback); anything else is a bug.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness import __version__
from harness.errors import EXIT_BAD_INPUT, BadInput

COMMANDS = {
    "data": "build the embedded corpus, or download FineWeb shards",
    "train": "train a submission's model and write its artifact",
    "eval": "score a submission under the strict sandboxed protocol",
    "audit": "statically audit code for illegal evaluation patterns",
    "run": "data -> train -> audit -> eval -> report, in one run folder",
    "compare": "compare runs across seeds and submissions",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise BadInput(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"harness.commands.{name}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args._module.run(args))
    except BadInput as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
