"""Escape attempts shared by the red-team cases that try to get out of the sandbox.

Each attempt returns a description of what worked, or None; `escaped` makes a success
loud (stdout, stderr and the exception text the harness reports), so a broken sandbox
shows up as a wrong verdict and as the secret in the harness's output.
"""

from __future__ import annotations

import os
import socket

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


def try_network(cfg: dict) -> str | None:
    port = cfg.get("tcp_port")
    if port:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /weights HTTP/1.0\r\n\r\n")
            return f"connected to 127.0.0.1:{port}"
        except OSError:
            pass
    if cfg.get("udp_port"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"redteam", ("127.0.0.1", cfg["udp_port"]))
        except OSError:
            pass  # UDP gives no answer either way: the listener tells whether it arrived
    if cfg.get("abstract_socket"):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect("\0" + cfg["abstract_socket"])
            return "connected to the host's abstract unix socket"
        except OSError:
            pass
    for host, remote_port in cfg.get("remote", []):
        try:
            with socket.create_connection((host, remote_port), timeout=3):
                return f"connected to {host}:{remote_port}"
        except OSError:
            continue
    if port:
        try:
            import urllib.request

            urllib.request.urlopen(f"http://127.0.0.1:{port}/artifact.bin", timeout=2).read(16)
            return "downloaded over http"
        except Exception:
            pass
    return None


def try_everything(cfg: dict, where: str) -> None:
    found = [a for a in (try_write_markers(cfg, where), try_read_secrets(cfg), try_network(cfg)) if a]
    if found:
        escaped("; ".join(found))
