"""Escape attempts shared by the red-team cases that try to get out of the sandbox.

Each attempt returns a description of what worked, or None; `escaped` makes a success
loud (stdout, stderr and the exception text the harness reports), so a broken sandbox
shows up as a wrong verdict and as the secret in the harness's output. The network
attempts are in redteam_network.py, so only the cases that use them ship socket code
(the static audit flags it wherever it is shipped).
"""

from __future__ import annotations

import os

SECRET_PREFIX = "redteam-secret-"


def escaped(what: str) -> None:
    """An attack worked: make it loud (stdout, stderr and the error the harness reports)."""
    print(f"ESCAPED: {what}", flush=True)
    os.write(2, f"ESCAPED: {what}\n".encode())
    raise RuntimeError(f"ESCAPED: {what}")


# ---- escape attempts: each returns a description of what worked, or None --------------

def try_write_markers(cfg: dict, where: str) -> str | None:
    for folder in cfg.get("write_dirs", []):
        path = os.path.join(folder, f"REDTEAM-MARKER-{cfg.get('case', 'x')}-{where}")
        try:
            with open(path, "w") as f:
                f.write("written from inside the sandbox\n")
            return f"wrote {path}"
        except OSError:
            continue
    return None


def _environ_sources() -> list[str]:
    pids = ["self", "1", str(os.getppid())]
    try:
        pids += [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        pass
    return [f"/proc/{p}/environ" for p in pids]


def try_read_secrets(cfg: dict) -> str | None:
    for key, value in os.environ.items():
        if SECRET_PREFIX in value:
            return f"secret in os.environ[{key}]: {value}"
    for path in _environ_sources() + list(cfg.get("secret_files", [])):
        try:
            with open(path, "rb") as f:
                data = f.read(1 << 20)
        except OSError:
            continue
        i = data.find(SECRET_PREFIX.encode())
        if i >= 0:
            found = data[i:i + 64].split(b"\0")[0].decode(errors="replace")
            return f"secret in {path}: {found}"
    return None
