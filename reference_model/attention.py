"""Causal self-attention of the PR940 stack (PR940_SPEC s.3.4).

GQA with parameter-free QK norm, per-head q gain, partial RoPE, value residual
(mixing in layer 0's raw values), exclusive self-attention (XSA) and a sigmoid
output gate per head. Each extra is switched by the ModelConfig.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .layers import CastedLinear, Rotary, rms_norm


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.n_head, self.n_kv, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        dim, kv_dim = cfg.model_dim, cfg.num_kv_heads * cfg.head_dim
        self.c_q = CastedLinear(dim, dim)
        self.c_k = CastedLinear(dim, kv_dim)
        self.c_v = CastedLinear(dim, kv_dim)
        self.proj = CastedLinear(dim, dim, zero_init=True)
        self.qk_norm = cfg.qk_norm
        self.q_gain = nn.Parameter(torch.full((cfg.num_heads,), cfg.qk_gain_init)) if cfg.q_gain else None
        self.rotary = Rotary(cfg.rope_dims, cfg.rope_base, cfg.rope_train_seq_len, cfg.rope_ntk)
        # Layer 0 owns a vr_lambda too (it gets no gradient): keeps every block's shape alike.
        self.vr_lambda = nn.Parameter(torch.tensor([0.5, 0.5])) if cfg.value_residual else None
        self.xsa = layer >= cfg.num_layers - cfg.xsa_last_n
        if cfg.gated_attention:
            self.attn_gate = nn.Linear(dim, cfg.num_heads, bias=True)
            self.attn_gate.zero_init = True  # sigmoid(0 + 4) = 0.982: the gate starts nearly open
            nn.init.zeros_(self.attn_gate.weight)
            nn.init.constant_(self.attn_gate.bias, cfg.attn_gate_bias_init)
        else:
            self.attn_gate = None

    def forward(self, h: torch.Tensor, v0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """h: normed block input (B, T, D). Returns (output, this layer's raw values)."""
        B, T, _ = h.shape
        q = self.c_q(h).view(B, T, self.n_head, self.head_dim)
        k = self.c_k(h).view(B, T, self.n_kv, self.head_dim)
        v = self.c_v(h).view(B, T, self.n_kv, self.head_dim)
        raw_v = v
        if self.vr_lambda is not None and v0 is not None:
            lam = self.vr_lambda.to(v.dtype)
            v = lam[0] * v0 + lam[1] * v
        if self.qk_norm:
            q, k = rms_norm(q), rms_norm(k)
        q, k = self.rotary(q), self.rotary(k)
        if self.q_gain is not None:
            q = q * self.q_gain.to(q.dtype)[:, None]
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, enable_gqa=True
        ).transpose(1, 2)  # (B, T, H, hd)
        if self.xsa:
            y = self._exclude_self_value(y, v)
        if self.attn_gate is not None:
            y = y * torch.sigmoid(self.attn_gate(h).to(y.dtype)).unsqueeze(-1)
        return self.proj(y.reshape(B, T, -1)), raw_v

    def _exclude_self_value(self, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """XSA: remove from each head's output its component along the token's own value."""
        B, T, H, D = y.shape
        y = y.view(B, T, self.n_kv, H // self.n_kv, D)
        v_hat = F.normalize(v, dim=-1).unsqueeze(-2)
        y = y - (y * v_hat).sum(-1, keepdim=True) * v_hat
        return y.view(B, T, H, D)
