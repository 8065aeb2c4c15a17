#!/usr/bin/env bash
# The reference trainer's GPU checks in one go, for a machine lent for a few minutes:
#   1. the environment (GPU, driver, torch, CUDA);
#   2. benchmarks/train_throughput.py on the full preset (bf16 autocast, torch.compile),
#      with a profile of one step;
#   3. nccl: a process group of one rank runs the trainer's gradient averaging on CUDA;
#   4. `harness train submissions/pr940 --preset full --steps K` end to end on the embedded
#      corpus (no network there): compiled training, periodic val, EMA, checkpoint, int6
#      artifact, round-trip BPB.
# Results go to $OUT (default /tmp/gpu_session): env.txt, throughput.txt, nccl.txt,
# train.txt, result.json, metrics.jsonl. Each stage has its own time limit so that a
# stuck stage still leaves the others' results.
#
#     OUT=/tmp/out bash benchmarks/gpu_session.sh [STEPS]
set -u
OUT=${OUT:-/tmp/gpu_session}
STEPS=${1:-20}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
  nproc
} 2>&1 | tee "$OUT/env.txt"

timeout 200 "$PY" benchmarks/train_throughput.py --skip-smoke --full-steps 10 --warmup 3 --profile 2>&1 \
  | tee "$OUT/throughput.txt"

timeout 45 "$PY" - <<'EOF' 2>&1 | tee "$OUT/nccl.txt"
import torch, torch.distributed as dist
from reference_model.config import load_preset
from reference_model.model import GPT
from reference_model.trainer import average_gradients
dist.init_process_group("nccl", init_method="tcp://127.0.0.1:29533", rank=0, world_size=1)
torch.cuda.set_device(0)
model = GPT(load_preset("submissions/pr940/smoke.toml").model).cuda()
x = torch.randint(0, 1024, (2, 64), device="cuda")
model(x, torch.roll(x, -1, 1)).backward()
before = [p.grad.clone() for p in model.parameters() if p.grad is not None]
average_gradients(model, 1)
after = [p.grad for p in model.parameters() if p.grad is not None]
same = all(torch.equal(a, b) for a, b in zip(before, after))
print(f"nccl {dist.get_backend()}: all-reduce of {sum(g.numel() for g in after):,} gradient values, unchanged at world 1: {same}")
dist.destroy_process_group()
EOF

timeout 240 "$PY" -m harness train submissions/pr940 --preset full --steps "$STEPS" --out /tmp/run-full 2>&1 \
  | tr '\r' '\n' | grep -v '^\s*$' | tail -n 60 | tee "$OUT/train.txt"
cp /tmp/run-full/result.json /tmp/run-full/metrics.jsonl "$OUT/" 2>/dev/null
ls -la /tmp/run-full /tmp/run-full/checkpoints 2>&1 | tee -a "$OUT/train.txt"
