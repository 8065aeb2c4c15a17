"""Abstract values for the data-flow pass: which kinds of data an expression carries.

A label set says where a value came from, not what it is called, so aliasing, helper
functions and torch-vs-numpy spellings do not matter:

VAL / TRAIN  read from validation / training shards (a file pattern naming the split)
TGT          the realized target token(s) of a scored position
POS1         positions shifted one ahead of a context (`arange(a + 1, b + 1)`): tokens
             read at them are targets
TGTP         the model's probability / loss of the realized target (cross-entropy,
             `gather` of a distribution at the target)
DIST         a full predictive distribution (softmax / log_softmax / logits)
HASH         a multiplicative hash of tokens (`h ^= tok * prime`, `% buckets`)
EXTKEY       a hash extended by one more token: `ctx_hash ^ (tok * prime)`
RPOS         the variable of a Python loop over `range(...)` (and sums with it): one
             position at a time, so `stream[t + 1]` is the token after the context at t
CAND         a candidate range over the vocabulary (`arange(V)`): reading every
             candidate is how a legal, normalizable table lookup looks
CCNT / CTGT  counts read for every candidate / the candidate count picked at the target
CSUM         the sum of candidate counts (the normalizer of a proper distribution)
TGATE        a value decided by comparing the target's probability or loss with
             something (`p_tgt < thr`): a switch set by the answer
TPROP        a property of the target token read from a per-token table (`has_space[y]`):
             fine for counting its bytes, a peek when it decides how the token is scored
TIME         wall-clock readings and what is computed from them
BLOB         data decoded from a file that is neither a train nor a validation shard
CNT / TCNT   a value read from a hashed table with a context key / with a key that
             contains the target
STEM         the dataset's file-name stem with no split after it (`"fineweb"`, `data/fineweb_`):
             a wildcard written right after it (`f"{stem}_*.bin"`) matches both splits
URL          a remote address (`"https://huggingface.co/..."`, `hf://`, `s3://`) and what is made from it
"""

from __future__ import annotations

import ast
import re
from collections import deque
from functools import lru_cache

EMPTY: frozenset = frozenset()
KEYS = frozenset({"HASH", "EXTKEY"})
INDEX_ONLY = KEYS | {"POS1", "RPOS"}  # how a value indexes, not what it holds: lost in arithmetic and calls
NOT_COMPARED = INDEX_ONLY | {"CAND"}  # a comparison loses these and a candidate range
DATA = frozenset({"VAL", "TRAIN"})
# labels of values that hold data or scores themselves: indexing them is no per-token table lookup
HOLDS_DATA = frozenset({"VAL", "TRAIN", "TGT", "DIST", "TGTP", "CCNT", "CNT", "TCNT", "HASH", "EXTKEY"})
PARAM_SENSITIVE = frozenset({"VAL", "TRAIN", "TGT", "HASH", "EXTKEY"})  # passed through a helper: judged per call
_SPLIT_RE = {
    "VAL": re.compile(r"(^|[_/\-.*])val(id(ation)?)?([_\-.*/]|$)", re.I),
    "TRAIN": re.compile(r"(^|[_/\-.*])train([_\-.*/]|$)", re.I),
}
# Methods that return the same data in another dtype, device or shape.
PASS_METHODS = {
    "astype", "to", "long", "int", "float", "double", "half", "bfloat16", "reshape", "view",
    "flatten", "ravel", "cpu", "cuda", "numpy", "clone", "copy", "contiguous", "squeeze",
    "unsqueeze", "detach", "item", "tolist", "expand", "expand_as", "view_as", "t", "T",
    "transpose", "permute", "pin_memory", "type", "clamp", "clip", "clamp_min", "clamp_max",
    "sum", "mean", "exp", "neg", "log", "abs", "sqrt", "pow", "max", "min",
}
CE_FUNCS = {"cross_entropy", "nll_loss", "binary_cross_entropy"}
DIST_FUNCS = {"softmax", "log_softmax", "logsumexp"}
RANGE_FUNCS = {"arange", "range"}
BLOB_FUNCS = {"decompress", "frombuffer", "fromfile", "load", "loadtxt", "memmap", "read", "read_bytes"}
FRESH_FUNCS = {"numel", "size", "nelement", "dim", "zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like", "len", "Generator"}


URL = frozenset({"URL"})
_REMOTE = ("http://", "https://", "hf://", "s3://", "s3a://", "gs://", "gcs://", "az://", "abfs://", "ftp://",
           "sftp://", "ssh://", "github://", "git://", "ws://", "wss://")


def constant_labels(text: str) -> frozenset:
    """The labels of a string constant: the splits it names, and URL for a remote address,
    also as the last link of an fsspec chain (`"simplecache::hf://..."`)."""
    remote = text.startswith(_REMOTE) or ("::" in text and text.rsplit("::", 1)[-1].startswith(_REMOTE))
    return split_labels(text) | URL if remote else split_labels(text)


@lru_cache(maxsize=1 << 14)  # the same constants are read again on every pass
def split_labels(text: str) -> frozenset:
    """VAL/TRAIN for string constants that name a data split (file patterns, split names)."""
    if len(text) > 300:
        return EMPTY
    if _STEM.search(text):
        return STEM
    if not any(c in text for c in "/*.") and text.lower() not in ("val", "valid", "validation", "train"):
        if _SPLIT_LIST.match(text):  # `"train,val"`: a list of split names
            return frozenset(k for part in re.split(r"[,;:+|]", text) for k, rx in _SPLIT_RE.items() if rx.search(part.strip()))
        return EMPTY  # only file patterns, paths and split names; not env-var names or messages
    found = frozenset(k for k, rx in _SPLIT_RE.items() if rx.search(text))
    if not found and _BOTH_SPLITS.search(text):
        return DATA  # `fineweb_*.bin`: the wildcard stands where the split's name would, and matches both
    return found


_BOTH_SPLITS = re.compile(r"fineweb[_\-]?\*")
_STEM = re.compile(r"(^|/)fineweb[_\-]?$")
STEM = frozenset({"STEM"})


def wildcard_after_stem(parts: list[tuple[frozenset, object]]) -> bool:
    """Pieces of a string joined in order (labels, constant text or None): a piece naming the
    dataset's stem followed by text that opens with a wildcard (`{prefix}` + `_*.bin`)."""
    return any("STEM" in a and isinstance(b, str) and re.match(r"[_\-]?\*", b)
               for (a, _), (_, b) in zip(parts, parts[1:]))
_SPLIT_LIST = re.compile(r"^\s*(train|val|valid|validation)(\s*[,;:+|]\s*(train|val|valid|validation))+\s*$", re.I)


def split_names(text: str) -> frozenset:
    """The splits a fragment of a file name names (`_train_`, `val`), as a path edit uses it."""
    return frozenset(k for k, rx in _SPLIT_RE.items() if rx.search(text))


def param_defaults(args: ast.arguments) -> dict[str, ast.expr]:
    """Parameter name -> its default expression (positional and keyword-only)."""
    positional = args.posonlyargs + args.args
    pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
    return {a.arg: d for a, d in pairs}


def default_labels(args: ast.arguments) -> dict[str, frozenset]:
    """Parameters whose default names a data split (`pattern="data/fineweb_train_*.bin"`) or
    a remote address: a call that leaves them out reads that split (or that address)."""
    out = {}
    for name, d in param_defaults(args).items():
        if type(d) is ast.Call and call_name(d.func) in ("get", "getenv") and len(d.args) == 2:
            d = d.args[1]  # `stem=os.environ.get("DATA_STEM", "fineweb")`: the setting's default
        if type(d) is ast.Constant and isinstance(d.value, str):
            v = constant_labels(d.value)
            if v:
                out[name] = v
    return out


def call_name(func: ast.expr) -> str:
    """Last component of a called name: `F.cross_entropy` -> cross_entropy."""
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def dotted(node: ast.expr) -> str | None:
    """`self.a.b` -> "self.a.b"; None for anything that is not a plain dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def is_product(node: ast.expr) -> bool:
    """`a * b`, possibly wrapped in a dtype cast: the term of a multiplicative hash."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PASS_METHODS:
        node = node.func.value
    return isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.LShift))


def product_factors(node: ast.expr) -> list[ast.expr]:
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PASS_METHODS:
        node = node.func.value
    return [node.left, node.right] if isinstance(node, ast.BinOp) else [node]


def shifted_slice(index: ast.expr) -> bool:
    """`[1:]`, `[s + 1 : e + 1]`, `[..., 1:]`: the targets of a next-token window."""
    items = index.elts if isinstance(index, ast.Tuple) else [index]
    for it in items:
        if isinstance(it, ast.Slice) and it.lower is not None and it.step is None:  # (`d[1::2]`: every other item)
            lo = it.lower
            if isinstance(lo, ast.Constant) and lo.value == 1 and not _from_end(it.upper):
                return True  # (`t[1:-1]`, beside `t[:-2]` and `t[2:]`: the middle token of a trigram, a context)
            if isinstance(lo, ast.BinOp) and isinstance(lo.op, ast.Add) and isinstance(lo.right, ast.Constant) and lo.right.value == 1:
                if _looks_back(lo.left, it.upper):
                    continue  # [i - n + 1 : i]: the n - 1 tokens before position i, a context
                return True
            if it.upper is None and _after_context(lo):
                return True
    return False


def _from_end(upper) -> bool:
    return type(upper) is ast.UnaryOp and type(upper.op) is ast.USub and type(upper.operand) is ast.Constant \
        and upper.operand.value != 0


def _after_context(lower: ast.expr) -> bool:
    """`[order - 1:]`: the items after the first n - 1 of a stream, each the token that the
    n - 1 before it predict (the targets of order-n windows; n a setting, not a constant)."""
    return isinstance(lower, ast.BinOp) and isinstance(lower.op, ast.Sub) and isinstance(lower.right, ast.Constant) \
        and lower.right.value == 1 and type(lower.left) in (ast.Name, ast.Attribute)


def _looks_back(start: ast.expr, upper: ast.expr | None) -> bool:
    """start is `i - n` and the slice ends at `i` (or `i + 1`: the n tokens up to and
    including position i, `[i - n + 1 : i + 1]`, the context an order-n table reads)."""
    if not (isinstance(start, ast.BinOp) and isinstance(start.op, ast.Sub) and upper is not None):
        return False
    return ast.dump(start.left) == ast.dump(upper) or (plus_one(upper) and ast.dump(start.left) == ast.dump(upper.left))


def plus_one(node: ast.expr | None) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.right, ast.Constant) and node.right.value == 1


def shifted_one(node: ast.expr | None) -> bool:
    """A sum with a `+ 1` term anywhere in it: `a + 1`, `a + 1 + k`, `1 + a`."""
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        if any(type(t) is ast.Constant and t.value == 1 for t in (node.left, node.right)):
            return True
        node = node.left if isinstance(node.left, ast.BinOp) else node.right
    return False


# Fields that never hold a node a rule asks for: names and numbers, and the contexts
# (Load, Store) and operators, which rules read from their parent (`e.op`, `e.ctx`).
_SKIPPED_FIELDS = frozenset({"id", "attr", "arg", "name", "module", "level", "kind", "is_async", "conversion",
                             "type_comment", "tag", "ctx", "op", "ops"})
# Leaves that rules read from their parents, never look up by type: a third of a
# module's nodes, left out of the index (nodes_of refuses them).
UNINDEXED = (ast.Name, ast.Constant)
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def index_nodes(root: ast.AST) -> tuple[list, dict]:
    """(every node in `ast.walk` order except names, constants, contexts and operators;
    the same nodes by exact type)."""
    nodes = every_node(root, UNINDEXED)
    by_type: dict[type, list] = {}
    for n in nodes:
        kind = by_type.get(type(n))
        if kind is None:
            kind = by_type[type(n)] = []
        kind.append(n)
    return nodes, by_type


def every_node(root: ast.AST, leaves: tuple = (ast.Constant,)) -> list:
    """Every node under `root` (in `ast.walk` order) but contexts, operators and the leaf
    types given, in one pass that looks up each node type's child fields once: walking
    through `ast.iter_child_nodes` costs several times more on a whole module."""
    nodes = [root]
    fields_of = _CHILD_FIELDS
    node = ast.AST
    i = 0
    while i < len(nodes):
        n = nodes[i]
        i += 1
        t = type(n)
        fields = fields_of.get(t)
        if fields is None:
            fields = fields_of[t] = tuple(f for f in t._fields if f not in _SKIPPED_FIELDS)
        for field in fields:
            v = getattr(n, field, None)
            if type(v) is list:
                nodes.extend([x for x in v if type(x) not in leaves and isinstance(x, node)])
            elif v is not None and type(v) not in leaves and isinstance(v, node):
                nodes.append(v)
    return nodes


_WALKED_FIELDS: dict[type, tuple[str, ...]] = {}
# Fields that hold a name or a number, never a node: the walk need not look into them.
_TEXT_FIELDS = frozenset({"id", "attr", "arg", "name", "module", "level", "kind", "is_async", "conversion",
                          "type_comment", "tag"})


def walk(root: ast.AST):
    """The nodes of `ast.walk(root)`, in its order (contexts and operators included), at about
    half its cost: each node type's fields are looked up once, and fields that hold only
    names or numbers are skipped. The rules walk small subtrees hundreds of thousands of
    times per corpus, so this is a hot path."""
    todo = deque([root])
    fields_of, node, pop, push, more = _WALKED_FIELDS, ast.AST, todo.popleft, todo.append, todo.extend
    while todo:
        n = pop()
        t = type(n)
        fields = fields_of.get(t)
        if fields is None:
            fields = fields_of[t] = tuple(f for f in t._fields if f not in _TEXT_FIELDS)
        for field in fields:
            v = getattr(n, field, None)
            if type(v) is list:
                more([x for x in v if isinstance(x, node)])
            elif isinstance(v, node):
                push(v)
        yield n


@lru_cache(maxsize=1 << 16)
def src(node: ast.AST) -> str:
    """Source text of a node, computed once (nodes hash by identity)."""
    return ast.unparse(node)


def has_slice(index) -> bool:
    """The index takes a range (`x[a:b]`, `x[i, a:b]`), not single elements."""
    return type(index) is ast.Slice or (type(index) is ast.Tuple and any(type(e) is ast.Slice for e in index.elts))
