"""Small building blocks of the PR940 stack (PR940_SPEC s.3.4-3.7)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    """Parameter-free RMSNorm over the last dim (torch's default eps)."""
    return F.rms_norm(x, (x.size(-1),))


class CastedLinear(nn.Linear):
    """Linear whose fp32 weight is cast to the activation dtype at matmul time."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False, zero_init: bool = False):
        super().__init__(in_features, out_features, bias=bias)
        self.zero_init = zero_init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.weight.to(x.dtype), bias)


class Rotary(nn.Module):
    """Partial RoPE: rotates the first `dims` dims of each head, pairs (j, j + dims/2).

    Above `train_seq_len` the base is NTK-rescaled: base * (T / train_seq_len)^(dims/(dims-2)).
    PR940 builds this with train_seq_len=1024, so at T=2048 the base is always 22,081.79.
    """

    def __init__(self, dims: int, base: float, train_seq_len: int, ntk: bool):
        super().__init__()
        self.dims, self.base, self.train_seq_len, self.ntk = dims, base, train_seq_len, ntk
        self._cache: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def effective_base(self, seq_len: int) -> float:
        if self.ntk and seq_len > self.train_seq_len:
            return self.base * (seq_len / self.train_seq_len) ** (self.dims / (self.dims - 2))
        return self.base

    def cos_sin(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (seq_len, device)
        if key not in self._cache:
            base = self.effective_base(seq_len)
            inv_freq = base ** (-torch.arange(0, self.dims, 2, dtype=torch.float32, device=device) / self.dims)
            angles = torch.outer(torch.arange(seq_len, dtype=torch.float32, device=device), inv_freq)
            self._cache[key] = (angles.cos()[None, :, None, :], angles.sin()[None, :, None, :])
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, heads, head_dim)."""
        cos, sin = self.cos_sin(x.size(1), x.device)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        half = self.dims // 2
        x1, x2, rest = x[..., :half], x[..., half:self.dims], x[..., self.dims:]
        return torch.cat((x1 * cos + x2 * sin, -x1 * sin + x2 * cos, rest), dim=-1)


def bigram_hash(ids: torch.Tensor, buckets: int) -> torch.Tensor:
    """Bucket of (previous, current) token: (36313*cur XOR 27191*prev) mod (buckets-1).

    Position 0 of every row has no previous token and uses the reserved last bucket.
    """
    ids = ids.to(torch.int64)  # products stay below 2^31 for vocab <= 59k, as in int32
    h = torch.bitwise_xor(36313 * ids[..., 1:], 27191 * ids[..., :-1]) % (buckets - 1)
    first = torch.full_like(ids[..., :1], buckets - 1)
    return torch.cat((first, h), dim=-1)


class BigramHash(nn.Module):
    """Hashed bigram embedding: scale * P E[hash(prev, cur)], E zero-initialised."""

    def __init__(self, buckets: int, dim: int, model_dim: int):
        super().__init__()
        self.buckets = buckets
        self.embed = nn.Embedding(buckets, dim)
        nn.init.zeros_(self.embed.weight)
        self.proj = CastedLinear(dim, model_dim)
        self.scale = nn.Parameter(torch.tensor(0.05))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.scale * self.proj(self.embed(bigram_hash(ids, self.buckets)))


class SmearGate(nn.Module):
    """x_t <- (1-g) x_t + g x_{t-1}, g = sigmoid(gate) per channel, x_{-1} = 0.

    With `zero_at_bos`, a BOS position takes nothing from the previous document.
    """

    def __init__(self, dim: int, zero_at_bos: bool, bos_id: int):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(dim))
        self.zero_at_bos, self.bos_id = zero_at_bos, bos_id

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate).to(x.dtype)
        prev = F.pad(x[:, :-1], (0, 0, 1, 0))
        if self.zero_at_bos:
            prev = prev * (ids != self.bos_id).unsqueeze(-1).to(x.dtype)
        return (1 - g) * x + g * prev


class MLP(nn.Module):
    """proj(act(fc(x))) with act = leaky_relu(x, slope)^2 or relu(x)^2."""

    def __init__(self, dim: int, hidden: int, activation: str, slope: float):
        super().__init__()
        self.fc = CastedLinear(dim, hidden)
        self.proj = CastedLinear(hidden, dim, zero_init=True)
        self.activation, self.slope = activation, slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        h = F.leaky_relu(h, self.slope) if self.activation == "leaky_relu2" else F.relu(h)
        return self.proj(h.square())


class FlowRefiner(nn.Module):
    """Hidden-state correction after the final norm: x + sigmoid(gamma) U(z + V(z)), z = D x."""

    def __init__(self, dim: int, latent: int, hidden: int, gate_init: float):
        super().__init__()
        self.down_proj = CastedLinear(dim, latent)
        self.velocity_net = nn.Sequential(
            CastedLinear(latent, hidden, bias=True), nn.GELU(), CastedLinear(hidden, latent, bias=True, zero_init=True)
        )
        self.up_proj = CastedLinear(latent, dim)
        self.gate = nn.Parameter(torch.tensor(gate_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.down_proj(x)
        return x + torch.sigmoid(self.gate).to(x.dtype) * self.up_proj(z + self.velocity_net(z))


def init_linear(module: nn.Linear, name: str, num_layers: int) -> None:
    """PR940 init: zero where flagged, else orthogonal for matrices with both dims >= 64,
    scaled by 1/sqrt(2 * num_layers) for output projections (names with '.proj')."""
    if getattr(module, "zero_init", False):
        nn.init.zeros_(module.weight)
    elif module.weight.ndim == 2 and min(module.weight.shape) >= 64:
        nn.init.orthogonal_(module.weight)
        if ".proj." in name or name.endswith(".proj"):
            with torch.no_grad():
                module.weight.mul_(1.0 / math.sqrt(2 * num_layers))
