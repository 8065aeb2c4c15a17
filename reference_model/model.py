"""The PR940-stack GPT (PR940_SPEC s.3), in the spirit of nanoGPT's model.py.

    x = rms_norm(tok_emb[ids] + BigramHash(ids)); x = SmearGate(x); x0 = x
    encoder blocks push their outputs; decoder blocks pop them back in (U-Net skips)
    logits = softcap * tanh(rms_norm(x) @ tok_emb.T / softcap)

Every component is switched by `ModelConfig`; see config.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import Attention
from .config import ModelConfig
from .layers import MLP, BigramHash, CastedLinear, FlowRefiner, SmearGate, init_linear, rms_norm


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.attn = Attention(cfg, layer)
        self.mlp = MLP(cfg.model_dim, cfg.mlp_hidden, cfg.mlp_activation, cfg.leaky_slope)
        self.attn_scale = nn.Parameter(torch.ones(cfg.model_dim))
        self.mlp_scale = nn.Parameter(torch.ones(cfg.model_dim))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(cfg.model_dim), torch.zeros(cfg.model_dim))))
        self.norm_scale = 1.0 / math.sqrt(layer + 1) if cfg.ln_scale else 1.0

    def forward(self, x, x0, v0):
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        attn_out, raw_v = self.attn(rms_norm(x) * self.norm_scale, v0)
        x = x + self.attn_scale.to(x.dtype) * attn_out
        x = x + self.mlp_scale.to(x.dtype) * self.mlp(rms_norm(x) * self.norm_scale)
        return x, raw_v


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.model_dim)
        self.bigram = BigramHash(cfg.bigram_buckets, cfg.bigram_dim, cfg.model_dim) if cfg.bigram_buckets else None
        self.smear = SmearGate(cfg.model_dim, cfg.smear_zero_at_bos, cfg.bos_id) if cfg.smear_gate else None
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.num_layers))
        self.num_encoder = cfg.num_layers // 2 if cfg.unet_skips else 0
        num_skips = min(self.num_encoder, cfg.num_layers - self.num_encoder)
        self.skip_weights = nn.Parameter(torch.ones(num_skips, cfg.model_dim)) if num_skips else None
        self.flow = (
            FlowRefiner(cfg.model_dim, cfg.flow_latent_dim, cfg.flow_hidden_dim, cfg.flow_gate_init)
            if cfg.flow_refiner else None
        )
        self.lm_head = None if cfg.tie_embeddings else CastedLinear(cfg.model_dim, cfg.vocab_size, zero_init=True)
        self._init_weights()

    def _init_weights(self) -> None:
        if self.tok_emb.weight.is_meta:  # shape-only model (parameter counting)
            return
        nn.init.normal_(self.tok_emb.weight, std=self.cfg.tied_embed_init_std)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                init_linear(module, name, self.cfg.num_layers)

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """Final normed hidden states (B, T, D) for token ids (B, T)."""
        x = self.tok_emb(ids)
        if self.bigram is not None:
            x = x + self.bigram(ids)
        x = rms_norm(x)
        if self.smear is not None:
            x = self.smear(x, ids)
        x0, v0, skips = x, None, []
        for i, block in enumerate(self.blocks):
            if i >= self.num_encoder and skips:
                x = x + self.skip_weights[i - self.num_encoder].to(x.dtype) * skips.pop()
            x, raw_v = block(x, x0, v0)
            if i == 0:
                v0 = raw_v
            if i < self.num_encoder:
                skips.append(x)
        x = rms_norm(x)
        if self.flow is not None:
            x = self.flow(x)
        return x

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.hidden(ids)
        raw = self.lm_head(x) if self.lm_head is not None else F.linear(x, self.tok_emb.weight.to(x.dtype))
        cap = self.cfg.logit_softcap
        return cap * torch.tanh(raw / cap) if cap > 0 else raw

    def forward(self, ids: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, V), or the mean cross-entropy (fp32) when targets are given."""
        logits = self.logits(ids)
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
