"""The worker's system-call filter (a classic BPF program for bubblewrap's --seccomp).

Two sandboxed workers run side by side (the scorer and the independent verifier) and
read the same files (/usr, the Python prefix, the submission). Shared files are a
channel between them unless the calls that observe another process's use of a file
are closed:
- file locks (fcntl F_GETLK/F_SETLK/F_SETLKW and the OFD variants, flock): they
  succeed and do nothing, so code that locks a cache file still runs, but no lock is
  ever held for the other worker to see;
- leases and directory notifications (F_SETLEASE, F_GETLEASE, F_NOTIFY), inotify,
  fanotify: refused (EPERM);
- page-cache probing and eviction (mincore, cachestat, fadvise64): refused, so one
  worker cannot empty a page that the other's reads would bring back.
System calls of a foreign ABI (32-bit calls from a 64-bit process, x32) are refused
(ENOSYS), so the filter cannot be stepped around. Everything else is allowed.
"""

from __future__ import annotations

import os
import platform
import struct

# BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h)
_LD_W_ABS, _JEQ, _JGE, _RET = 0x20, 0x15, 0x35, 0x06
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38
_NR, _ARCH, _ARG1 = 0, 4, 24  # offsets in struct seccomp_data (args[1], low half on little-endian)

LOCK_COMMANDS = (5, 6, 7, 36, 37, 38)  # F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW
REFUSED_COMMANDS = (1024, 1025, 1026)  # F_SETLEASE, F_GETLEASE, F_NOTIFY

# audit arch -> (fcntl, flock, refused system calls)
ARCHES = {
    "x86_64": (0xC000003E, 72, 73, (253, 294, 300, 27, 451, 221)),  # inotify_init(1), fanotify_init, mincore, cachestat, fadvise64
    "aarch64": (0xC00000B7, 25, 32, (26, 262, 232, 451, 223)),  # inotify_init1, fanotify_init, mincore, cachestat, fadvise64
}
X32_BIT = 0x40000000


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def filter_program(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where it has no table."""
    arch = ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, fcntl, flock, refused = arch
    ops: list[tuple] = []  # (code, k, jump-true label, jump-false label); labels are resolved below
    ops.append((_LD_W_ABS, _ARCH, None, None))
    ops.append((_JEQ, audit_arch, None, "nosys"))
    ops.append((_LD_W_ABS, _NR, None, None))
    ops.append((_JGE, X32_BIT, "nosys", None))
    ops.append((_JEQ, flock, "noop", None))
    for nr in refused:
        ops.append((_JEQ, nr, "eperm", None))
    ops.append((_JEQ, fcntl, None, "allow"))
    ops.append((_LD_W_ABS, _ARG1, None, None))
    for cmd in LOCK_COMMANDS:
        ops.append((_JEQ, cmd, "noop", None))
    for cmd in REFUSED_COMMANDS:
        ops.append((_JEQ, cmd, "eperm", None))
    labels = {"allow": _ALLOW, "noop": _ERRNO | 0, "eperm": _ERRNO | EPERM, "nosys": _ERRNO | ENOSYS}
    returns = list(labels)
    at = {name: len(ops) + i for i, name in enumerate(returns)}
    out = []
    for i, (code, k, jt, jf) in enumerate(ops):
        rel = lambda label: 0 if label is None else at[label] - i - 1  # noqa: E731
        out.append(_op(code, k, rel(jt), rel(jf)))
    out += [_op(_RET, labels[name]) for name in returns]
    return b"".join(out)


def filter_fd() -> int | None:
    """A readable pipe holding this machine's filter (bwrap's --seccomp reads it), or None
    where the architecture has no table. The caller passes it on and closes it."""
    program = filter_program()
    if program is None:
        return None
    r, w = os.pipe()
    os.write(w, program)  # a few hundred bytes: fits the pipe buffer
    os.close(w)
    return r
