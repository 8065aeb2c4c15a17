"""Target-keyed hashed cache reads (RULES.md §3, the #779 ruling; C1/C2 of §2).

A count table is read with a key that hashes the realized target into the context
hash (`full[ctx_hash ^ (target * prime)]`), and the count becomes the probability of
that token. The bucket is chosen by x_t itself, so the number is not a distribution
over the vocabulary (#1147: Z* >> 1) and it peeks at the target. Caught through data
flow, not names: a key is "extended" when a multiplicative context hash is combined
with one more token term, or when a hashed key carries the scored target; aliasing,
helper functions returning keys, numpy or torch make no difference.

Legal counterparts that stay clean: writes keyed by the just-scored token (score-
first updates), context-only reads, lookups for every candidate token (`arange(V)`
in the key, then normalized), BigramHash input embeddings (hash of input tokens fed
to a learned embedding, not read as a probability).
"""

from __future__ import annotations

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("target-keyed-cache", "target_in_key_ngram", "hashed count table read with the target in its key",
                "RULES.md §3 (#779 ruling; #727, #940, #1147, #1232)")


def check(m):
    out = []
    for f, ev in m.events("read"):
        if not ev.data["target_keyed"]:
            continue
        key = ev.data["key"]
        siblings = [e for e in f.events if e.kind == "read" and not e.data["target_keyed"]]
        strong = "TGT" in key or bool(siblings)
        why = "the key hashes the realized target token" if "TGT" in key else "the key extends a context hash with one more token"
        sib = f"; the context count comes from {lb.src(siblings[0].data['table'])}[...] (line {siblings[0].line})" if siblings else ""
        out.append(raw(RULE, f, ev.node, ev.ctx, "error" if strong else "warning", "high" if strong and "TGT" in key else "medium",
                       f"reads {lb.src(ev.data['table'])}[...] where {why}{sib}: the count is a probability for x_t chosen by x_t "
                       "(not normalized over the vocabulary)"))
    return out
