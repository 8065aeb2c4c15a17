"""Paid prefix: validation tokens stored with the submission (RULES.md §1.3; #168, #275).

The README forbids compressing validation data into the artifact. The construct that
uses it compares the scored targets with token data decoded from a file shipped with
the code (neither a train nor a validation shard) and lets the match change the loss.
Data flow: an equality between target-labeled (TGT) and file-blob (BLOB) values, or,
in a function that scores, a distribution written at a stored token per position
(`boost[arange(n), stored[:n]] = 30`), or stored tokens made one-hot predictions
(`one_hot(stored[pos])`). Validation tokens registered as a buffer or parameter of the
model (or copied into a registered buffer: `model.prime.copy_(val[:n])`) travel in its
state dict, and so in the artifact; so do validation tokens (or a
table computed from them) written into the exported state dict (`qsd["warm"] = val[:n]`),
or saved (`torch.save`, `pickle.dump`) into the buffer a function then compresses as the
artifact (`torch.save({"w": qsd, "extra": {"warm": val[:n]}}, buf); lzma.compress(...)`).
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.data_choice import with_choice
from auditors.model import RuleInfo
from auditors.rules import by_function, ctx_of, exported_buffers, guards_of, raw
from auditors.rules.ttt_before_score import handed_val

RULE = RuleInfo("paid-prefix", "paid_prefix", "scored targets matched against stored token data",
                "RULES.md §1.3 (README 'paid prefix'; #168, #275)")


def _stored(x) -> bool:
    return "BLOB" in x and not x & {"VAL", "TRAIN"}


def _positions(f, e) -> bool:
    """`arange(n)` / `range(n)`, or a name bound to one: one entry per position."""
    e = f.binding(e.id) if isinstance(e, ast.Name) else e
    return isinstance(e, ast.Call) and lb.call_name(e.func) in lb.RANGE_FUNCS


_KEPT = {"register_buffer", "register_parameter", "Parameter"}


def _kept_in_model(m) -> list:
    """`model.register_buffer("memo", val_tokens[:n])`, `nn.Parameter(val...)`: validation
    tokens become part of the model's state, so the exported artifact ships them."""
    out = []
    for f, ev in m.events("call"):
        if ev.data["name"] in _KEPT and any("VAL" in a for a in (*ev.data["args"], *ev.data["kws"].values())):
            out.append(raw(RULE, f, ev.node, ev.ctx, "error", "high",
                           f"{ev.data['name']}() stores validation tokens in the model's state: the artifact "
                           "exported from it carries them"))
    return out


_FILLS_IN_PLACE = {"copy_", "index_copy_", "set_"}
_SAME_TOKENS = {"to", "long", "int", "short", "cpu", "cuda", "clone", "detach", "contiguous", "view", "reshape", "flatten",
                "type", "numpy", "tolist"}  # the same values in another dtype, device or shape


def _token_data(f, e, depth: int = 0) -> bool:
    """e holds tokens read from the data (a slice of a stream, what a loader returns), not a
    number computed from them (`unique_frac.detach()`, `clamp(1 - x)`, a mean)."""
    while True:
        if type(e) is ast.Call and type(e.func) is ast.Attribute and e.func.attr in _SAME_TOKENS:
            e = e.func.value
        elif type(e) is ast.Subscript and type(e.slice) is ast.Slice:
            e = e.value
        else:
            break
    if type(e) is ast.Name and depth < 3:
        bound = f.binding(e.id)
        return bound is not None and _token_data(f, bound, depth + 1)
    return type(e) in (ast.Call, ast.Attribute, ast.Name) and "VAL" in f.labels_of(e) and not (
        type(e) is ast.Call and lb.call_name(e.func) in lb.PASS_METHODS)


def _copied_into_buffer(m) -> list:
    """`model.prime.copy_(val_tokens[:n])` into a buffer the model's class registered
    (`self.register_buffer("prime", torch.zeros(n, dtype=torch.int16))`): the state dict, and
    so the exported artifact, carries the validation tokens written there."""
    buffers = exported_buffers(m)
    out = []
    for f, ev in m.events("call") if buffers else ():
        target = ev.node.func.value if type(ev.node.func) is ast.Attribute else None
        if ev.data["name"] in _FILLS_IN_PLACE and type(target) is ast.Attribute and target.attr in buffers \
                and any("VAL" in a and not a & {"TGTP", "DIST"} for a in ev.data["args"]) \
                and any(_token_data(f, a) for a in ev.node.args):
            out.append(raw(RULE, f, ev.node, ev.ctx, "error", "high",
                           f"writes validation tokens into `{lb.src(target)}`, a buffer registered in the model's state: "
                           "the artifact exported from it carries them"))
    return out


def _state_dict_of(f, name: str, depth: int = 0) -> bool:
    """The name is bound to a model's state dict or to something made from one
    (`qsd = quantize(model.state_dict())`): what gets exported as the artifact."""
    bound = f.binding(name)
    if bound is None or depth > 2:
        return False
    for n in lb.walk(bound):
        if type(n) is ast.Call and lb.call_name(n.func) == "state_dict":
            return True
        if type(n) is ast.Name and n.id != name and _state_dict_of(f, n.id, depth + 1):
            return True
    helper = f.module.resolve(bound.func, f) if type(bound) is ast.Call else None
    # `qstate = quantize_state(model, ...)`, a helper that builds the export from `model.state_dict()`
    return helper is not None and any(lb.call_name(c.func) == "state_dict" for c in f.module.under(helper, f.module.nodes_of(ast.Call)))


def _stored_in_state(m) -> list:
    """`qsd["warm"] = val_tokens[:n]`: validation data written into the exported state dict."""
    out = []
    for f, node in by_function(m, ast.Assign):
        for t in node.targets:
            if type(t) is not ast.Subscript or type(t.value) is not ast.Name or not _state_dict_of(f, t.value.id):
                continue
            stored = f.labels_of(node.value)
            if "VAL" in stored and ("TGTP" not in stored or "TGT" in stored):  # (a loss is no data; a table of tokens is)
                ctx = with_choice(f, node.value, "VAL", guards_of(f, node.lineno))  # (`SOURCES[k](n)`: under its key)
                out.append(raw(RULE, f, node, ctx, "error", "high",
                               f"`{lb.src(t)}` stores validation data in the state dict that is exported as the "
                               "artifact: the submission ships validation tokens (or a table built from them)"))
    return out


_SAVES = {"save", "dump", "savez", "savez_compressed", "save_file"}


def _saved_in_artifact(m) -> list:
    """`torch.save({"w": qsd, "extra": {"warm": val[:n]}}, buf)` in a function that then
    compresses the buffer: the compressed blob is the artifact, and it carries validation
    data (tokens, or a table built from them; a loss or a score is no such data)."""
    out = []
    for f in m.functions.values():
        how = _compresses(m, f)
        if how is None:
            continue
        for ev in f.events:
            if ev.kind == "call" and ev.data["name"] in _SAVES and ev.data["args"] and ev.data["callee"] is None:
                if how == "helper" and not _into_compressed(m, f, ev.node):
                    continue  # (a diagnostics dump saved to its own file beside a helper that compresses the model)
                held, saved = ev.data["args"][0], ev.node.args[0]
                literal = saved if type(saved) is ast.Dict else f.binding(saved.id) if type(saved) is ast.Name else None
                whole = type(literal) is ast.Dict  # a dict literal: its entries are judged one by one
                entry = _val_entry(m, f, saved) if "VAL" in held and (held & {"TGTP", "TGATE"} or whole) else None
                if entry is not None:  # `{"w": weights, "x": {"warm": val[:n]}}`: one entry holds tokens, the rest a model
                    g, node = entry
                    out.append(raw(RULE, g, node, ctx_of(g, node), "error", "medium",
                                   f"`{lb.src(node)}` is validation data put into what {f.name}() saves at line {ev.line} "
                                   "into the buffer compressed as the artifact: the submission ships validation tokens "
                                   "(or a table built from them)"))
                    break
                if whole:
                    continue
                if "VAL" in held and not held & {"TGTP", "TGATE"}:
                    entry = _stored_by_caller(m, f, ev.node)
                    if entry is not None:  # where the data enters the object, under the conditions there
                        g, st = entry
                        out.append(raw(RULE, g, st, ctx_of(g, st), "error", "medium",
                                       f"`{lb.src(st.targets[0])}` puts validation data into the object that "
                                       f"{f.name}() saves at line {ev.line} into the buffer compressed as the artifact: "
                                       "the submission ships validation tokens (or a table built from them)"))
                        break
                    ctx = with_choice(f, ev.node.args[0], "VAL", ev.ctx) if ev.node.args else ev.ctx  # (`SOURCES[k](n)`)
                    out.append(raw(RULE, f, ev.node, ctx, "error", "medium",
                                   f"{ev.data['name']}() writes validation data into the buffer that is compressed as "
                                   "the artifact: the submission ships validation tokens (or a table built from them)"))
                    break
    return out


def _compresses(m, f) -> str | None:
    """"direct" when f compresses a buffer itself, "helper" when through a function of the module
    (`compress_blob(raw, 22)` picking zstd or zlib), else None."""
    calls = [e for e in f.events if e.kind == "call"]
    if any(e.data["name"] == "compress" for e in calls):
        return "direct"
    return "helper" if any(_compressing_helper(m, c) for c in calls) else None


def _compressing_helper(m, c) -> bool:
    g = m.functions.get(c.data["callee"]) if c.data["callee"] else None
    return g is not None and any(e.kind == "call" and e.data["name"] == "compress" for e in g.events)


def _into_compressed(m, f, save: ast.Call) -> bool:
    """The buffer the save writes into is what a compressing helper is handed (`torch.save(obj,
    buf)`, then `compress_blob(buf.getvalue())`, also through a name bound to it)."""
    target = save.args[1] if len(save.args) > 1 else None
    if type(target) is not ast.Name:
        return False
    for ev in f.events:
        if ev.kind == "call" and ev.line >= save.lineno and _compressing_helper(m, ev):
            names = {n.id for a in ev.node.args for n in lb.walk(a) if type(n) is ast.Name}
            bound = [f.binding(n) for n in names]
            if target.id in names or any(b is not None and any(type(n) is ast.Name and n.id == target.id for n in lb.walk(b))
                                         for b in bound):
                return True
    return False


def _val_entry(m, f, e, depth: int = 0):
    """(function, value) of a dict entry that holds validation data and no model or score,
    inside what is saved: a dict literal, a name bound to one, or a parameter whose callers
    pass one (`export(sd, {"prior": p, "warm": val[:n]}, path)`), else None."""
    if depth > 3:
        return None
    if type(e) is ast.Name and e.id in f.params and f.binding(e.id) is None:
        index = f.params.index(e.id) - (1 if f.is_method else 0)
        for g, site in m.call_sites(f):
            passed = site.node.args[index] if 0 <= index < len(site.node.args) else next(
                (k.value for k in site.node.keywords if k.arg == e.id), None)
            found = _val_entry(m, g, passed, depth + 1) if passed is not None else None
            if found is not None:
                return found
        return None
    if type(e) is ast.Name:
        e = f.binding(e.id)
    if type(e) is not ast.Dict:
        return None
    for v in e.values:
        held = f.labels_of(v)
        if "VAL" in held and not held & {"TGTP", "TGATE", "TRAIN", "DIST"}:
            return f, v
        found = _val_entry(m, f, v, depth + 1) if type(v) in (ast.Dict, ast.Name) else None
        if found is not None:
            return found
    return None


def _stored_by_caller(m, f, save: ast.Call):
    """(caller, statement) where a caller puts the validation data that f saves into the
    object it hands f (`payload["prime"] = prime_tokens`, then `pack(payload)` and
    `torch.save(obj, buf)` in pack), or None: the data is then where f saves it."""
    arg = save.args[0] if save.args else None
    if type(arg) is not ast.Name or arg.id not in f.params:
        return None
    index = f.params.index(arg.id) - (1 if f.is_method else 0)
    for g, site in m.call_sites(f):
        passed = site.node.args[index] if 0 <= index < len(site.node.args) else None
        if type(passed) is not ast.Name or "VAL" not in g.labels_of(passed):
            continue
        for st in m.under(g, m.nodes_of(ast.Assign)):
            t = st.targets[0]
            if type(t) is ast.Subscript and type(t.value) is ast.Name and t.value.id == passed.id \
                    and "VAL" in g.labels_of(st.value):
                return g, st
    return None




_WRITES = {"write", "write_bytes"}


def _writes_val(f) -> bool:
    return any(e.kind == "call" and e.data["name"] in _WRITES and any("VAL" in a for a in e.data["args"]) for e in f.events)


def _compressed_and_written(m) -> list:
    """`lzma.compress(header + weights + val_ngrams.tobytes())`, whose result this function
    or a caller writes to a file (`f.write(blob)`): the artifact carries validation data.
    (Compressing validation text only to measure it, with nothing written, is not flagged.)"""
    out = []
    for f in m.functions.values():
        for ev in f.events:
            if ev.kind != "call" or ev.data["name"] != "compress" or not ev.data["args"]:
                continue
            held = ev.data["args"][0]
            if "VAL" not in held or held & {"TGTP", "TGATE", "TRAIN"}:
                continue  # (weights of a model updated from losses of both splits carry both: no stored tokens)
            callers = [g for g, _ in m.call_sites(f)]
            if _writes_val(f) or ("VAL" in f.ret and any(map(_writes_val, callers))):
                out.append(raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                               "compresses validation data (tokens, or a table built from them) into the blob that is "
                               "written as the artifact: the submission ships validation data"))
                break
    return out


_PREDICTIONS = {"argmax", "topk", "argsort"}


def check(m):
    stored = _stored_in_state(m)
    # `blob["prime"] = val[:n]` reported where it is stored: the helper that saves the blob it is
    # handed (`to_artifact(blob)`) repeats it, under no condition of its own
    saved = [r for r in _saved_in_artifact(m) if not (handed_val(m.functions[r.function]) and {s.function for s in stored}
                                                      & {g.qualname for g, _ in m.call_sites(m.functions[r.function])})
             and (r.function, r.line) not in {(s.function, s.line) for s in stored}]
    out = _kept_in_model(m) + _copied_into_buffer(m) + stored + saved + [
        r for r in _compressed_and_written(m) if not any(s.function == r.function for s in saved)]
    for f in m.functions.values():
        if f.qualname == "<module>" or not m.scores(f):
            continue
        for node in m.under(f, m.nodes_of(ast.Subscript)):
            if not isinstance(node.ctx, ast.Store):
                continue  # reading each row's entry at its target is how scores are read; writing one steers them
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else []
            if len(items) >= 2 and _positions(f, items[0]) and any(_stored(f.labels_of(x)) for x in items[1:]):
                ctx = next((e.ctx for e in f.events if node.lineno <= e.line <= node.end_lineno), None)
                out.append(raw(RULE, f, node, ctx, "error", "medium",
                               "picks one token per scored position from token data loaded from a file shipped with the "
                               "submission (validation tokens paid for in the artifact, used as predictions)"))
                break
    for f, ev in m.events("call"):
        if ev.data["name"] == "one_hot" and any(_stored(a) for a in ev.data["args"][:1]) and m.scores(f):
            out.append(raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                           "turns token data loaded from a file shipped with the submission into one-hot predictions "
                           "(validation tokens paid for in the artifact, used as answers)"))
    for f, ev in m.events("compare"):
        left, right = ev.data["left"], ev.data["right"]
        if any(type(n) is ast.Call and lb.call_name(n.func) in _PREDICTIONS for n in (ev.node.left, *ev.node.comparators)):
            continue  # `logits.argmax(-1) == y`: the model's guess (an accuracy), not tokens read from a file
        if ("TGT" in left and _stored(right)) or (_stored(left) and "TGT" in right):
            out.append(raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                           "compares the scored targets with token data loaded from a file shipped with the submission "
                           "(validation tokens paid for in the artifact)"))
    return out
