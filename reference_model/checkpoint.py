"""Training checkpoints: everything needed to continue a killed run bit for bit.

A checkpoint is a tensor container (container.py, never a pickle) holding the model,
the EMA weights, both optimizers' states, the RNG states, the step and how many tokens
the training stream has consumed. Files are written atomically, so any checkpoint on
disk is complete; resuming takes the newest one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.errors import BadInput

from .container import flatten_tree, read_container, unflatten_tree, write_container

_NAME = re.compile(r"step_(\d{6,})\.ckpt$")
MAX_CHECKPOINT_PAYLOAD = 1 << 36


@dataclass
class TrainState:
    step: int
    tokens_consumed: int  # by this run's token stream (same on every rank)
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None
    optimizers: list[dict]
    rng: dict
    preset: dict  # a checkpoint only resumes the configuration that wrote it


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step_{step:06d}.ckpt"


def save_checkpoint(folder: Path, state: TrainState, keep: int) -> Path:
    tensors: dict[str, torch.Tensor] = {}
    for name, t in state.model.items():
        tensors[f"model/{name}"] = t
    for name, t in (state.ema or {}).items():
        tensors[f"ema/{name}"] = t
    meta = {
        "step": state.step,
        "tokens_consumed": state.tokens_consumed,
        "has_ema": state.ema is not None,
        "optimizers": flatten_tree(state.optimizers, tensors, "opt/"),
        "rng": flatten_tree(state.rng, tensors, "rng/"),
        "preset": state.preset,
    }
    path = checkpoint_path(folder, state.step)
    write_container(path, {k: v.detach().cpu() for k, v in tensors.items()}, meta, level=3)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files in step order."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.search(p.name))]
    return [p for _, p in sorted(found)]


def load_checkpoint(path: Path) -> TrainState:
    tensors, meta = read_container(path, MAX_CHECKPOINT_PAYLOAD)
    try:
        model = {k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")}
        ema = {k.removeprefix("ema/"): v for k, v in tensors.items() if k.startswith("ema/")}
        return TrainState(
            step=int(meta["step"]),
            tokens_consumed=int(meta["tokens_consumed"]),
            model=model,
            ema=ema if meta["has_ema"] else None,
            optimizers=unflatten_tree(meta["optimizers"], tensors),
            rng=unflatten_tree(meta["rng"], tensors),
            preset=meta["preset"],
        )
    except (KeyError, TypeError, ValueError) as e:
        raise BadInput(f"{path}: incomplete checkpoint ({e})") from None


def capture_rng(device: torch.device) -> dict:
    rng = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def restore_rng(rng: dict, device: torch.device) -> None:
    torch.set_rng_state(rng["torch"])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)
