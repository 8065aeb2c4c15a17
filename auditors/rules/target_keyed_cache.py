"""Target-keyed hashed cache reads (RULES.md §3, the #779 ruling; C1/C2 of §2).

A count table is read with a key that hashes the realized target into the context
hash (`full[ctx_hash ^ (target * prime)]`), and the count becomes the probability of
that token. The bucket is chosen by x_t itself, so the number is not a distribution
over the vocabulary (#1147: Z* >> 1) and it peeks at the target. Caught through data
flow, not names: a key is "extended" when a multiplicative context hash is combined
with one more token term, or when a hashed key carries the scored target; aliasing,
helper functions returning keys, numpy or torch make no difference.

Exact keys (`pairs[(context, target)]` in a dict, a dense `counts[prev, y]`) collide
with nothing: divided by the context's count they are a distribution, and stay clean.
Legal counterparts that stay clean: writes keyed by the just-scored token (score-
first updates, also `d[k] = d.get(k, 0) + 1`, and reads of the entry just incremented
that only decide what else the update keeps, such as each context's most frequent
follower), context-only reads, lookups for every candidate token (`arange(V)`
in the key, then normalized), BigramHash input embeddings (hash of input tokens fed
to a learned embedding, not read as a probability).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("target-keyed-cache", "target_in_key_ngram", "hashed count table read with the target in its key",
                "RULES.md §3 (#779 ruling; #727, #940, #1147, #1232)")


def _increments(m) -> set[int]:
    """Reads that only feed the write of the same entry: `d[k] = d.get(k, 0) + 1`."""
    out, stored = set(), {}
    for st in m.nodes_of(ast.Assign):  # (`c = d.get(k, 0) + 1; d[k] = c`: the same, through a name)
        t = st.targets[0] if len(st.targets) == 1 else None
        if type(t) is ast.Subscript and type(st.value) is ast.Name:
            stored.setdefault(st.value.id, set()).add((lb.src(t.value), lb.src(t.slice)))
    for st in m.nodes_of(ast.Assign):
        t = st.targets[0] if len(st.targets) == 1 else None
        if type(t) is ast.Subscript or (type(t) is ast.Name and t.id in stored):
            entries = {(lb.src(t.value), lb.src(t.slice))} if type(t) is ast.Subscript else stored[t.id]
            for n in lb.walk(st.value):
                if type(n) is ast.Call and type(n.func) is ast.Attribute and n.func.attr == "get" and n.args \
                        and (lb.src(n.func.value), lb.src(n.args[0])) in entries:
                    out.add(id(n))
    return out


def _count_update(f, ev) -> bool:
    """The read is part of updating its own table (`pair[k] += 1`, then `cnt = pair[k]` to
    keep the best follower of each context): the function wrote that table before the
    read, returns no target-keyed count and keeps none in a field of its object."""
    table = lb.src(ev.data["table"])
    if "TCNT" in f.ret or not any(e.kind == "write" and e.line <= ev.line and lb.src(e.data["table"]) == table
                                  for e in f.events):
        return False
    m = f.module
    return not any(type(t) is ast.Attribute and "TCNT" in f.labels_of(st.value)
                   for st in m.under(f, m.nodes_of(ast.Assign)) + m.under(f, m.nodes_of(ast.AugAssign))
                   for t in (st.targets if type(st) is ast.Assign else [st.target]))


def check(m):
    return list(m.once("target-keyed reads", _check))  # (target-keyed-blend asks too)


def _check(m):
    out = []
    increments = None
    for f, ev in m.events("read"):
        if not ev.data["target_keyed"]:
            continue
        if increments is None:
            increments = _increments(m)
        if id(ev.node) in increments:
            continue  # an update of the count (after scoring), not a probability read
        if _count_update(f, ev):
            continue
        key = ev.data["key"]
        if "TRAIN" in key and "VAL" not in key:
            continue  # n-grams of training batches looked up while training (statistics, a BigramHash input)
        siblings = [e for e in f.events if e.kind == "read" and not e.data["target_keyed"]]
        strong = "TGT" in key or bool(siblings)
        why = "the key hashes the realized target token" if "TGT" in key else "the key extends a context hash with one more token"
        sib = f"; the context count comes from {lb.src(siblings[0].data['table'])}[...] (line {siblings[0].line})" if siblings else ""
        out.append(raw(RULE, f, ev.node, ev.ctx, "error" if strong else "warning", "high" if strong and "TGT" in key else "medium",
                       f"reads {lb.src(ev.data['table'])}[...] where {why}{sib}: the count is a probability for x_t chosen by x_t "
                       "(not normalized over the vocabulary)"))
    return out
