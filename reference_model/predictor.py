"""The reference predictor: the dequantized artifact model behind the submission
contract (DESIGN.md), with PR940's legal score-first test-time training.

score() is pure: eval mode, no gradients, no state touched. observe() receives each
chunk of already-scored tokens once, in stream order, and only then adapts the model
(SGD with momentum, a few epochs over the chunk's own targets, the first blocks
frozen, cosine learning rate over chunks), so a chunk's scores always come from the
model adapted on earlier chunks only.
"""

from __future__ import annotations

import math

import torch

from .artifact import load_artifact_with_ttt
from .config import TTTConfig
from .evaluate import autocast


class ReferencePredictor:
    def __init__(self, model, device: str | torch.device, ttt: TTTConfig):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.ttt = ttt
        self.chunks_seen = 0
        self.tail = torch.zeros(0, dtype=torch.long)  # last observed token: input of the next chunk's first target
        frozen = tuple(f"blocks.{i}." for i in range(ttt.freeze_blocks))
        trainable = []
        for name, p in self.model.named_parameters():
            p.requires_grad_(not name.startswith(frozen))
            if p.requires_grad:
                trainable.append(p)
        self.optimizer = torch.optim.SGD(trainable, lr=ttt.lr, momentum=ttt.momentum) if ttt.enabled else None

    @torch.no_grad()
    def score(self, tokens: torch.Tensor, n_last: int) -> torch.Tensor:
        """Logits (float32) for the next token at the last n_last positions of each row."""
        if tokens.ndim != 2 or not 1 <= n_last <= tokens.size(1):
            raise ValueError(f"score: tokens {tuple(tokens.shape)} with n_last {n_last}")
        with autocast(self.device):
            logits = self.model(tokens.to(self.device, torch.long))
        return logits[:, -n_last:].float()

    def lr_multiplier(self, chunk: int) -> float:
        """Linear warmup over the first 5% of chunks, then cosine to 0."""
        total = self.ttt.total_chunks
        warmup = max(total // 20, 1)
        if chunk < warmup:
            return (chunk + 1) / warmup
        progress = min((chunk - warmup) / max(total - warmup - 1, 1), 1.0)
        return 0.5 * (1 + math.cos(math.pi * progress))

    def observe(self, tokens: torch.Tensor) -> None:
        """Adapt on a scored chunk: sequences whose targets are exactly this chunk's targets."""
        tokens = tokens.detach().to("cpu", torch.long).flatten()
        stream = torch.cat((self.tail, tokens))  # the first observed token (stream position 0) is only context
        self.tail = stream[-1:]
        chunk, self.chunks_seen = self.chunks_seen, self.chunks_seen + 1
        L = self.ttt.seq_len
        n_seqs = (len(stream) - 1) // L
        if self.optimizer is None or n_seqs == 0:
            return
        span = stream[: n_seqs * L + 1].to(self.device)
        x, y = span[:-1].view(n_seqs, L), span[1:].view(n_seqs, L)
        for group in self.optimizer.param_groups:
            group["lr"] = self.ttt.lr * self.lr_multiplier(chunk)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.model.train()
        for _ in range(self.ttt.epochs):
            for s in range(0, n_seqs, self.ttt.batch_seqs):
                with autocast(self.device):
                    loss = self.model(x[s:s + self.ttt.batch_seqs], y[s:s + self.ttt.batch_seqs])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, self.ttt.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
        self.model.eval()


def load(artifact_path: str, device: str, ttt: TTTConfig | None = None,
         default_ttt: TTTConfig | None = None) -> ReferencePredictor:
    """Predictor over the dequantized artifact model.

    TTT settings: `ttt` if given; else those the training preset stored in the artifact;
    else `default_ttt`; else PR940's.
    """
    model, stored = load_artifact_with_ttt(artifact_path, device)
    return ReferencePredictor(model, device, ttt or stored or default_ttt or TTTConfig())
