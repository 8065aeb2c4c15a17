"""The sandbox's system-call filter closes the channels two workers could share through
the files both read: locks, access notifications, page-cache probing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.sandbox.policy import SandboxPolicy, bwrap_command, bwrap_path, scrubbed_env
from harness.sandbox.seccomp import ARCHES, filter_fd, filter_program

SHARED = Path(os.__file__).resolve()  # a file every sandbox sees read-only

HOLD = f"""
import fcntl, time
f = open({str(SHARED)!r}, "rb")
fcntl.flock(f, fcntl.LOCK_SH)
fcntl.lockf(f, fcntl.LOCK_SH)
print("holding", flush=True)
time.sleep(30)
"""

PROBE = f"""
import ctypes, fcntl, os, struct
f = open({str(SHARED)!r}, "rb")
out = []
try:  # an exclusive lock conflicts with the other sandbox's shared lock, if it is real
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    out.append("flock-free")
except BlockingIOError:
    out.append("flock-held")
query = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)
seen = struct.unpack("hhqqi", fcntl.fcntl(f, fcntl.F_GETLK, query))[0]
out.append("getlk-unchanged" if seen == fcntl.F_WRLCK else "getlk-answered")
libc = ctypes.CDLL(None, use_errno=True)
out.append("inotify-refused" if libc.inotify_init1(0) < 0 else "inotify-open")
try:  # emptying the page cache of a shared file would let reads time the other sandbox
    os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    out.append("fadvise-done")
except OSError:
    out.append("fadvise-refused")
print(" ".join(x for x in out if x), flush=True)
"""


def sandboxed(tmp_path: Path, code: str, seccomp: bool) -> subprocess.Popen:
    sub = tmp_path / "sub"
    sub.mkdir(exist_ok=True)
    scores = tmp_path / "scores.bin"
    scores.touch()
    fd = filter_fd() if seccomp else None
    keep = (fd,) if fd is not None else ()
    policy = SandboxPolicy(harness_dir=Path(__file__).resolve().parents[2] / "harness", packages={},
                           submission_root=sub, scores_file=scores, seccomp_fd=fd)
    prefix, _ = bwrap_command(policy)
    proc = subprocess.Popen(prefix + [sys.executable, "-I", "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=scrubbed_env("cpu"), pass_fds=keep, start_new_session=True)
    for k in keep:
        os.close(k)
    return proc


@pytest.mark.skipif(bwrap_path() is None or filter_program() is None, reason="needs bubblewrap on x86_64 or aarch64")
@pytest.mark.parametrize("seccomp", [True, False])
def test_a_lock_in_one_sandbox_is_invisible_in_another(tmp_path, seccomp):
    holder = sandboxed(tmp_path, HOLD, seccomp)
    try:
        assert holder.stdout.readline().strip() == "holding"
        probe = sandboxed(tmp_path, PROBE, seccomp)
        out, _ = probe.communicate(timeout=60)
    finally:
        holder.kill()
        holder.wait()
    if seccomp:
        assert out.split() == ["flock-free", "getlk-unchanged", "inotify-refused", "fadvise-refused"], out
    else:  # the control: without the filter the lock is a channel between the sandboxes
        assert "flock-held" in out.split(), out


def test_the_program_is_well_formed_for_every_table():
    for machine in ARCHES:
        program = filter_program(machine)
        assert len(program) % 8 == 0 and 0 < len(program) // 8 < 256
        # every jump lands inside the program
        n = len(program) // 8
        for i in range(n):
            code, jt, jf, _k = __import__("struct").unpack_from("<HBBI", program, 8 * i)
            if code & 0x07 == 0x05:  # a jump
                assert i + 1 + jt < n and i + 1 + jf < n
    assert filter_program("riscv64") is None
