"""Tiny configurations and a throwaway submission folder for the model tests."""

from __future__ import annotations

from pathlib import Path

import torch

from reference_model.config import ModelConfig

TINY_MODEL = dict(vocab_size=1024, num_layers=3, model_dim=32, num_heads=4, num_kv_heads=2, rope_dims=4,
                  bigram_buckets=64, bigram_dim=16, xsa_last_n=3, flow_latent_dim=8, flow_hidden_dim=16)


def tiny_config(**changes) -> ModelConfig:
    return ModelConfig(**{**TINY_MODEL, **changes})


def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.3) -> torch.nn.Module:
    """Random values everywhere: zero-initialised projections would hide most of the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


TINY_PRESET = """
[model]
num_layers = 2
model_dim = 32
num_heads = 4
num_kv_heads = 2
rope_dims = 4
bigram_buckets = 64
bigram_dim = 16
xsa_last_n = 2

[train]
iterations = {iterations}
warmdown_iters = {warmdown}
train_batch_tokens = 512
train_seq_len = 64
grad_accum = {grad_accum}
muon_momentum_warmup_steps = 5
val_every = 0
val_max_tokens = 1024
log_every = 1
checkpoint_every = {checkpoint_every}
keep_checkpoints = 2
compile = {compile}

[quant]
passthrough_max_numel = 256
"""


def make_submission(folder: Path, iterations: int = 6, warmdown: int = 3, grad_accum: int = 1,
                    checkpoint_every: int = 2, compile: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submission.toml").write_text(
        '[submission]\nname = "tiny"\nentrypoint = "predictor.py"\nartifact = "artifact.ptz"\n'
        'code = ["predictor.py"]\nvocab_size = 1024\n\n[train]\ntiny = "tiny.toml"\n'
    )
    (folder / "predictor.py").write_text("from reference_model.predictor import load  # noqa: F401\n")
    (folder / "tiny.toml").write_text(TINY_PRESET.format(iterations=iterations, warmdown=warmdown,
                                                          grad_accum=grad_accum, checkpoint_every=checkpoint_every,
                                                          compile=str(compile).lower()))
    return folder
