"""PR940 submission: the dequantized int6/int8 model with legal score-first TTT.

The settings are PR #1232's evaluation runs (PR940_SPEC s.6.5): SGD lr 0.002,
momentum 0.9, 10 epochs per 32,768-token chunk, blocks 0-1 frozen, grad clip 1.0,
unless the training preset stored its own in the artifact (the CPU smoke preset does:
its corpus has a few chunks, not FineWeb's 1,893).
"""

from reference_model.config import TTTConfig
from reference_model.predictor import ReferencePredictor, load as load_reference

TTT = TTTConfig(enabled=True, seq_len=2048, lr=0.002, momentum=0.9, epochs=10, batch_seqs=32,
                freeze_blocks=2, grad_clip=1.0, total_chunks=1893)


def load(artifact_path: str, device: str) -> ReferencePredictor:
    return load_reference(artifact_path, device, default_ttt=TTT)
