"""Shared by every red-team submission: the honest scorer, the artifact format and the
escape attempts. The test runner copies this file into each case folder (and lists it in
`code`), so a case folder holds only what makes that case different.

Honest scorer: a rank-2 bigram. For an input token x the logits over the vocabulary are
    u0[x] * w0 + u1[x] * w1 + b
computed elementwise in float32 (no matmul), so the numbers do not depend on how rows are
batched and the test can recompute them bit for bit in-process.

Artifact: b"RTBG", uint32 vocab, then 5 * vocab little-endian float32 (u0, u1, w0, w1, b).
Anything after that is ignored (the cap cases pad the file).

Attack settings (host paths, listener ports, marker names) come from `attack.json` beside
the artifact; the runner writes it into the temporary copy of the case.
"""

from __future__ import annotations

import json
import os
import socket
import struct

import numpy as np
import torch

MAGIC = b"RTBG"
N_ROWS = 5
SECRET_PREFIX = "redteam-secret-"


def parse_weights(blob: bytes) -> torch.Tensor:
    if len(blob) < 8 or blob[:4] != MAGIC:
        raise ValueError("not a red-team bigram artifact")
    (vocab,) = struct.unpack("<I", blob[4:8])
    raw = np.frombuffer(blob, dtype="<f4", count=min(N_ROWS * vocab, (len(blob) - 8) // 4), offset=8)
    if raw.size != N_ROWS * vocab:
        raise ValueError("truncated weights")
    return torch.from_numpy(raw.reshape(N_ROWS, vocab).copy())


def weights_size(vocab: int) -> int:
    return 8 + 4 * N_ROWS * vocab


def read_weights(path: str) -> torch.Tensor:
    """The weights at the start of the artifact (anything after them is ignored)."""
    with open(path, "rb") as f:
        head = f.read(8)
        vocab = struct.unpack("<I", head[4:])[0] if len(head) == 8 else 0
        return parse_weights(head + f.read(4 * N_ROWS * vocab))


def weights_bytes(weights: np.ndarray) -> bytes:
    """The artifact for a float32 array of shape (5, vocab)."""
    weights = np.asarray(weights, dtype="<f4")
    return MAGIC + struct.pack("<I", weights.shape[1]) + weights.tobytes()


def bigram_logits(weights: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """float32 logits [..., vocab] for the next token after each input token."""
    u0, u1, w0, w1, b = weights
    return (u0[inputs].unsqueeze(-1) * w0 + u1[inputs].unsqueeze(-1) * w1) + b


def boost_next(scores: torch.Tensor, tokens: torch.Tensor, n_last: int, rows=None) -> torch.Tensor:
    """The future-token peek: raise the logit of the token that actually comes next.

    Position T-n_last+j predicts tokens[:, T-n_last+j+1]; inside the window that token is
    already an input for every scored position but the last.
    """
    out = scores.clone()
    T = tokens.shape[1]
    rows = range(tokens.shape[0]) if rows is None else rows
    for r in rows:
        for j in range(n_last - 1):
            out[r, j, tokens[r, T - n_last + j + 1]] += 30.0
    return out


class Bigram:
    """The honest predictor every attack starts from."""

    def __init__(self, weights: torch.Tensor):
        self.weights = weights
        self.vocab = weights.shape[1]

    def score(self, tokens: torch.Tensor, n_last: int) -> torch.Tensor:
        return bigram_logits(self.weights, tokens[:, -n_last:])


def attack_config(artifact_path: str) -> dict:
    path = os.path.join(os.path.dirname(artifact_path), "attack.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


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
    for attempt in (try_write_markers(cfg, where), try_read_secrets(cfg), try_network(cfg)):
        if attempt:
            escaped(attempt)
