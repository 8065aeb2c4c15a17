"""Paid prefix: validation tokens stored with the submission (RULES.md §1.3; #168, #275).

The README forbids compressing validation data into the artifact. The construct that
uses it compares the scored targets with token data decoded from a file shipped with
the code (neither a train nor a validation shard) and lets the match change the loss.
Data flow: an equality between target-labeled (TGT) and file-blob (BLOB) values.
"""

from __future__ import annotations

from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("paid-prefix", "paid_prefix", "scored targets matched against stored token data",
                "RULES.md §1.3 (README 'paid prefix'; #168, #275)")


def check(m):
    out = []
    for f, ev in m.events("compare"):
        left, right = ev.data["left"], ev.data["right"]
        def stored(x):
            return "BLOB" in x and not x & {"VAL", "TRAIN"}
        if ("TGT" in left and stored(right)) or (stored(left) and "TGT" in right):
            out.append(raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                           "compares the scored targets with token data loaded from a file shipped with the submission "
                           "(validation tokens paid for in the artifact)"))
    return out
