"""Network escape attempts (TCP, HTTP, UDP, the host's abstract unix socket, a public
host), for the red-team cases `network` and `import_time_escape` only.
"""

from __future__ import annotations

import socket

from redteam_escape import escaped, try_read_secrets, try_write_markers


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
