"""Target-gated hints in C/C++/CUDA kernels shipped with a submission (RULES.md §3).

The #1420 kernel family walks the validation stream one position at a time and, for
position t, writes an expert's hint (a token and a boost) that the Python side mixes
into the model's distribution for the token at t. The within-word and word-start
experts decided whether to emit that hint from the boundary / new-word flags of
`tokens[t]`, the very token being predicted (#1145 and #1967 `online_ngram_state.c`
L322-351, #2018, #2135): a C1 leak whatever the hint's normalization. The fix reads
the flags of `tokens[t-1]` (#1514, "CAUSAL FIX") and uses `tokens[t]` only to update
the state after the hint is written.

What this reads: in each `for` loop over positions, a value loaded from an array at the
loop's position (`tok = tokens[i]`, or `tokens_[p]` with `p = pos[i]`) is the current
token, unless the code uses it as a position itself (`p - 1`, `min(K, p)`). Taint
follows assignments, table lookups (`lut[tok]`), calls (a call given a tainted
argument may fill every variable passed to it) and element or member stores, in
statement order within one iteration. A store indexed by the position (`hints[i] =`)
whose value or enclosing condition is tainted is the finding; updates after the store
use the target legitimately and stay clean. Python decides whether the hints are used
(often switched off by default), so a finding's reachability is `unknown`. Comments,
strings and preprocessor lines are dropped first; nothing is compiled or run.
"""

from __future__ import annotations

import re
from pathlib import Path

from auditors.model import Finding, RuleInfo

RULE = RuleInfo("c-target-gated-hint", "future_token_peek",
                "kernel writes a position's hint from the token at that position",
                "RULES.md §3 (target-gated experts: #1145, #1967, #2018; fixed in #1514)")
SUFFIXES = {".c", ".cc", ".cpp", ".cxx", ".cu", ".h", ".hpp", ".cuh"}
MAX_FILE = 2 * 2**20

_TOKEN = re.compile(r"""
    (?P<ws>\s+) | (?P<comment>//[^\n]*|/\*.*?\*/) | (?P<str>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')
  | (?P<pre>\#[^\n]*) | (?P<id>[A-Za-z_]\w*) | (?P<num>\d[\w.]*)
  | (?P<op>->|\+\+|--|==|!=|<=|>=|&&|\|\||<<=|>>=|<<|>>|[-+*/%&|^]=|::|[^\s\w])
""", re.S | re.X)
_ASSIGN = {"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="}
_FLOATING = re.compile(r"\b(?:float|double|half|__half|__nv_bfloat16|bfloat16|float16)\s*(?:>\s*)?(?:const\s*)?[*&]*\s*(?:const\s+)?([A-Za-z_]\w*)")
_FLAG_ARRAYS = re.compile(r"\b(?:bool|uint8_t|int8_t|char)\s*(?:>\s*)?(?:const\s*)?[*&]+\s*(?:const\s+)?([A-Za-z_]\w*)"
                          r"|\b(?:bool|uint8_t|int8_t|char)\s+([A-Za-z_]\w*)\s*\[")
_OPEN, _CLOSE = {"(": ")", "[": "]", "{": "}"}, {")", "]", "}"}
_NOT_VARS = {"if", "else", "for", "while", "do", "return", "break", "continue", "const", "auto", "static",
             "unsigned", "signed", "int", "long", "short", "char", "bool", "float", "double", "void", "size_t",
             "sizeof", "true", "false", "nullptr", "NULL", "std", "struct", "case", "switch", "new", "delete"}


def tokenize(text: str) -> list[tuple[str, int]]:
    """(token, line), without comments, strings and preprocessor lines."""
    out, line = [], 1
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if m.lastgroup in ("id", "num", "op"):
            out.append((tok, line))
        line += tok.count("\n")
    return out


def _close(toks, i: int) -> int:
    depth = 0
    for j in range(i, len(toks)):
        if toks[j][0] in _OPEN:
            depth += 1
        elif toks[j][0] in _CLOSE:
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def parse_statement(toks, i: int):
    """(node, next index). Nodes: ("block", [nodes]), ("if", cond, then, else|None),
    ("loop", head, body), ("simple", tokens)."""
    if i >= len(toks):
        return ("simple", []), i
    tok = toks[i][0]
    if tok == "{":
        j, body = _close(toks, i), []
        k = i + 1
        while k < j:
            node, k = parse_statement(toks, k)
            body.append(node)
        return ("block", body), j + 1
    if tok in ("if", "for", "while") and i + 1 < len(toks) and toks[i + 1][0] == "(":
        j = _close(toks, i + 1)
        head = toks[i + 2:j]
        body, k = parse_statement(toks, j + 1)
        if tok != "if":
            return ("loop", head, body), k
        other = None
        if k < len(toks) and toks[k][0] == "else":
            other, k = parse_statement(toks, k + 1)
        return ("if", head, body, other), k
    if tok == "do":
        body, k = parse_statement(toks, i + 1)
        while k < len(toks) and toks[k][0] != ";":
            k += 1
        return ("loop", [], body), k + 1
    j, depth = i, 0
    while j < len(toks):
        t = toks[j][0]
        if t in _OPEN:
            depth += 1
        elif t in _CLOSE:
            if depth == 0:
                break
            depth -= 1
        elif t == ";" and depth == 0:
            break
        j += 1
    return ("simple", toks[i:j]), max(j + 1, i + 1)


def _names(toks) -> list[str]:
    """Variables an expression reads (identifiers that are not called, typed or members)."""
    out = []
    for k, (t, _) in enumerate(toks):
        if not (t[0].isalpha() or t[0] == "_") or t in _NOT_VARS:
            continue
        if k + 1 < len(toks) and toks[k + 1][0] in ("(", "::"):
            continue  # a function or a namespace
        if k > 0 and toks[k - 1][0] in (".", "->", "::"):
            continue  # a member name
        out.append(t)
    return out


def _position_evidence(toks) -> set[str]:
    """Names used as positions: offset by a literal (`p - 1`) or passed to min/max."""
    out = set()
    for k, (t, _) in enumerate(toks):
        if k + 2 < len(toks) and toks[k + 1][0] in ("+", "-") and toks[k + 2][0][0].isdigit():
            out.add(t)
        if t in ("min", "max") and k + 1 < len(toks) and toks[k + 1][0] == "(":
            out.update(_names(toks[k + 2:_close(toks, k + 1)]))
    return out


def _chain_starts(toks) -> set[str]:
    """Names whose load feeds a load that indexes again: `p` in `t = tok_[p]; ... lut[t]`.
    The start of such a chain is a position, its next link the token."""
    loads: dict[str, list[str]] = {}
    indexing = {toks[k + 2][0] for k in range(len(toks) - 3) if toks[k + 1][0] == "[" and toks[k + 3][0] == "]"}
    for k in range(1, len(toks)):
        if toks[k][0] != "=":
            continue
        end = next((j for j in range(k + 1, len(toks)) if toks[j][0] in (";", "{", "}")), len(toks))
        rhs = toks[k + 1:end]
        subs = [(a, i) for a, i in _subscripts(rhs) if len(i) == 1]
        if len(subs) == 1 and _pure_load(rhs, set(subs[0][1]), set()):  # v = X[u], casts allowed
            loads.setdefault(subs[0][1][0], []).append(toks[k - 1][0])
    return {u for u, vs in loads.items() if any(v in indexing for v in vs)}


def _position_arrays(toks) -> set[str]:
    """Arrays whose elements index another array (`tokens_[pos[p]]`): they hold positions."""
    return {toks[k + 2][0] for k in range(len(toks) - 3) if toks[k + 1][0] == "[" and toks[k + 3][0] == "["}


def _top_level(toks, ops) -> int | None:
    depth = 0
    for k, (t, _) in enumerate(toks):
        if t in _OPEN:
            depth += 1
        elif t in _CLOSE:
            depth -= 1
        elif depth == 0 and t in ops:
            return k
    return None


_LOGICAL = {"[", "]", "(", ")", "!", "&&", "||", "->", ".", "::", "==", "!=", "<", ">", "<=", ">="}
_STRONG = ("VALUE", "FLAG", "KEY", "S")


class _LoopTaint:
    """One pass over a position loop's body, in statement order (see the module docstring).

    Kinds of target dependence: S the current token itself; FLAG a property of it read
    from a table (`lut[tok]`) or a logical combination of such; KEY arithmetic or a call
    on it (a hash key, or the target's own probability: legitimate in a loss); VALUE what
    a table read through a KEY returns, or anything computed under a FLAG/VALUE condition
    or filled by a call that was given a target-dependent argument."""

    def __init__(self, var: str, evidence: set[str], position_arrays: set[str], floating: set[str], flags: set[str]):
        self.positions, self.evidence = {var}, evidence
        self.position_arrays, self.floating, self.flag_arrays = position_arrays, floating, flags
        self.taint: dict[str, tuple[str, str, str]] = {}  # name -> (kind, seed load, the name it came through)
        self.reported: set = set()
        self.hits: list[tuple[int, str, str]] = []  # (line, store, why)

    def find(self, names, kinds) -> tuple[str, str] | None:
        """(seed load, name) of the first name with one of these kinds of dependence."""
        return next(((self.taint[n][1], n) for n in names if n in self.taint and self.taint[n][0] in kinds), None)

    def run(self, node, gate: tuple[str, str] | None = None) -> None:
        kind = node[0]
        if kind == "block":
            for child in node[1]:
                self.run(child, gate)
        elif kind == "if":
            cond = self.find(_names(node[1]), ("FLAG", "VALUE"))
            inner = gate or ((cond[0], f"the condition on line {node[1][0][1]} (`{cond[1]}`)") if cond else None)
            self.run(node[2], inner)
            if node[3] is not None:
                self.run(node[3], inner)
        elif kind == "loop":
            self.run(("simple", node[1]), gate)
            self.run(node[2], gate)
        else:
            for part in _split(node[1], ";") if node[1] else []:
                self.simple(part, gate)

    def derive(self, rhs, gate: tuple[str, str] | None) -> tuple[str, str, str] | None:
        """(kind, seed load, through what) of an expression's target dependence, or None."""
        names = _names(rhs)
        q = _top_level(rhs, {"?"})
        chosen = self.find(_names(rhs[:q]), ("FLAG", "VALUE")) if q is not None else None
        keyed = self.find(_index_names(rhs), ("KEY",))
        if gate:
            return "VALUE", *gate
        if chosen:
            return "VALUE", chosen[0], f"a choice on `{chosen[1]}`"
        if (hit := self.find(names, ("VALUE",))):
            return "VALUE", hit[0], f"`{hit[1]}`"
        if keyed:
            return "VALUE", keyed[0], f"a table read at key `{keyed[1]}`"
        logical = all(t in _LOGICAL or t[0].isalnum() or t[0] == "_" for t, _ in rhs)
        counted = any(array not in self.flag_arrays and self.find(index, ("S", "FLAG"))
                      for array, index in _subscripts(rhs))  # the target's count or probability: scoring
        if logical and not counted and (hit := self.find(names, ("S", "FLAG"))):
            return "FLAG", hit[0], f"`{hit[1]}`"
        if (hit := self.find(names, _STRONG)):
            return "KEY", hit[0], f"`{hit[1]}`"
        return None

    def simple(self, toks, gate: tuple[str, str] | None) -> None:
        a = _top_level(toks, _ASSIGN)
        if a is None:  # a call: given a target-dependent argument, it may fill the others
            given = self.find(_names(toks), _STRONG)
            origin = gate or ((given[0], f"a call given `{given[1]}`") if given else None)
            for n in _names(toks) if origin else ():
                if n not in self.taint:
                    self.taint[n] = ("VALUE", *origin)
            return
        lhs, rhs = toks[:a], toks[a + 1:]
        if not lhs:
            return
        derived = self.derive(rhs, gate)
        if any(t in ("[", ".", "->") for t, _ in lhs):  # a store into an element or a member
            self.store(lhs, derived)
            return
        target = next((t for t, _ in reversed(lhs) if t not in _NOT_VARS and (t[0].isalpha() or t[0] == "_")), None)
        if target is None:
            return
        load = _pure_load(rhs, self.positions, self.position_arrays)
        if load and load[0] in self.floating:
            load = None  # probabilities or scores, not tokens
        if load and (target in self.evidence or load[0] in self.position_arrays):
            self.positions.add(target)
        elif load and not derived:
            self.taint[target] = ("S", f"{target} = {load[1]}", f"`{target}`")
        elif derived:
            self.taint[target] = derived
        else:
            self.taint.pop(target, None)

    def store(self, lhs, derived) -> None:
        base = next(iter(_names(lhs)), None)
        if derived is None:
            return
        bracket = next((k for k, (t, _) in enumerate(lhs) if t == "["), None)
        index = _names(lhs[bracket + 1:_close(lhs, bracket)]) if bracket is not None else []
        if derived[0] == "VALUE" and bracket == 1 and index and set(index) <= self.positions:
            if derived[1] not in self.reported:  # one finding per loop and current token
                self.reported.add(derived[1])
                text = " ".join(t for t, _ in lhs[:_close(lhs, 1) + 1]).replace(" [ ", "[").replace(" ]", "]")
                self.hits.append((lhs[0][1], text, f"{derived[2]}, which depends on `{derived[1]}`"))
        if base and (base not in self.taint or _STRONG.index(derived[0]) < _STRONG.index(self.taint[base][0])):
            self.taint[base] = derived


def _subscripts(toks) -> list[tuple[str, list[str]]]:
    """(array, names in its index) for each `array[...]` in an expression."""
    out = []
    for k in range(1, len(toks)):
        if toks[k][0] == "[" and (toks[k - 1][0][0].isalpha() or toks[k - 1][0][0] == "_"):
            out.append((toks[k - 1][0], _names(toks[k + 1:_close(toks, k)])))
    return out


def _index_names(toks) -> list[str]:
    """Names read inside subscripts: the keys of table reads."""
    out, k = [], 0
    while k < len(toks):
        if toks[k][0] == "[":
            end = _close(toks, k)
            out += _names(toks[k + 1:end])
            k = end
        k += 1
    return out


def _split(toks, sep: str) -> list:
    """Split a statement's tokens at top-level separators (a for-head's init; cond; step)."""
    parts, depth, cur = [], 0, []
    for tok in toks:
        if tok[0] in _OPEN:
            depth += 1
        elif tok[0] in _CLOSE:
            depth -= 1
        if tok[0] == sep and depth == 0:
            parts.append(cur)
            cur = []
        else:
            cur.append(tok)
    return parts + [cur] if cur else parts


def _pure_load(rhs, positions: set[str], position_arrays: set[str]) -> tuple[str, str] | None:
    """(array, text) when the value is just `X[p]` or `X[pos[p]]` with p a position,
    possibly inside casts (`uint16_t(...)`, `static_cast<T>(...)`, `(T)x`)."""
    k = next((k for k in range(len(rhs) - 1) if rhs[k + 1][0] == "["), None)
    if k is None or any(t not in ("(", "<", ">", "::") and not (t[0].isalpha() or t[0] == "_") for t, _ in rhs[:k]):
        return None
    end = _close(rhs, k + 1)
    if any(t != ")" for t, _ in rhs[end + 1:]):
        return None
    index = rhs[k + 2:end]
    if len(index) == 1 and index[0][0] in positions:
        pass
    elif len(index) == 4 and index[0][0] in position_arrays and index[1][0] == "[" and index[2][0] in positions:
        pass
    else:
        return None
    return rhs[k][0], " ".join(t for t, _ in rhs[k:end + 1]).replace(" [ ", "[").replace(" ]", "]")


def _loop_var(head) -> str | None:
    init = _split(head, ";")[0] if head else []
    a = _top_level(init, {"="})
    if a is None or a == 0:
        return None
    return init[a - 1][0]


def scan(text: str) -> list[tuple[int, str, str]]:
    """(line, store, origin) for each target-gated store in the source."""
    toks = tokenize(text)
    floating = set(_FLOATING.findall(text))
    flags = {a or b for a, b in _FLAG_ARRAYS.findall(text)}
    hits = {}
    for i, (t, _) in enumerate(toks):
        if t != "for" or i + 1 >= len(toks) or toks[i + 1][0] != "(":
            continue
        node, stop = parse_statement(toks, i)
        var = _loop_var(node[1])
        if var is None:
            continue
        body_toks = toks[_close(toks, i + 1) + 1:stop]
        taint = _LoopTaint(var, (_position_evidence(body_toks) | _chain_starts(body_toks)) - {var},
                           _position_arrays(body_toks), floating, flags)
        taint.run(node[2])
        for line, store, origin in taint.hits:
            hits.setdefault(line, (line, store, origin))
    return sorted(hits.values())


def check_c_kernels(root: Path) -> list[Finding]:
    from auditors.engine import collect_code

    out = []
    for path in collect_code(root, SUFFIXES):
        try:
            if path.suffix not in SUFFIXES or path.stat().st_size > MAX_FILE:
                continue
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        name = path.name if root.is_file() else str(path.relative_to(root))
        lines = text.splitlines()
        try:
            hits = scan(text)
        except RecursionError:
            continue  # nesting deeper than the parser follows: not read (no verdict either way)
        for line, store, origin in hits:
            out.append(Finding(RULE.id, RULE.tag, "error", "medium", "unknown",
                               "the Python side mixes these hints into the scored distribution", name, line,
                               f"`{store}`, written for the loop's position, is set through {origin}: the token at "
                               "that position, the one being predicted (prefix-only hints read tokens before it)",
                               RULE.reference, lines[line - 1].strip() if 0 < line <= len(lines) else ""))
    return out
