"""CLI contract: usage errors are one line on stderr with exit code 2."""

import subprocess
import sys

from harness.cli import main


def test_unknown_command_is_usage_error(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error:")
    assert len(err.splitlines()) == 1


def test_unknown_flag_is_usage_error(capsys):
    assert main(["audit", "--no-such-flag", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--no-such-flag" in err and len(err.splitlines()) == 1


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "harness", "--version"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("harness ")
