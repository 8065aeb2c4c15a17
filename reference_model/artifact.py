"""The submission artifact: quantized weights in a tensor container (docs/ARTIFACT.md).

PR940_SPEC s.5: block matrices (categories mlp/attn) int6 per row with the row's
abs-max as clip; everything else large (embeddings) int8 per row with a 0.9999984
quantile clip; tensors with at most `passthrough_max_numel` elements fp16. If code +
model bytes exceed the budget, block layers fall back to int5 one at a time, from the
middle outwards (5, 6, 4, 7, ... for 11 layers), retrying every zstd level each time.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.errors import BadInput

from .config import ModelConfig, QuantConfig, TTTConfig, model_config_from_dict, to_dict, ttt_config_from_dict
from .container import decode_container, encode_container, read_container
from .model import GPT

FORMAT = "pgolf-artifact"
INT8_CLIP_QUANTILE = 0.9999984
MAX_PAYLOAD = 1 << 29  # 512 MiB decompressed: far above any 16 MB-budget model
_BITS = {"int6": 31, "int5": 15}


def category(name: str) -> str:
    if "tok_emb" in name or "lm_head" in name:
        return "embed"
    if ".mlp." in name:
        return "mlp"
    if ".attn." in name or ".proj." in name:
        return "attn"
    return "other"


def _layer_of(name: str) -> int | None:
    m = re.match(r"blocks\.(\d+)\.", name)
    return int(m.group(1)) if m else None


def int5_order(num_layers: int) -> list[int]:
    """Middle layer first, then alternately right and left of it: 5, 6, 4, 7, 3, ... for 11."""
    mid, order = num_layers // 2, []
    for k in range(num_layers):
        layer = mid + (k + 1) // 2 if k % 2 else mid - k // 2
        if 0 <= layer < num_layers:
            order.append(layer)
    rest = [i for i in range(num_layers) if i not in order]
    return order + rest


def quantize_rows(w: torch.Tensor, qmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row intN (qmax 31 = int6, 15 = int5), clip at the row abs-max.

    The scale has a floor of 1/qmax and is stored fp16; values lie in [-qmax-1, qmax]."""
    w = w.float()
    r = w.abs().amax(dim=1)
    scale = torch.clamp(r / qmax, min=1.0 / qmax).half()
    s = scale.float()[:, None]
    q = torch.clamp(torch.round(torch.clamp(w, -r[:, None], r[:, None]) / s), -qmax - 1, qmax)
    return q.to(torch.int8), scale


def quantize_rows_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row int8 with a 0.9999984-quantile clip; rounding uses the fp32 scale."""
    w = w.float()
    c = torch.quantile(w.abs(), INT8_CLIP_QUANTILE, dim=1) if w.numel() else w.new_zeros(w.shape[0])
    s = torch.clamp(c / 127, min=1.0 / 127)
    q = torch.clamp(torch.round(torch.clamp(w, -c[:, None], c[:, None]) / s[:, None]), -127, 127)
    return q.to(torch.int8), s.half()


def quantize_state(state: dict[str, torch.Tensor], quant: QuantConfig, int5_layers=()) -> tuple[dict, dict]:
    """-> (stored tensors, per-parameter description {name: {kind, dtype}})."""
    tensors, kinds = {}, {}
    for name, w in state.items():
        dtype = str(w.dtype).removeprefix("torch.")
        if not w.is_floating_point():
            kind = "raw"
            tensors[name] = w
        elif w.numel() <= quant.passthrough_max_numel or w.ndim != 2:
            kind = "fp16"
            tensors[name] = w.half()
        elif category(name) in quant.int6_categories:
            kind = "int5" if _layer_of(name) in int5_layers else "int6"
            tensors[name + ".q"], tensors[name + ".scale"] = quantize_rows(w, _BITS[kind])
        else:
            kind = "int8"
            tensors[name + ".q"], tensors[name + ".scale"] = quantize_rows_int8(w)
        kinds[name] = {"kind": kind, "dtype": dtype}
    return tensors, kinds


def dequantize_state(tensors: dict[str, torch.Tensor], kinds: dict, path="<artifact>") -> dict[str, torch.Tensor]:
    state = {}
    for name, info in kinds.items():
        kind, dtype = info.get("kind"), getattr(torch, str(info.get("dtype")), None)
        if not isinstance(dtype, torch.dtype):
            raise BadInput(f"{path}: tensor {name}: bad dtype {info.get('dtype')!r:.40}")
        try:
            if kind in ("raw", "fp16"):
                state[name] = tensors[name].to(dtype)
            elif kind in ("int6", "int5", "int8"):
                q, scale = tensors[name + ".q"], tensors[name + ".scale"]
                if q.dtype != torch.int8 or q.ndim != 2 or scale.shape != (q.shape[0],):
                    raise BadInput(f"{path}: tensor {name}: quantized data and scales do not match")
                lo = -128 if kind == "int8" else -_BITS[kind] - 1
                if q.numel() and (int(q.min()) < lo or int(q.max()) > (127 if kind == "int8" else _BITS[kind])):
                    raise BadInput(f"{path}: tensor {name}: values outside the {kind} range")
                state[name] = (q.float() * scale.float()[:, None]).to(dtype)
            else:
                raise BadInput(f"{path}: tensor {name}: unknown kind {kind!r:.40}")
        except KeyError as e:
            raise BadInput(f"{path}: tensor {name}: missing stored tensor {e}") from None
    return state


def encode_artifact(model: GPT, quant: QuantConfig, int5_layers=(), level: int = 16, ttt: TTTConfig | None = None) -> bytes:
    tensors, kinds = quantize_state(model.state_dict(), quant, int5_layers)
    meta = {"format": FORMAT, "model_config": to_dict(model.cfg), "quant": kinds, "int5_layers": list(int5_layers)}
    if ttt is not None:
        meta["ttt"] = to_dict(ttt)
    return encode_container(tensors, meta, level)


@dataclass
class ArtifactResult:
    blob: bytes
    model_bytes: int
    code_bytes: int
    total_bytes: int
    limit: int
    fits: bool
    zstd_level: int
    int5_layers: list[int]


def build_artifact(model: GPT, quant: QuantConfig, code_bytes: int, ttt: TTTConfig | None = None) -> ArtifactResult:
    """Smallest-effort artifact that fits: zstd levels in spec order, then int5 layers."""
    budget = quant.size_limit - code_bytes
    order = int5_order(model.cfg.num_layers)
    blob, level, int5 = b"", quant.zstd_levels[0], []
    for n_int5 in range(len(order) + 1):
        int5 = order[:n_int5]
        for level in quant.zstd_levels:
            blob = encode_artifact(model, quant, int5, level, ttt)
            if len(blob) <= budget:
                return ArtifactResult(blob, len(blob), code_bytes, len(blob) + code_bytes, quant.size_limit, True, level, int5)
    print(f"WARNING: artifact {len(blob) + code_bytes} bytes exceeds {quant.size_limit} even with all layers int5",
          file=sys.stderr)
    return ArtifactResult(blob, len(blob), code_bytes, len(blob) + code_bytes, quant.size_limit, False, level, int5)


def _model_from(tensors, meta, path) -> GPT:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadInput(f"{path}: not a {FORMAT} file")
    try:
        cfg = model_config_from_dict(meta["model_config"])
        kinds = meta["quant"]
    except (KeyError, TypeError) as e:
        raise BadInput(f"{path}: header lacks {e}") from None
    if not isinstance(kinds, dict):
        raise BadInput(f"{path}: header 'quant' is not a table")
    state = dequantize_state(tensors, kinds, path)
    with torch.device("meta"):  # shapes only; the artifact supplies every value
        model = GPT(cfg)
    expected = model.state_dict()
    if set(state) != set(expected):
        raise BadInput(f"{path}: tensors do not match the model ({sorted(set(state) ^ set(expected))[:3]})")
    for name, t in state.items():
        if t.shape != expected[name].shape:
            raise BadInput(f"{path}: tensor {name} has shape {tuple(t.shape)}, model needs {tuple(expected[name].shape)}")
    model.load_state_dict(state, strict=True, assign=True)
    return model


def load_artifact(path, device: str | torch.device = "cpu") -> GPT:
    """Rebuild the dequantized model from an artifact file; BadInput on anything wrong."""
    return load_artifact_with_ttt(path, device)[0]


def load_artifact_with_ttt(path, device: str | torch.device = "cpu") -> tuple[GPT, TTTConfig | None]:
    """The model, and the test-time training settings the preset stored (None if it stored none)."""
    tensors, meta = read_container(path, MAX_PAYLOAD)
    model = _model_from(tensors, meta, Path(path)).to(device).eval()
    try:
        ttt = ttt_config_from_dict(meta["ttt"]) if "ttt" in meta else None
    except TypeError as e:
        raise BadInput(f"{path}: header 'ttt' is not valid ({e})") from None
    return model, ttt


def decode_artifact(blob: bytes, name="<artifact>") -> GPT:
    tensors, meta = decode_container(blob, name, MAX_PAYLOAD)
    return _model_from(tensors, meta, name).eval()
