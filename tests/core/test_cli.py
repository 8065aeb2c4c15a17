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


def test_os_error_is_one_line_exit_2(capsys, monkeypatch):
    import errno

    from harness.commands import audit

    def full_disk(args):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/results.json")

    monkeypatch.setattr(audit, "run", full_disk)
    assert main(["audit", "."]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["harness: error: runs/x/results.json: No space left on device"]


def test_sigterm_unwinds_with_blocks(monkeypatch, capsys):
    import os
    import signal

    from harness.commands import audit

    cleaned = []

    class Resource:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            cleaned.append(True)

    def long_job(args):
        with Resource():
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("SIGTERM did not interrupt the command")

    monkeypatch.setattr(audit, "run", long_job)
    assert main(["audit", "."]) == 128 + signal.SIGTERM
    assert cleaned == [True]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
