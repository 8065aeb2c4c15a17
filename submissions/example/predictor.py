"""Example submission: a count-based causal bigram predictor (docs/SUBMISSIONS.md).

score() reads only the token at each position, so output i depends on the row up to
i and nothing later. observe() adds the bigrams of tokens that were already scored
(score first, then update); the pair spanning two observe() calls is counted too.
"""

from __future__ import annotations

import torch

from bigram_format import decode


class BigramPredictor:
    def __init__(self, counts: torch.Tensor, alpha: float, device: str):
        self.counts = counts.to(device=device, dtype=torch.float64)
        self.alpha = alpha
        self.last_token: int | None = None  # last observed token, for the pair across calls
        self._refresh()

    def _refresh(self) -> None:
        self.log_table = torch.log(self.counts + self.alpha).to(torch.float32)

    def score(self, tokens: torch.Tensor, n_last: int) -> torch.Tensor:
        return self.log_table[tokens[:, -n_last:]]

    def observe(self, tokens: torch.Tensor) -> None:
        tokens = tokens.to(self.counts.device)
        if self.last_token is not None:
            tokens = torch.cat([tokens.new_tensor([self.last_token]), tokens])
        if len(tokens) >= 2:
            pairs = torch.ones(len(tokens) - 1, dtype=self.counts.dtype, device=self.counts.device)
            self.counts.index_put_((tokens[:-1], tokens[1:]), pairs, accumulate=True)
            self._refresh()
        self.last_token = int(tokens[-1])


def load(artifact_path: str, device: str) -> BigramPredictor:
    with open(artifact_path, "rb") as f:
        counts, alpha = decode(f.read())
    return BigramPredictor(torch.from_numpy(counts), alpha, device)
