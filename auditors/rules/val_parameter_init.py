"""A model parameter set from statistics of the validation data (RULES.md §1.3, §9).

No validation data may shape the model before it is scored. Batches are the usual
way in, but a statistic does it as well: an output bias initialised at the log-unigram
prior of the validation tokens (`model.head_bias.copy_(log(val_stats["unigram"]))`),
an embedding row filled with a val count, `nn.Parameter(val_prior)`. Each such value
was computed from every validation token, including the ones not yet scored. The rule
flags a write into a model parameter (a field made `nn.Parameter(...)` in some
class, a `.weight` or `.bias`, a registered persistent buffer, through `copy_` / `fill_` / `.data = ...` / item
assignment, or a new `nn.Parameter(...)`) whose value carries validation data, in a
function that scores nothing and is not called from one (an online bias updated
from the chunks already scored is score-first adaptation, judged by the TTT rules).
Only values computed from the tokens count (loaded data, distributions, targets): a
settings object that also names the val files (`cfg["logit_scale"]`) is no statistic.
Legal counterparts: the same prior taken from the training shards; validation
statistics that are only logged; shapes and counts (`val_tokens.numel()`).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.model import RuleInfo
from auditors.rules import ctx_of, exported_buffers, raw

RULE = RuleInfo("val-parameter-init", "val_in_training", "a model parameter set from validation-data statistics",
                "RULES.md §1.3, §9 (README: no validation data in training)")

_WRITES = {"copy_", "fill_", "set_", "add_", "mul_"}
# values computed from the tokens (loaded, a distribution, targets), not a settings object that
# names the val files (`cfg["logit_scale"]` of a dict that also holds `val_glob`)
_DATA = frozenset({"BLOB", "DIST", "TGT", "TGTP", "CNT", "TCNT"})


def _statistic(v: frozenset) -> bool:
    return "VAL" in v and bool(v & _DATA)
_MODULE_PARAMS = {"weight", "bias"}


def _parameter_fields(m) -> set[str]:
    """Attribute names that hold parameters: `self.head_bias = nn.Parameter(...)` anywhere,
    the `.weight` / `.bias` of any layer, and buffers registered by name
    (`self.register_buffer("start_logp", ...)`): the state dict, so the artifact, holds them."""
    out = set(_MODULE_PARAMS)
    for st in m.nodes_of(ast.Assign):
        if type(st.value) is ast.Call and lb.call_name(st.value.func) == "Parameter":
            out |= {t.attr for t in st.targets if type(t) is ast.Attribute}
    return out | exported_buffers(m)


def _parameter(target, fields: set[str]) -> bool:
    """`model.head_bias`, `m.lm_head.weight.data`, `emb.weight[idx]`: a parameter or a part of one."""
    while type(target) is ast.Subscript or (type(target) is ast.Attribute and target.attr == "data"):
        target = target.value
    return type(target) is ast.Attribute and target.attr in fields


def _online(m, f, ctx) -> bool:
    """The write repeats in a loop of a function that scores (an update between scored
    chunks), or every call of f does."""
    if ctx.loops and m.scores(f):
        return True
    sites = m.call_sites(f)
    return bool(sites) and all(e.ctx.loops and m.scores(g) for g, e in sites)


def _constructed_with_val(m, init, made) -> list:
    """`self.prior = nn.Parameter(log(prior))` in `__init__`, and `TinyLM(..., prior=val_prior)`
    somewhere: the constructor call hands validation statistics to the parameter."""
    used = {n.id for n in lb.walk(made.args[0]) if type(n) is ast.Name} & set(init.params[1:])
    out = []
    for g, ev in m.once("constructions handed val", _constructions_with_val).get(init.cls, []) if used else ():
        passed = dict(zip(init.params[1:], ev.data["args"])) | ev.data["kws"]
        if any("VAL" in passed.get(p, ()) for p in used) and \
                _statistic(init.labels_of(made.args[0], {p: passed.get(p, frozenset()) for p in used})):
            out.append((g, ev.node, ev.ctx, f"{lb.src(made)}` (line {made.lineno}) of `{init.cls}"))
    return out


def _constructions_with_val(m) -> dict:
    """Class name -> the (function, event) of each call of it by name handed validation data."""
    out: dict = {}
    for g, ev in m.events("call"):
        if ev.data["callee"] is None and type(ev.node.func) is ast.Name \
                and any("VAL" in a for a in [*ev.data["args"], *ev.data["kws"].values()]):
            out.setdefault(ev.node.func.id, []).append((g, ev))
    return out


def _tokens_into_buffer(m, f, node) -> bool:
    """`model.prime.copy_(val[:n])`: the tokens themselves written into a buffer, the
    paid-prefix rule's finding."""
    from auditors.rules.paid_prefix import _FILLS_IN_PLACE, _token_data

    return node.func.attr in _FILLS_IN_PLACE and _parameter(node.func.value, exported_buffers(m)) \
        and any(_token_data(f, a) for a in node.args)


def check(m):
    fields = m.once("parameter fields", _parameter_fields)
    sites = []
    for f, ev in m.events("call"):
        node = ev.node
        if ev.data["name"] in _WRITES and type(node.func) is ast.Attribute and _parameter(node.func.value, fields) \
                and any(_statistic(a) for a in ev.data["args"]) and not _tokens_into_buffer(m, f, node):
            sites.append((f, node, ev.ctx, lb.src(node.func.value)))
        elif ev.data["name"] == "Parameter" and ev.data["args"] and _statistic(ev.data["args"][0]):
            sites.append((f, node, ev.ctx, lb.src(node)))
        elif ev.data["name"] == "Parameter" and node.args and f.name == "__init__" and f.cls:
            sites += _constructed_with_val(m, f, node)
    stores = [st for st in m.nodes_of(ast.Assign) if any(_parameter(t, fields) for t in st.targets)]
    seen_stores: set[int] = set()
    for f in sorted(m.functions.values(), key=lambda g: -g.qualname.count(".")) if stores else ():
        for st in m.under(f, stores) if f.qualname != "<module>" else ():
            if id(st) not in seen_stores:  # (in the innermost function around it)
                seen_stores.add(id(st))
                if _statistic(f.labels_of(st.value)):
                    sites.append((f, st, ctx_of(f, st), lb.src(st.targets[0])))
    out, seen = [], set()
    for f, node, ctx, what in sites:
        if node.lineno in seen or _online(m, f, ctx):
            continue
        seen.add(node.lineno)
        out.append(raw(RULE, f, node, ctx, "error", "medium",
                       f"`{what}` is set from a statistic of the validation data before any of it is scored: the model "
                       "starts from what the tokens it will be scored on look like"))
    return out
