"""Configuration dataclasses for the PR940-stack model and its trainer.

Every architectural component of PR940_SPEC s.3 is a field of `ModelConfig`, so a
preset can switch it off. Defaults are the published PR #1232 values; `full_config()`
is exactly that model; the baseline is a preset with the extras switched off.
Presets live as TOML files in a submission folder ([model] / [train] / [quant]
tables); `load_preset` reads one and fills the dataclasses.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from harness.errors import BadInput


@dataclass
class ModelConfig:
    vocab_size: int = 1024
    num_layers: int = 11
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: float = 3.0
    mlp_activation: str = "leaky_relu2"  # or "relu2"
    leaky_slope: float = 0.5
    tie_embeddings: bool = True
    tied_embed_init_std: float = 0.005
    logit_softcap: float = 30.0
    # BigramHash: 0 buckets switches it off.
    bigram_buckets: int = 4096
    bigram_dim: int = 128
    smear_gate: bool = True
    smear_zero_at_bos: bool = False  # optional: do not smear across a BOS token
    bos_id: int = 1
    ln_scale: bool = True  # block input norms scaled by 1/sqrt(layer+1)
    unet_skips: bool = True
    qk_norm: bool = True
    q_gain: bool = True
    qk_gain_init: float = 1.5
    rope_base: float = 10000.0
    rope_dims: int = 16  # rotated dims per head; head_dim for full RoPE
    rope_train_seq_len: int = 1024  # NTK rescale above this length (hard-coded 1024 in PR940)
    rope_ntk: bool = True
    gated_attention: bool = True
    attn_gate_bias_init: float = 4.0
    xsa_last_n: int = 11  # exclusive self-attention on the last N layers
    value_residual: bool = True
    flow_refiner: bool = False
    flow_latent_dim: int = 64
    flow_hidden_dim: int = 256
    flow_gate_init: float = -5.0

    @property
    def head_dim(self) -> int:
        return self.model_dim // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.mlp_mult * self.model_dim)

    def validate(self) -> None:
        if self.model_dim % self.num_heads:
            raise BadInput(f"model config: model_dim {self.model_dim} not divisible by num_heads {self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise BadInput(f"model config: num_heads {self.num_heads} not a multiple of num_kv_heads {self.num_kv_heads}")
        if self.head_dim % 2 or self.rope_dims % 2 or not 0 < self.rope_dims <= self.head_dim:
            raise BadInput(f"model config: rope_dims {self.rope_dims} must be even and <= head_dim {self.head_dim}")
        if self.mlp_activation not in ("leaky_relu2", "relu2"):
            raise BadInput(f"model config: unknown mlp_activation {self.mlp_activation!r}")


@dataclass
class TrainConfig:
    seed: int = 1337
    iterations: int = 20000
    warmdown_iters: int = 12000
    train_batch_tokens: int = 786_432
    train_seq_len: int = 2048
    grad_accum: int = 8  # micro-steps per step, summed over all ranks (spec: 8 // world_size each)
    matrix_lr: float = 0.025
    scalar_lr: float = 0.025
    tied_embed_lr: float = 0.035
    embed_lr: float = 0.6  # untied input embedding only
    head_lr: float = 0.008  # untied output head only
    muon_momentum: float = 0.99
    muon_momentum_warmup_start: float = 0.92
    muon_momentum_warmup_steps: int = 1500
    muon_backend_steps: int = 5
    muon_wd: float = 0.04
    adam_wd: float = 0.04
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    grad_clip_norm: float = 0.3  # 0 disables
    ema_enabled: bool = True
    ema_decay: float = 0.997
    val_every: int = 1000  # 0: only at the end
    val_max_tokens: int = 0  # cap on val tokens for periodic evals (0 = all)
    val_batch_seqs: int = 32
    log_every: int = 10
    checkpoint_every: int = 1000  # 0: no checkpoints
    keep_checkpoints: int = 2
    compile: bool = False  # torch.compile the training forward (the full preset; CPU needs a C++ compiler)


@dataclass
class QuantConfig:
    passthrough_max_numel: int = 65_536  # tensors this small are stored as fp16
    int6_categories: tuple[str, ...] = ("mlp", "attn")
    zstd_levels: tuple[int, ...] = (16, 1, 17, 2)
    size_limit: int = 16_000_000  # code bytes + model bytes must fit


@dataclass
class TTTConfig:
    """Score-first test-time training of the reference predictor (PR940_SPEC s.6.5)."""
    enabled: bool = True
    seq_len: int = 2048  # training sequences cut from each observed chunk
    lr: float = 0.002
    momentum: float = 0.9
    epochs: int = 10
    batch_seqs: int = 32
    freeze_blocks: int = 2  # blocks 0..freeze_blocks-1 stay fixed
    grad_clip: float = 1.0
    # Cosine horizon in chunks: the protocol does not tell a predictor how many chunks
    # come, so it is a setting (1893 = ceil(62,021,632 / 32,768) for FineWeb val).
    total_chunks: int = 1893


@dataclass
class Preset:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    # Test-time training settings written into the artifact, for presets whose data
    # differs from FineWeb's (the smoke corpus has a handful of chunks, not 1,893).
    ttt: TTTConfig | None = None


def full_config() -> ModelConfig:
    """The published PR #1232 model: 27,137,223 parameters."""
    return ModelConfig()


def _fill(cls, table: dict, where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise BadInput(f"{where}: unknown keys {unknown}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return cls(**values)


def load_preset(path: Path) -> Preset:
    """Read a preset TOML ([model], [train], [quant], [ttt] tables; all optional)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BadInput(f"{path}: cannot read preset ({e})") from None
    return preset_from_tables(data, str(path))


def preset_from_tables(data: dict, where: str) -> Preset:
    """A preset from its tables: a preset TOML, or the dict a run's config.json holds."""
    extra = sorted(set(data) - {"model", "train", "quant", "ttt"})
    if extra:
        raise BadInput(f"{where}: unknown tables {extra}")
    ttt = data.get("ttt")
    preset = Preset(
        model=_fill(ModelConfig, data.get("model", {}), f"{where} [model]"),
        train=_fill(TrainConfig, data.get("train", {}), f"{where} [train]"),
        quant=_fill(QuantConfig, data.get("quant", {}), f"{where} [quant]"),
        ttt=_fill(TTTConfig, ttt, f"{where} [ttt]") if ttt is not None else None,
    )
    preset.model.validate()
    return preset


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def ttt_config_from_dict(d: dict) -> TTTConfig:
    return _fill(TTTConfig, d, "ttt config")


def model_config_from_dict(d: dict) -> ModelConfig:
    cfg = _fill(ModelConfig, d, "model config")
    cfg.validate()
    return cfg
