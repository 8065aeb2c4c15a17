"""Download the challenge's cached FineWeb shards and tokenizer from Hugging Face.

Remote layout (dataset repo willdepueoai/parameter-golf, everything under `datasets/`):
  datasets/manifest.json                            which datasets/tokenizers exist, shard counts
  datasets/datasets/fineweb10B_<variant>/fineweb_{val,train}_NNNNNN.bin
  datasets/<tokenizer artifact paths from the manifest, e.g. tokenizers/....model>
Local layout: the same with the leading `datasets/` dropped, under DATA_DIR, so
shards land in DATA_DIR/datasets/fineweb10B_sp1024/ and the tokenizer in
DATA_DIR/tokenizers/. Without network this fails at the first request with one line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

from harness.errors import BadInput

REPO_ID = "willdepueoai/parameter-golf"
REMOTE_ROOT = "datasets"
CONNECT_TIMEOUT_S = 10  # fail fast offline instead of hanging on a dead network


def dataset_name(variant: str) -> str:
    if variant == "byte260" or re.fullmatch(r"sp\d+", variant):
        return f"fineweb10B_{variant}"
    raise BadInput(f"--variant {variant!r}: expected byte260 or sp<VOCAB_SIZE>, e.g. sp1024")


def _check_reachable() -> None:
    """One request with a short timeout, so that offline fails now, not after the hub's retries."""
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    endpoint = constants.ENDPOINT
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=CONNECT_TIMEOUT_S)
    except urllib.error.HTTPError:
        pass  # the server answered: reachable
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise BadInput(
            f"cannot reach {endpoint} to download FineWeb ({reason}); "
            "`harness data build` makes the offline corpus"
        ) from None


def _fetch(remote: str, data_dir: Path) -> Path:
    """Download `remote` (a path under REMOTE_ROOT) once into its local place; return that path."""
    relative = Path(remote).relative_to(REMOTE_ROOT)
    if relative.is_absolute() or ".." in relative.parts:
        raise BadInput(f"{remote}: refusing a download path outside the data folder")
    local = data_dir / relative
    if local.is_file():
        return local
    from huggingface_hub import hf_hub_download

    try:
        cached = Path(
            hf_hub_download(
                repo_id=REPO_ID,
                repo_type="dataset",
                filename=Path(remote).name,
                subfolder=Path(remote).parent.as_posix(),
                etag_timeout=CONNECT_TIMEOUT_S,
            )
        ).resolve(strict=True)
    except Exception as e:  # network, HTTP and offline-mode errors all come here
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise BadInput(
            f"cannot download {remote} from {REPO_ID}: {reason} (no network? "
            "`harness data build` makes the offline corpus)"
        ) from None
    # Hard-link the cache blob (no second copy of a 200 MB shard); copy across filesystems.
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(cached, tmp)
    except OSError:
        shutil.copyfile(cached, tmp)
    os.replace(tmp, local)
    return local


def download(data_dir: str | os.PathLike, variant: str = "sp1024", train_shards: int = 80) -> Path:
    """Download val shards, `train_shards` train shards and the tokenizer; return the dataset folder."""
    from harness.data.shards import read_shard
    from harness.data.tokenizer import load_tokenizer

    data_dir = Path(data_dir)
    name = dataset_name(variant)
    if train_shards < 0:
        raise BadInput(f"--train-shards {train_shards}: must be 0 or more")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        raise BadInput("HF_HUB_OFFLINE is set: cannot download FineWeb (`harness data build` works offline)")

    _check_reachable()
    manifest_path = _fetch(f"{REMOTE_ROOT}/manifest.json", data_dir)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        dataset = next(d for d in manifest["datasets"] if d.get("name") == name)
        n_train = int(dataset["stats"]["files_train"])
        n_val = int(dataset["stats"]["files_val"])
        tok_entry = next(t for t in manifest["tokenizers"] if t.get("name") == dataset["tokenizer_name"])
    except (ValueError, KeyError, TypeError, StopIteration):
        raise BadInput(f"{manifest_path}: no usable entry for dataset {name}") from None
    if train_shards > n_train:
        raise BadInput(f"--train-shards {train_shards}: {name} has only {n_train} train shards")
    tokenizer_files = [str(tok_entry[k]) for k in ("model_path", "vocab_path", "path") if tok_entry.get(k)]
    if not any(f.endswith(".model") for f in tokenizer_files):
        raise BadInput(f"{manifest_path}: tokenizer {tok_entry.get('name')} has no .model file")

    from tqdm import tqdm

    local_tokenizers = [_fetch(f"{REMOTE_ROOT}/{f}", data_dir) for f in tokenizer_files]
    model = next(p for p in local_tokenizers if p.suffix == ".model")
    vocab_size = int(load_tokenizer(model).vocab_size())
    prefix = f"{REMOTE_ROOT}/datasets/{name}"
    remotes = [f"{prefix}/fineweb_val_{i:06d}.bin" for i in range(n_val)]
    remotes += [f"{prefix}/fineweb_train_{i:06d}.bin" for i in range(train_shards)]
    for remote in tqdm(remotes, desc=f"{name} shards", unit="shard", file=sys.stderr):
        local = _fetch(remote, data_dir)
        try:
            read_shard(local, vocab_size)  # validate what arrived
        except BadInput:
            local.unlink()  # never leave a bad shard where the next run would take it as done
            raise
    dataset_dir = data_dir / "datasets" / name
    print(f"FineWeb {variant}: {n_val} val + {train_shards} train shards in {dataset_dir}, tokenizer {model}")
    return dataset_dir
