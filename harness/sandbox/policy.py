"""What the sandboxed worker may see: the bubblewrap command line and its environment.

Visible inside (all read-only unless noted):
- the system libraries (/usr and the /bin, /lib* links) and the Python environment
  (sys.prefix, sys.base_prefix, the site-packages folders) at their own paths;
- /opt/pgolf/harness (the worker code) and /opt/pgolf/<pkg> for each declared package;
- /submission: the submission's listed code files and its artifact, nothing else of
  its folder (what the sandbox shows is what the size accounting counts);
- /run/pgolf/scores.bin, the one writable file: the scores transport;
- a private /tmp and /dev/shm (tmpfs, size-capped), a fresh /proc and a minimal,
  otherwise read-only /dev; the sandbox root itself is read-only;
  the NVIDIA device nodes only for --device cuda.
The worker runs as uid 65534 in its own user namespace, without capabilities, under a
system-call filter (harness.sandbox.seccomp) that closes file locks, file-access
notifications and page-cache probing between workers.
Not visible: the data directory, runs, the repository root, home, the network
(own net namespace with only a downed loopback), other processes (pid namespace).
"""

from __future__ import annotations

import glob
import os
import shutil
import site
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BadInput

CODE_ROOT = Path("/opt/pgolf")
SUBMISSION_MOUNT = "/submission"
SCORES_MOUNT = "/run/pgolf/scores.bin"
TMP_SIZE_BYTES = 512 << 20
SHM_SIZE_BYTES = 64 << 20
# Variables passed through when set; everything else is dropped.
PASS_THROUGH = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
PASS_THROUGH_CUDA = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")


@dataclass
class SandboxPolicy:
    harness_dir: Path
    packages: dict[str, Path]
    submission_root: Path
    scores_file: Path
    device: str = "cpu"
    forbidden: list[Path] = field(default_factory=list)
    code_root: Path = CODE_ROOT
    files: list[Path] = field(default_factory=list)  # what /submission shows (all of the folder when empty)
    seccomp_fd: int | None = None  # a readable fd holding the filter program


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def python_roots() -> list[Path]:
    """The folders the interpreter and its installed packages live in (outermost only)."""
    candidates = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.executable).parent}
    candidates.update(Path(p) for p in site.getsitepackages())
    resolved = sorted({c.resolve() for c in candidates if c.exists()}, key=lambda p: len(p.parts))
    roots: list[Path] = []
    for p in resolved:
        if not any(r == p or r in p.parents for r in roots):
            roots.append(p)
    return roots


def _check_not_exposed(sources: list[Path], forbidden: list[Path]) -> None:
    for src in sources:
        for bad in forbidden:
            bad = bad.resolve()
            if src == bad or src in bad.parents or bad in src.parents:
                raise BadInput(f"sandbox: binding {src} would expose {bad}; install the harness outside it")


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives"):
        if os.path.exists(name):
            args += ["--ro-bind", name, name]
    return args


def _gpu_binds() -> list[str]:
    args: list[str] = []
    for node in sorted(glob.glob("/dev/nvidia*")):
        args += ["--dev-bind", node, node]
    if args and os.path.isdir("/sys"):
        args += ["--ro-bind", "/sys", "/sys"]  # the CUDA driver reads PCI topology there
    return args


def bwrap_command(policy: SandboxPolicy) -> tuple[list[str], dict[str, str]]:
    """(bwrap argv prefix, paths as the worker sees them)."""
    exe = bwrap_path()
    if exe is None:
        raise BadInput("bubblewrap (bwrap) is not installed: install it, or pass --no-sandbox to run unsandboxed")
    roots = python_roots()
    sources = roots + [policy.harness_dir.resolve(), policy.submission_root.resolve()]
    sources += [p.resolve() for p in policy.packages.values()]
    _check_not_exposed(sources, policy.forbidden)
    # A user namespace with an unprivileged uid: even when the harness runs as root the
    # worker holds no capabilities (without it, root's capabilities would survive).
    args = [exe, "--unshare-user", "--uid", "65534", "--gid", "65534", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    args += _system_binds()
    for root in roots:
        args += ["--ro-bind", str(root), str(root)]
    args += ["--ro-bind", str(policy.harness_dir.resolve()), str(policy.code_root / "harness")]
    for name, src in sorted(policy.packages.items()):
        args += ["--ro-bind", str(src.resolve()), str(policy.code_root / name)]
    root = policy.submission_root.resolve()
    if policy.files:
        args += ["--dir", SUBMISSION_MOUNT]
        for f in sorted({p.resolve() for p in policy.files}):
            args += ["--ro-bind", str(f), f"{SUBMISSION_MOUNT}/{f.relative_to(root).as_posix()}"]
    else:
        args += ["--ro-bind", str(root), SUBMISSION_MOUNT]
    args += ["--bind", str(policy.scores_file), SCORES_MOUNT]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_SIZE_BYTES), "--tmpfs", "/dev/shm"]
    if policy.device.startswith("cuda"):
        args += _gpu_binds()
    # Every writable place is size-capped: /tmp and /dev/shm; the sandbox's root and
    # /dev folders (uncapped tmpfs that bwrap makes) become read-only.
    args += ["--remount-ro", "/dev", "--size", str(TMP_SIZE_BYTES), "--tmpfs", "/tmp", "--remount-ro", "/"]
    if policy.seccomp_fd is not None:
        args += ["--seccomp", str(policy.seccomp_fd)]
    args += ["--chdir", "/tmp", "--"]
    return args, {"submission": SUBMISSION_MOUNT, "scores": SCORES_MOUNT}


def scrubbed_env(device: str) -> dict[str, str]:
    """The worker's whole environment: an allow list, nothing inherited by default."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
    names = PASS_THROUGH + (PASS_THROUGH_CUDA if device.startswith("cuda") else ())
    env.update({k: os.environ[k] for k in names if k in os.environ})
    return env
