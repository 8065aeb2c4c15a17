"""Scoring decided by a property of the answer (RULES.md §2 C1, §3 future-token peeks).

A per-token table read at the target (`has_space[y]`, `is_word_start[val[t + 1]]`)
is how the byte count of a token is found, and that is fine. Used to decide *how the
token is scored* it is a peek: "apply the tilt (or the cache, or the second model) only
when the target starts a word" makes the distribution at position t depend on x_t,
which a causal predictor cannot know before the token is revealed. The rule flags

- `where(cond, a, b)` whose condition carries such a fact (TPROP) and one of whose
  branches is a distribution or a score of the target (DIST, TGTP): the tilted or
  the plain score, the normalizer or none;
- a mask made from it (a comparison, `~`, `&`) multiplying a score or a distribution,
  and a distribution changed in place where the mask is set (`out[has, h] += beta`);
- `if cond:` (or `a if cond else b`) whose test carries it (or asks whether the target
  is in a table row: `if y in row:`) and whose body replaces a
  score of the target with another one computed from it (`lp = lp + beta - log_z`), or
  sets what a later score reads (`hint[i], boost[i] = w, b`, then the tilted loss);
- a term switched by such a mask added to the target's score (`beta = b * (conf &
  starts_word[y])`, then `lp[y] + beta * (hint == y) - log_z`).

Legal counterparts: the same table read at the previous token (`has_space[prev]`,
known before x_t is revealed), byte counting with `has_space[y] & ~is_boundary[prev]`,
comparing the target with a hinted token (`boost = beta if y == hint else 0`, the
normalized tilt evaluated at y), and masking positions out of the average by a rule
that does not choose between two scores.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import shapes
from auditors.model import RuleInfo
from auditors.rules import guards_of, raw

RULE = RuleInfo("target-property-gate", "future_token_peek", "how a token is scored depends on a property of that token",
                "RULES.md §2 C1, §3")

_MESSAGE = ("{what} is decided by a per-token fact about the target (`{cond}`): the score of x_t then depends on "
            "x_t itself, which a causal predictor cannot know before the token is revealed")


_SCORED = frozenset({"TGTP", "DIST"})


def _chosen_hints(m, f) -> list:
    """`return where(starts_word[y], hint, -1)`: a helper that holds no distribution hands back
    a hint (or a setting) chosen per token by a fact about the target, and a distribution
    somewhere is built from such a fact."""
    if "TPROP" not in f.ret:
        return []
    for ev in f.events:
        node = ev.node
        if ev.kind == "call" and ev.data["name"] == "where" and len(node.args) == 3 \
                and "TPROP" in f.labels_of(node.args[0]) and ast.dump(node.args[1]) != ast.dump(node.args[2]) \
                and m.once("target facts in distributions", _shapes_distribution):
            return [raw(RULE, f, node, ev.ctx, "error", "medium", _MESSAGE.format(
                what="which hint (or setting) the scored distribution is built with", cond=ast.unparse(node.args[0])))]
    return []


def _shapes_distribution(m) -> bool:
    """A distribution somewhere is computed from a fact about the target: a softmax of it, or
    a function handed it that returns a distribution (the hint a helper chose by
    `starts_word[y]`, tilted into the distribution that is scored: `tilt(lp, hint, beta)`)."""
    for _, e in m.events("call"):
        if any("TPROP" in a for a in (*e.data["args"], *e.data["kws"].values())) and (
                e.data["name"] in lb.DIST_FUNCS or any("DIST" in m.functions[q].ret for q in m.targets(e))):
            return True
    return False


def _normalized_from_fact(m, f) -> list:
    """`z = calib(logits, starts_word[y])` (a temperature or a bias picked per token by the
    fact), then `log_softmax(z)`: the distribution the target is scored from is itself made
    with a fact about the target, though every row still sums to one."""
    for ev in f.events:
        if ev.kind == "call" and ev.data["name"] in lb.DIST_FUNCS and ev.node.args:
            fact = _fact_fed(f, ev.node.args[0], ev.line, 0)
            if fact is not None:
                return [raw(RULE, f, ev.node, ev.ctx, "error", "medium",
                            _MESSAGE.format(what="the distribution the target is scored from", cond=fact))]
    return []


def _fact_fed(f, e, line: int, depth: int) -> str | None:
    """The fact about the target that e is computed with: an argument of a call in it, an
    index into a table of settings, or the same through the last binding before `line` of a
    name it reads (three bindings deep)."""
    for n in lb.walk(e):
        if type(n) is ast.Call:
            fact = next((a for a in [*n.args, *(k.value for k in n.keywords)] if "TPROP" in f.labels_of(a)), None)
            if fact is not None:
                return lb.src(fact)
        elif type(n) is ast.Subscript and "TPROP" in f.labels_of(n.slice):
            return lb.src(n.slice)
        elif type(n) is ast.Name and depth < 3:
            bound = max((a for a in f.module.under(f, f.module.nodes_of(ast.Assign)) if a.lineno < line
                         and any(type(t) is ast.Name and t.id == n.id for t in a.targets)),
                        key=lambda a: a.lineno, default=None)
            fact = _fact_fed(f, bound.value, bound.lineno, depth + 1) if bound is not None else None
            if fact is not None:
                return fact
    return None


def _weight_read_ahead(m, f) -> list:
    """`alpha = gate(ent[:, 1:])`, then `(1 - alpha) * p_y + alpha * q_y`: the model's output at
    the next position was computed with x_t as its input, so a weight read one position ahead
    of the target it scores is a function of the target."""
    for node in m.under(f, m.nodes_of(ast.BinOp)):
        if type(node.op) is not ast.Mult:
            continue
        for w, p in ((node.left, node.right), (node.right, node.left)):
            if "TGTP" in f.labels_of(p) and not _ahead(m, f, p, 0) and (shift := _ahead(m, f, w, 0)) is not None:
                return [raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium",
                            f"the weight `{lb.src(w)}` is read one position ahead (`{shift}`) of the target it scores: "
                            "the model's output there was computed with the target as its input, so the mixture at "
                            "x_t depends on x_t")]
    return []


def _ahead(m, g, e, depth: int):
    """The shifted read (`ent[:, 1:]`) of a value made from the model's predictions that e holds,
    through bindings and the returns of helpers, or None."""
    for n in lb.walk(e):
        if type(n) is ast.Subscript and lb.shifted_slice(n.slice) and "DIST" in g.labels_of(n.value) \
                and "TGT" not in g.labels_of(n.value):
            return lb.src(n)
        if depth < 3 and type(n) is ast.Name:
            bound = g.binding(n.id)
            found = _ahead(m, g, bound, depth + 1) if bound is not None else None
            if found:
                return found
        if depth < 3 and type(n) is ast.Call:
            h = m.resolve(n.func, g)
            for r in m.under(h, m.nodes_of(ast.Return)) if h is not None and h is not g else ():
                found = _ahead(m, h, r.value, depth + 1) if r.value is not None else None
                if found:
                    return found
    return None


def _scores(f, node) -> bool:
    return "TGTP" in f.labels_of(node)


def _rescored(m, f, node: ast.If, per_token: bool = False) -> bool:
    """The body replaces a target's score, or the distribution it is read from, bound
    before the `if` with another one (`lp = lp + beta - log_z`, `nll = tilted(lg, y)`,
    `lp = boosted - logsumexp(boosted)`), not a count or a new list; per_token: also one
    token's entry of an array of target scores (`o[i] = (1 - w) * p[i] + w * q`)."""
    earlier = {t.id for a in m.under(f, m.nodes_of(ast.Assign)) if a.lineno < node.lineno
               for t in a.targets if type(t) is ast.Name}
    for st in node.body:
        for n in lb.walk(st):
            if type(n) is ast.Assign and f.labels_of(n.value) & _SCORED and any(
                    type(t) is ast.Name and t.id in earlier and f.lookup(t.id) & _SCORED for t in n.targets):
                return True
            if per_token and type(n) is ast.Assign and "TGTP" in f.labels_of(n.value) and any(  # `o[i] = mix(...)`
                    type(t) is ast.Subscript and type(t.value) is ast.Name and t.value.id in earlier
                    and "TGTP" in f.lookup(t.value.id) for t in n.targets):
                return True
            if type(n) is ast.AugAssign and type(n.op) is not ast.Add and type(n.target) is ast.Name \
                    and n.target.id in earlier and _scores(f, n.value):
                return True
    return False


def _target_member(f, test) -> bool:
    """`y in row` (`if r and y[i] in r:`): whether the target is among a table row's entries,
    a fact about the answer that picks, say, the back-off order whose count is read."""
    def row(e) -> bool:  # a table's row: `table[ctx]`, `table.get(ctx)`, or a name bound to one
        e = f.binding(e.id) if type(e) is ast.Name else e
        return type(e) is ast.Subscript or type(e) is ast.Call and lb.call_name(e.func) == "get"
    return any(type(c) is ast.Compare and len(c.ops) == 1 and type(c.ops[0]) in (ast.In, ast.NotIn) and row(c.comparators[0])
               and "TGT" in (held := f.labels_of(c.left)) and not held & {"RPOS", "CAND", "POS1"} for c in lb.walk(test))


def _sets_scoring(m, f, node: ast.If) -> bool:
    """The body sets what the score is computed from later (`hint[i], boost[i] = w, b`, then
    `return -(lp_t + where(hit, boost, 0) - log_z)`): a hint or strength given only to
    targets with the property. The test reads the table at the target itself (not a flag
    computed earlier, which may be a validity check or a count at the previous token)."""
    if not any(type(n) is ast.Subscript and "TGT" in f.labels_of(n.slice) for n in lb.walk(node.test)):
        return False
    stored = {t.value.id if type(t) is ast.Subscript and type(t.value) is ast.Name else t.id if type(t) is ast.Name else None
              for st in node.body for n in lb.walk(st) if type(n) is ast.Assign
              for tt in n.targets for t in (tt.elts if type(tt) is ast.Tuple else [tt])} - {None}
    later = [st for kind in (ast.Assign, ast.Return) for st in m.under(f, m.nodes_of(kind))
             if st.lineno > node.end_lineno and st.value is not None]
    return any(_scores(f, st.value) and stored & {n.id for n in lb.walk(st.value) if type(n) is ast.Name} for st in later)


def _switched(f, e, depth: int = 0) -> bool:
    """`e` holds a product with a mask made from a fact about the target (`beta *
    gate.float()`, gate = `conf & starts[y]`) or a choice by such a mask (`where(gate, b,
    0)`), directly or through the names it reads:
    a term switched on and off per token, not a count read at the target."""
    for n in lb.walk(e):
        if type(n) is ast.BinOp and type(n.op) is ast.Mult and any(
                shapes.is_mask(f, side) and "TPROP" in f.labels_of(side) for side in (n.left, n.right)):
            return True
        if type(n) is ast.Call and type(n.func) in (ast.Attribute, ast.Name) and (n.func.attr if type(n.func) is ast.Attribute
                                                                                else n.func.id) == "where" \
                and len(n.args) == 3 and "TPROP" in f.labels_of(n.args[0]):
            return True  # `beta = where(~starts_word[y], b, 0.0)`: on or off by the fact
        if type(n) is ast.Name and depth < 3:
            bound = f.binding(n.id)
            if bound is not None and _switched(f, bound, depth + 1) or bound is None and _switched_element(f, n.id, depth):
                return True
    return False


def _switched_element(f, name: str, depth: int) -> bool:
    """`hint, boost = expert.propose(prev, y)`: the element of what the method returns
    (`return hint, where(fire, self.boost, 0.0)`) that the name takes is switched by a fact."""
    return any(_switched(g, e, depth + 1) for g, e in f.module.unpacked_elements(f, name))


def _lookup_test(node: ast.If) -> bool:
    """`if b in counts: p = counts[b] / denom`: whether a table holds the target decides only
    how its probability is read from that table (PPM's escape to a shorter context), not
    which of two predictors scores it."""
    t = node.test
    if type(t) is not ast.Compare or len(t.ops) != 1 or type(t.ops[0]) not in (ast.In, ast.NotIn):
        return False
    table, key = ast.dump(t.comparators[0]), ast.dump(t.left)
    return any(type(n) is ast.Subscript and ast.dump(n.value) == table and ast.dump(n.slice) == key
               for st in node.body for n in lb.walk(st))


def check(m):
    out = []
    for f in m.functions.values():
        if f.qualname == "<module>":
            continue
        if not any(v & {"TGTP", "DIST"} for v in f.env.values()):  # no distribution or score of a target is held here
            out += _chosen_hints(m, f)
            continue
        out += _normalized_from_fact(m, f) + (_weight_read_ahead(m, f) if m.scores(f) else [])
        for ev in f.events:
            node = ev.node
            if ev.kind == "call" and ev.data["name"] == "where" and len(node.args) == 3 \
                    and "TPROP" in f.labels_of(node.args[0]) and any(f.labels_of(a) & {"DIST", "TGTP"} for a in node.args[1:]) \
                    and ast.dump(node.args[1]) != ast.dump(node.args[2]):
                out.append(raw(RULE, f, node, ev.ctx, "error", "medium",
                               _MESSAGE.format(what="which score (or normalizer) the target gets", cond=ast.unparse(node.args[0]))))
            if ev.kind == "call" and ev.data["name"] in ("logaddexp", "logaddexp2") and len(node.args) == 2 \
                    and any("TGTP" in f.labels_of(a) for a in node.args):
                # `logaddexp(log1p(-w) + lp_y, log(w) + lq[y])` with `w = lam * starts_word[y]`: the mixture's weight
                gate = next((n for a in node.args for n in lb.walk(a) if type(n) is ast.Name and "TPROP" in f.labels_of(n)), None)
                if gate is not None:
                    out.append(raw(RULE, f, node, ev.ctx, "error", "medium",
                                   _MESSAGE.format(what="the weight of the mixture that scores the target", cond=gate.id)))
        scores = m.scores(f) or ("TGTP" in f.ret and "DIST" not in f.ret and f.is_method)  # (or hands back the target's score)  # (a choice of byte strings for a byte-level model is accounting, not a score)
        for node in m.under(f, m.nodes_of(ast.If)) if scores else ():
            member = _target_member(f, node.test)
            if ("TPROP" in f.labels_of(node.test) or member) and not _lookup_test(node) \
                    and (_rescored(m, f, node, member) or _sets_scoring(m, f, node)):
                out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium",
                               _MESSAGE.format(what="whether the target's score is changed", cond=ast.unparse(node.test))))
        for node in m.under(f, m.nodes_of(ast.AugAssign)):
            t = node.target  # `out[has, h[has]] += beta`: the distribution changed only where the mask says
            if type(t) is ast.Subscript and "TPROP" in f.labels_of(t.slice) and f.labels_of(t.value) & {"DIST", "TGTP"}:
                out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium",
                               _MESSAGE.format(what="where the distribution is changed", cond=ast.unparse(t.slice))))
        for node in m.under(f, m.nodes_of(ast.BinOp)):
            if type(node.op) is ast.Mult:  # `log_z * has`, `nll * keep[y]`: a term switched on or off per token
                sides = f.labels_of(node.left), f.labels_of(node.right)
                for i in (0, 1):
                    if "TPROP" in sides[i] and sides[1 - i] & {"DIST", "TGTP"} and "TPROP" not in sides[1 - i] \
                            and shapes.is_mask(f, (node.left, node.right)[i]):
                        out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium", _MESSAGE.format(
                            what="whether this term counts", cond=ast.unparse((node.left, node.right)[i]))))
                        break
        for node in m.under(f, m.nodes_of(ast.BinOp)) if scores else ():
            if type(node.op) in (ast.Add, ast.Sub):  # `lp[y] + beta * (hint == y) - log_z`, beta switched by the fact
                sides = f.labels_of(node.left), f.labels_of(node.right)
                for i in (0, 1):
                    if "TGTP" in sides[i] and "TPROP" in sides[1 - i] and not sides[1 - i] & {"TGTP", "DIST"} \
                            and _switched(f, (node.left, node.right)[1 - i]):
                        out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium", _MESSAGE.format(
                            what="what is added to the target's score", cond=ast.unparse((node.left, node.right)[1 - i]))))
                        break
        for node in m.under(f, m.nodes_of(ast.IfExp)) if scores else ():
            if "TPROP" in f.labels_of(node.test) and _scores(f, node.body) and _scores(f, node.orelse):
                out.append(raw(RULE, f, node, guards_of(f, node.lineno), "error", "medium",
                               _MESSAGE.format(what="which of two scores the target gets", cond=ast.unparse(node.test))))
    return out
