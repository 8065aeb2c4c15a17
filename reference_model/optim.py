"""Muon + AdamW as in PR940 (PR940_SPEC s.4): groups, Newton-Schulz, schedules."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from .config import TrainConfig

NS_COEFFS = (3.4445, -4.7750, 2.0315)
CONTROL_PATTERNS = (
    "attn_scale", "attn_scales", "mlp_scale", "mlp_scales", "resid_mix", "resid_mixes", "q_gain",
    "skip_weight", "skip_weights", "smear", "vr_lambda", "attn_gate", "canon_a", "canon_c", "delta_gate",
)


def newton_schulz5(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Approximate orthogonalisation U V^T of g (quintic Newton-Schulz, in bf16).

    g is one matrix or a stack of same-shape matrices (..., rows, cols); each matrix is
    normalised by its own Frobenius norm, so a stack gives what each alone would."""
    a, b, c = NS_COEFFS
    x = g.bfloat16()
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + eps)
    transposed = g.size(-2) > g.size(-1)
    if transposed:
        x = x.mT
    for _ in range(steps):
        A = x @ x.mT
        B = b * A + c * A @ A
        x = a * x + B @ x
    return x.mT if transposed else x


class Muon(torch.optim.Optimizer):
    """Nesterov momentum, orthogonalised by NS5, scaled by sqrt(max(1, rows/cols)),
    decoupled weight decay. With several ranks, parameter i is orthogonalised on rank
    i mod W and the updates are gathered with one bf16 all-reduce (sum)."""

    def __init__(self, params, lr: float, momentum: float, backend_steps: int, weight_decay: float):
        super().__init__(params, dict(lr=lr, momentum=momentum, backend_steps=backend_steps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        distributed = dist.is_available() and dist.is_initialized()
        world, rank = (dist.get_world_size(), dist.get_rank()) if distributed else (1, 0)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            # Every rank keeps every momentum buffer (grads are already averaged, so they
            # agree): a checkpoint from rank 0 then holds the whole optimizer state.
            bufs = [self.state[p].setdefault("momentum_buffer", torch.zeros_like(p.grad)) for p in params]
            torch._foreach_mul_(bufs, group["momentum"])
            torch._foreach_add_(bufs, [p.grad for p in params])
            flat = torch.zeros(sum(p.numel() for p in params), dtype=torch.bfloat16, device=params[0].device)
            views, offset = [], 0
            for p in params:
                views.append(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
            # Same-shape matrices are orthogonalised as one batch: a few large kernels
            # instead of a few per matrix (11 layers x 6 shapes).
            by_shape: dict[torch.Size, list[int]] = {}
            for i, p in enumerate(params):
                if i % world == rank:
                    by_shape.setdefault(p.shape, []).append(i)
            for shape, idx in by_shape.items():
                g = torch.stack([params[i].grad.add(bufs[i], alpha=group["momentum"]) for i in idx])
                u = newton_schulz5(g, group["backend_steps"]) * max(1.0, shape[0] / shape[1]) ** 0.5
                for j, i in enumerate(idx):
                    views[i].copy_(u[j])
            if world > 1:
                dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            torch._foreach_mul_(params, 1 - group["lr"] * group["weight_decay"])
            torch._foreach_add_(params, [v.to(p.dtype) for v, p in zip(views, params)], alpha=-group["lr"])


def update_ema(ema: dict[str, torch.Tensor], model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * weights, in float32, for every state tensor."""
    with torch.no_grad():
        state = model.state_dict()
        names = list(ema)
        values = [ema[k] for k in names]
        torch._foreach_mul_(values, decay)
        torch._foreach_add_(values, [state[k].float() for k in names], alpha=1 - decay)


def is_control(name: str) -> bool:
    return any(pattern in name for pattern in CONTROL_PATTERNS)


def build_optimizers(model: nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """Muon for 2-D block matrices and bigram.proj; AdamW for embeddings and scalars."""
    matrix, embed, head, scalar = [], [], [], []
    for name, p in model.named_parameters():
        if name in ("tok_emb.weight", "bigram.embed.weight"):
            embed.append(p)
        elif name == "lm_head.weight":
            head.append(p)
        elif p.ndim == 2 and not is_control(name) and (name.startswith("blocks.") or name == "bigram.proj.weight"):
            matrix.append(p)
        else:
            scalar.append(p)
    tied = getattr(model, "lm_head", None) is None
    adam_groups = [dict(params=embed, lr=cfg.tied_embed_lr if tied else cfg.embed_lr),
                   dict(params=scalar, lr=cfg.scalar_lr)]
    if head:
        adam_groups.append(dict(params=head, lr=cfg.head_lr))
    for g in adam_groups:
        g["base_lr"] = g["lr"]
    adam = torch.optim.AdamW(adam_groups, betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps, weight_decay=cfg.adam_wd)
    muon = Muon(matrix, lr=cfg.matrix_lr, momentum=cfg.muon_momentum, backend_steps=cfg.muon_backend_steps,
                weight_decay=cfg.muon_wd)
    muon.param_groups[0]["base_lr"] = cfg.matrix_lr
    return [muon, adam]


def lr_multiplier(step: int, cfg: TrainConfig) -> float:
    """1 until `iterations - warmdown_iters`, then linear to 0 at `iterations` (step based)."""
    start = cfg.iterations - cfg.warmdown_iters
    if cfg.warmdown_iters <= 0 or step < start:
        return 1.0
    return max(cfg.iterations - step, 0) / cfg.warmdown_iters


def muon_momentum(step: int, cfg: TrainConfig) -> float:
    if cfg.muon_momentum_warmup_steps <= 0:
        return cfg.muon_momentum
    f = min(step / cfg.muon_momentum_warmup_steps, 1.0)
    return (1 - f) * cfg.muon_momentum_warmup_start + f * cfg.muon_momentum


def apply_schedule(optimizers, step: int, cfg: TrainConfig) -> float:
    mult = lr_multiplier(step, cfg)
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * mult
            if isinstance(opt, Muon):
                group["momentum"] = muon_momentum(step, cfg)
    return mult
