"""PNG plots of a run: training curves, and BPB per evaluation chunk with and without TTT.

matplotlib with the Agg backend (no display needed); every PNG is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from harness.atomic import atomic_write_with


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    try:
        atomic_write_with(path, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)
    return path


def training_curves(records: Iterable[dict]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, train_loss) and (step, val_bpb) pairs from metrics.jsonl records, by step."""
    train, val = [], []
    for r in records:
        step = r.get("step")
        if not isinstance(step, int):
            continue
        loss = r.get("train_loss")
        if isinstance(loss, (int, float)):
            train.append((step, float(loss)))
        bpb = r.get("val_bpb")
        if isinstance(bpb, (int, float)):
            val.append((step, float(bpb)))
    return sorted(train), sorted(val)


def plot_training(records: Iterable[dict], path: Path, title: str) -> Path | None:
    """Training loss (nats/token) and validation BPB over steps; None when there is nothing to plot."""
    train, val = training_curves(records)
    if not train and not val:
        return None
    plt = _pyplot()
    fig, ax_loss = plt.subplots(figsize=(7, 4))
    if train:
        ax_loss.plot([s for s, _ in train], [v for _, v in train], color="tab:blue",
                     linewidth=1, label="train loss (nats/token)")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("train loss (nats/token)", color="tab:blue")
    ax_bpb = ax_loss.twinx()
    if val:
        ax_bpb.plot([s for s, _ in val], [v for _, v in val], color="tab:red", marker="o",
                    markersize=3, linewidth=1.2, label="validation BPB")
    ax_bpb.set_ylabel("validation BPB", color="tab:red")
    ax_loss.set_title(title)
    handles = ax_loss.get_legend_handles_labels()[0] + ax_bpb.get_legend_handles_labels()[0]
    ax_loss.legend(handles, [h.get_label() for h in handles], loc="upper right")
    ax_loss.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def chunk_points(chunks: Sequence[dict]) -> list[tuple[float, float]]:
    """(middle of the chunk in validation tokens, BPB) for each chunk of an eval result."""
    return [(c["first_target"] + c["tokens"] / 2, float(c["bpb"])) for c in chunks
            if isinstance(c.get("bpb"), (int, float))]


def plot_chunks(with_ttt: Sequence[dict], without_ttt: Sequence[dict] | None,
                path: Path, title: str) -> Path | None:
    """BPB of each evaluation chunk (the eval result's `chunks`), with the submission's
    method and, when given, without test-time training. Chunks are placed by position
    in the validation stream, so evals with different chunk sizes line up."""
    series = [(chunk_points(with_ttt), "with TTT" if without_ttt else "strict eval", "tab:green", "o")]
    if without_ttt:
        series.append((chunk_points(without_ttt), "without TTT", "tab:gray", "s"))
    if not any(points for points, *_ in series):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for points, label, color, marker in series:
        if points:
            ax.plot([x for x, _ in points], [y for _, y in points], marker=marker, markersize=4,
                    linewidth=1.2, color=color, label=label)
    ax.set_xlabel("validation position (tokens, middle of the chunk)")
    ax.set_ylabel("BPB")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
