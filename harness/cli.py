"""`harness` command line: parses arguments and maps outcomes to exit codes.

Each subcommand lives in `harness/commands/<name>.py` and provides
`configure(parser)` and `run(args) -> int`. Those modules import heavy libraries
(torch, the auditor) inside `run`, so `harness --help` stays fast.

Exit codes (DESIGN.md): 0 accepted / clean, 1 rejected / error findings,
2 bad input or usage (one line, no traceback); anything else is a bug.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

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


class Terminated(BaseException):
    """SIGTERM, raised so that every `with` block (workers, transport files) cleans up."""


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        args = build_parser().parse_args(argv)
        return int(args._module.run(args))
    except BadInput as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:
        # The environment refused (disk full, permission): one line; atomic writes left
        # every earlier output intact.
        where = f"{e.filename}: " if e.filename else ""
        print(f"harness: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("harness: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
