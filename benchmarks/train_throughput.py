"""Training throughput (tokens/s) of the reference model's presets.

    python benchmarks/train_throughput.py [--steps N] [--warmup N] [--threads N] [--smoke-only]
        [--skip-smoke] [--full-steps N] [--profile]

Measures full optimizer steps (forward, backward, grad clip, Muon + AdamW, EMA) on
synthetic token batches of the preset's shape:
- the smoke preset on CPU (what `harness train --preset smoke` runs);
- the full preset on one GPU when CUDA is available (bf16 autocast, torch.compile as the
  preset says); without a GPU, the full model on CPU with a single 2048-token
  micro-batch, labelled as such, to show what one CPU step of the big model costs.
Prints one JSON line per measurement. Numbers depend on machine load: report it.
`--profile` adds, for the GPU run, the 15 operations with the most device time over one
more step (torch.profiler), to show where a step's time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from reference_model.config import load_preset
from reference_model.evaluate import autocast
from reference_model.model import GPT, count_parameters
from reference_model.optim import apply_schedule, build_optimizers, update_ema


def measure(preset_path: str, device: torch.device, steps: int, warmup: int, micro_tokens: int | None = None,
            profile: bool = False) -> dict:
    preset = load_preset(preset_path)
    t = preset.train
    seq = t.train_seq_len
    micro = micro_tokens or t.train_batch_tokens // t.grad_accum
    accum = 1 if micro_tokens else t.grad_accum
    torch.manual_seed(0)
    model = GPT(preset.model).to(device)
    forward = torch.compile(model) if t.compile and device.type == "cuda" else model
    optimizers = build_optimizers(model, t)
    ema = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
    x = torch.randint(0, preset.model.vocab_size, (micro // seq, seq), device=device)
    y = torch.roll(x, -1, dims=1)

    def step(i: int) -> None:
        apply_schedule(optimizers, i, t)
        for _ in range(accum):
            with autocast(device):
                loss = forward(x, y)
            (loss / accum).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip_norm or float("inf"))
        for opt in optimizers:
            opt.step()
        model.zero_grad(set_to_none=True)
        update_ema(ema, model, t.ema_decay)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(warmup):
        step(i)
    sync()
    start = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    sync()
    elapsed = time.perf_counter() - start
    tokens = micro * accum * steps
    extra = {}
    if device.type == "cuda":
        extra["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    if profile:
        extra["profile"] = profile_step(lambda: step(warmup + steps), device)
    return extra | {
        "preset": preset_path, "device": str(device), "parameters": count_parameters(model),
        "tokens_per_step": micro * accum, "steps": steps, "seconds_per_step": round(elapsed / steps, 4),
        "tokens_per_s": round(tokens / elapsed, 1), "threads": torch.get_num_threads(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def profile_step(step, device: torch.device) -> str:
    """The operations with the most self device time over one step, as torch's table."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--smoke-only", action="store_true", help="skip the full preset")
    parser.add_argument("--skip-smoke", action="store_true", help="skip the smoke preset on CPU")
    parser.add_argument("--full-steps", type=int, default=None, help="timed steps of the full preset "
                        "(default: a quarter of --steps, at least 3)")
    parser.add_argument("--profile", action="store_true", help="print where one full-preset step's time goes")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.skip_smoke:
        print(json.dumps(measure("submissions/pr940/smoke.toml", torch.device("cpu"), args.steps, args.warmup)),
              flush=True)
    if args.smoke_only:
        return
    full_steps = args.full_steps or max(args.steps // 4, 3)
    if torch.cuda.is_available():
        r = measure("submissions/pr940/full.toml", torch.device("cuda"), full_steps, args.warmup, profile=args.profile)
        r["gpu"] = torch.cuda.get_device_name()
        table = r.pop("profile", None)
        print(json.dumps(r), flush=True)
        if table:
            print(table, flush=True)
    else:
        r = measure("submissions/pr940/full.toml", torch.device("cpu"), 2, 1, micro_tokens=2048)
        r["note"] = "no GPU: full model on CPU, one 2048-token micro-batch per step"
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
