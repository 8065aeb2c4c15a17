"""`harness` exactly as the console script runs it, with a smaller worker memory limit.

Usage: python eval_driver.py MEMORY_BYTES harness-arguments...

The CLI has no memory flag and the evaluator's default address-space limit (16 GiB) is
larger than what a shared 2-core CI machine can give a memory bomb without hurting
everything else on it; every red-team case therefore runs with this lower limit. All
else (argument parsing, exit codes, output) is the real `harness.cli.main`.
"""

import functools
import sys


def main(argv: list[str]) -> int:
    import harness.evaluator as evaluator

    evaluator.EvalOptions = functools.partial(evaluator.EvalOptions, memory_bytes=int(argv[0]))
    from harness.cli import main as harness_main

    return harness_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
