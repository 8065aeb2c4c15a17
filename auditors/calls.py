"""What calls with a meaning do in the data-flow pass (auditors.flow): list records,
backward passes, table writes and lookups, losses and distributions, ranges, clocks.

`special_call` is asked only for the names in SPECIAL; it records events on the
function's FuncInfo and returns the labels of the call, or None for an ordinary call.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors import shapes
from auditors.labels import DATA, EMPTY, KEYS

WRITE_METHODS = {"index_add_", "scatter_add_", "put_", "index_put_", "scatter_"}
TIME_FUNCS = ("perf_counter", "time", "monotonic", "time_ns")
FUNC_TRANSFORMS = frozenset({"grad", "grad_and_value", "vjp", "jacrev", "value_and_grad"})  # torch.func / functorch
TABLE_READS = frozenset({"get", "index_select", "take"})  # lookups by call, read like subscripts when keyed by a hash
INPLACE = frozenset({"index_put_", "index_add_", "scatter_add_", "scatter_", "put_", "copy_", "index_copy_"})
SPECIAL = frozenset({*INPLACE, "append", "extend", "insert", "appendleft", "backward", "grad", "at", "bincount", "gather",
                     "take_along_axis", "hash", "replace", *TABLE_READS,
                     *TIME_FUNCS, *WRITE_METHODS, *lb.CE_FUNCS, *lb.DIST_FUNCS, *lb.FRESH_FUNCS, *lb.RANGE_FUNCS})


def special_call(info, e: ast.Call, name: str, recv, args, kws, every, data) -> frozenset | None:
    """Calls whose name means something (records, losses, table writes, ranges): the
    labels they return, or None to treat them as ordinary calls."""
    if name in ("append", "extend", "insert", "appendleft") and isinstance(e.func, ast.Attribute):
        holder = lb.dotted(e.func.value)
        if holder:  # a list collects what is appended to it
            info.set_env(holder, every - KEYS)
            if name == "append" and len(e.args) == 1 and isinstance(e.args[0], ast.Tuple):
                elems = [info.L(x) for x in e.args[0].elts]  # a list of records: keep their fields apart
                old = info.elems.get(holder)
                info.elems[holder] = elems if not old or len(old) != len(elems) else [a | b for a, b in zip(old, elems)]
                if ("elems", holder) in info.read_own and info.elems[holder] != old:
                    info.clean = False
    if name == "replace" and isinstance(e.func, ast.Attribute) and len(e.args) >= 2 and recv & DATA \
            and all(type(a) is ast.Constant and isinstance(a.value, str) for a in e.args[:2]):
        new = lb.split_names(e.args[1].value)  # val_glob.replace("_val_", "_train_"): now the train split
        if new and lb.split_names(e.args[0].value):
            return (recv - DATA) | new
    if name in INPLACE and isinstance(e.func, ast.Attribute) and data:
        holder = lb.dotted(e.func.value)
        if holder:  # M.index_put_((x, y), ones, accumulate=True): M now holds counts of that data
            info.set_env(holder, data)
    if name == "at" and len(e.args) >= 2 and data:
        holder = lb.dotted(e.args[0])
        if holder:  # np.add.at(M, idx, 1)
            info.set_env(holder, EMPTY.union(*args[1:]) & DATA)
    if name == "backward" and isinstance(e.func, ast.Attribute):
        info.event("backward", e, {"loss": recv})
    if name == "grad" and args and lb.dotted(e.func) in ("torch.autograd.grad", "autograd.grad"):
        info.event("backward", e, {"loss": args[0]})
    if name in WRITE_METHODS and args and len(args) >= 2 and (args[1] | args[0]) & KEYS:
        info.event("write", e, {"key": args[1] | args[0], "value": every, "table": e.func.value})
    if name == "at" and lb.dotted(e.func) and lb.dotted(e.func).endswith("add.at") and len(args) >= 2:
        info.event("write", e, {"key": args[1], "value": every, "table": e.args[0]})
    if name == "bincount" and args and args[0] & KEYS:
        info.event("write", e, {"key": args[0], "value": every, "table": e})
        return frozenset({"CNT"}) | data
    if name in lb.CE_FUNCS:
        info.event("ce", e, {})
        return frozenset({"TGTP"}) | data
    if name in lb.DIST_FUNCS:
        return frozenset({"DIST"}) | data | (every & {"TGTP"})
    if name in ("gather", "take_along_axis"):
        idx = kws.get("index", kws.get("indices", args[-1] if args else EMPTY))
        src = recv if name == "gather" and isinstance(e.func, ast.Attribute) and len(args) <= 2 else (args[0] if args else EMPTY)
        if name == "take_along_axis" and len(args) >= 2:
            idx = args[1]  # np.take_along_axis(arr, indices, axis)
        if idx & {"TGT", "VAL", "TGTP"} and "CCNT" in src:
            return (src - {"CCNT"}) | {"CTGT"}
        if idx & KEYS:
            table = e.func.value if isinstance(e.func, ast.Attribute) and len(args) <= 2 else (e.args[0] if e.args else e)
            return info.table_read(e, table, src, idx)
        if "TGT" in idx:
            return frozenset({"TGTP"}) | data
        return src | idx
    if name in TABLE_READS:
        found = shapes.table_and_key(e, name, recv, args, kws)
        if found is not None and found[2] & KEYS:
            return info.table_read(e, *found)
    if name in TIME_FUNCS and (lb.dotted(e.func) or "").startswith("time"):
        return frozenset({"TIME"})
    if name in lb.FRESH_FUNCS:
        return EMPTY  # a new buffer or a size carries none of its arguments' data
    if name in lb.RANGE_FUNCS:
        if len(e.args) >= 2 and lb.plus_one(e.args[0]) and lb.plus_one(e.args[1]):
            return frozenset({"POS1"})
        return frozenset({"CAND"}) if len(e.args) <= 1 or not lb.plus_one(e.args[0]) else frozenset({"POS1"})
    if name == "hash" and isinstance(e.func, ast.Name):
        return frozenset({"HASH"}) | (every - KEYS)
    return None
