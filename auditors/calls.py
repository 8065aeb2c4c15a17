"""What calls with a meaning do in the data-flow pass (auditors.flow): list records,
backward passes, table writes and lookups, losses and distributions, ranges, clocks.

`call_labels` is the pass's handler for every call expression: it records the call,
follows the module's functions and the functions passed as values, and asks
`special_call` about the names in SPECIAL, which records events on the function's
FuncInfo and returns the labels of the call, or None for an ordinary call.
"""

from __future__ import annotations

import ast
import re

from auditors import dispatch
from auditors import labels as lb
from auditors import shapes
from auditors.labels import DATA, EMPTY, INDEX_ONLY, KEYS, PARAM_SENSITIVE
from auditors.objects import keyed
from auditors.instance_lists import iterated_instances
from auditors.templates import pattern_splits

WRITE_METHODS = {"index_add_", "scatter_add_", "put_", "index_put_", "scatter_"}
TIME_FUNCS = ("perf_counter", "time", "monotonic", "time_ns")
FUNC_TRANSFORMS = frozenset({"grad", "grad_and_value", "vjp", "jacrev", "value_and_grad"})  # torch.func / functorch
TABLE_READS = frozenset({"get", "index_select", "take"})  # lookups by call, read like subscripts when keyed by a hash
DIGESTS = frozenset({"crc32", "adler32", "xxh32", "xxh64", "xxh3_64", "xxh32_intdigest", "xxh64_intdigest",
                     "xxh3_64_intdigest", "murmurhash3_32",  # non-cryptographic digests used as buckets
                     "md5", "sha1", "sha224", "sha256", "sha512", "blake2b", "blake2s"})  # (hashlib's: a bucket too, slower)
INPLACE = frozenset({"index_put_", "index_add_", "scatter_add_", "scatter_", "put_", "copy_", "index_copy_"})
_SHARED_PREFIX = re.compile(r"^fineweb[_\-]?$")
NAMESPACES = {"SimpleNamespace", "Namespace", "EasyDict", "AttrDict", "edict", "DotMap", "Box"}
_HEAP_PUTS = frozenset({"heappush", "heapreplace", "heappushpop", "insort", "insort_left", "insort_right"})
SPECIAL = frozenset({*INPLACE, *NAMESPACES, *_HEAP_PUTS, "startswith", "append", "extend", "insert", "appendleft", "update", "setdefault", "backward", "grad", "at", "bincount", "gather",
                     "take_along_axis", "hash", "replace", *TABLE_READS, *DIGESTS,
                     *TIME_FUNCS, *WRITE_METHODS, *lb.CE_FUNCS, *lb.DIST_FUNCS, *lb.FRESH_FUNCS, *lb.RANGE_FUNCS})


def special_call(info, e: ast.Call, name: str, recv, args, kws, every, data) -> frozenset | None:
    """Calls whose name means something (records, losses, table writes, ranges): the
    labels they return, or None to treat them as ordinary calls."""
    if name in ("append", "extend", "insert", "appendleft", "update", "setdefault") and isinstance(e.func, ast.Attribute) \
            and (name != "setdefault" or len(e.args) == 2):
        holder = lb.dotted(e.func.value)
        if name == "setdefault":  # `d.setdefault(key, value)` stores the value as `d[key] = value` would
            every = args[1]
            if holder and "." not in holder and type(e.args[0]) is ast.Constant and isinstance(e.args[0].value, str):
                info.module.keyed_roots.add(holder)
                info.set_env(keyed(holder, e.args[0].value), every - INDEX_ONLY)
        if holder and holder != "os.environ":  # a list collects what is appended to it (a dict what it is updated with)
            info.set_env(holder, every - KEYS)
            if name == "update" and "." not in holder:
                info.keyed_entries(holder, e)  # `CFG.update(val_names=[...])`: a constant key of its own
            root = holder.split(".")[0]
            if holder.startswith("self.") and holder.count(".") == 1 and every & DATA:
                info.add_attr_labels(holder[5:], every & DATA, info.cls)  # the object's list, seen by its methods
            elif root in info.params and every & DATA:  # `stream.files.append(shard)` on an object handed in
                info.param_effects[root] = info.param_effects.get(root, EMPTY) | (every & DATA)
            if name == "append" and len(e.args) == 1 and isinstance(e.args[0], ast.Tuple):
                elems = [info.L(x) for x in e.args[0].elts]  # a list of records: keep their fields apart
                old = info.elems.get(holder)
                info.elems[holder] = elems if not old or len(old) != len(elems) else [a | b for a, b in zip(old, elems)]
                if ("elems", holder) in info.read_own and info.elems[holder] != old:
                    info.clean = False
    if name in NAMESPACES:
        return info.namespace(e, every)
    if name == "startswith" and e.args and type(e.args[0]) is ast.Constant and isinstance(e.args[0].value, str) \
            and _SHARED_PREFIX.match(e.args[0].value):
        return recv | DATA  # `name.startswith("fineweb_")`: a prefix both splits' shard names share
    if name == "replace" and isinstance(e.func, ast.Attribute) and len(e.args) >= 2 and recv & DATA \
            and all(type(a) is ast.Constant and isinstance(a.value, str) for a in e.args[:2]):
        new = lb.split_names(e.args[1].value)  # val_glob.replace("_val_", "_train_"): now the train split
        if new and lb.split_names(e.args[0].value):
            return (recv - DATA) | new
    if name in INPLACE and isinstance(e.func, ast.Attribute) and data:
        holder = lb.dotted(e.func.value)
        if holder:  # M.index_put_((x, y), ones, accumulate=True): M now holds counts of that data
            info.set_env(holder, data)
            if holder.startswith("self.") and holder.count(".") == 1:
                info.add_attr_labels(holder[5:], data, info.cls)  # counts kept in the object, read by its other methods
    if name in _HEAP_PUTS and len(e.args) >= 2 and data:  # `heapq.heappush(self._heap, (loss, x, y))`: the heap holds it
        holder = lb.dotted(e.args[0])
        if holder:
            info.set_env(holder, EMPTY.union(*args[1:]) & DATA)
            if holder.startswith("self.") and holder.count(".") == 1:
                info.add_attr_labels(holder[5:], EMPTY.union(*args[1:]) & DATA, info.cls)
    if name == "at" and len(e.args) >= 2 and data:
        holder = lb.dotted(e.args[0])
        if holder:  # np.add.at(M, idx, 1)
            info.set_env(holder, EMPTY.union(*args[1:]) & DATA)
            if holder.startswith("self.") and holder.count(".") == 1:  # (the object's table, seen by its methods)
                info.add_attr_labels(holder[5:], EMPTY.union(*args[1:]) & DATA, info.cls)
    if name == "backward" and isinstance(e.func, ast.Attribute):
        info.event("backward", e, {"loss": _reaching_loss(info, e.func.value, recv)})
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
        ctx = info.ctx
        if not ctx.nograd and e.args and info.detached(e.args[0]):
            info.ctx = type(ctx)(ctx.guards, ctx.loops, True)  # logits computed under no_grad: this loss is a score
        info.event("ce", e, {})
        info.ctx = ctx
        return frozenset({"TGTP"}) | data
    if name in lb.DIST_FUNCS:
        return frozenset({"DIST"}) | data | (every & {"TGTP"})
    if name in ("gather", "take_along_axis") and not _collective(e.func):
        idx = kws.get("index", kws.get("indices", args[-1] if args else EMPTY))
        src = recv if name == "gather" and isinstance(e.func, ast.Attribute) and len(args) <= 2 else (args[0] if args else EMPTY)
        if name == "take_along_axis" and len(args) >= 2:
            idx = args[1]  # np.take_along_axis(arr, indices, axis)
        if idx & {"TGT", "VAL", "TGTP"} and ("CCNT" in src or (name == "gather" and "CNT" in src and "TCNT" not in src
                                                                and isinstance(e.func, ast.Attribute) and _raw_row(info, e.func.value))):
            # (a row of counts read by a context hash, `table[h].gather(1, y)`: the target's candidate count)
            return (src - {"CCNT", "CNT"}) | {"CTGT"}
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
        if found is not None and name == "take" and "TGT" in found[2] and not found[1] & lb.HOLDS_DATA and "TGTP" not in found[2]:
            return found[1] | (found[2] & lb.DATA) | {"TPROP"}  # `np.take(word_start, y)`: a fact about the answer
    if name in TIME_FUNCS and (lb.dotted(e.func) or "").startswith("time"):
        return frozenset({"TIME"})
    if name in lb.FRESH_FUNCS:
        return EMPTY  # a new buffer or a size carries none of its arguments' data
    if name in lb.RANGE_FUNCS:
        # `arange(s + 1 + k, s + n + 1)`: positions one ahead of a context
        return frozenset({"CAND"}) if len(e.args) <= 1 or not lb.shifted_one(e.args[0]) else frozenset({"POS1"})
    if (name == "hash" and isinstance(e.func, ast.Name)) or name in DIGESTS:
        return frozenset({"HASH"}) | (every - KEYS)  # hash(key), zlib.crc32(key.tobytes()), xxh64(...): a bucket
    return None


_POSITIONS = {"nonzero", "argwhere", "flatnonzero", "searchsorted"}
_PLAIN_BUILTINS = {"min", "max", "len", "int", "float", "abs", "range", "sorted", "list", "tuple", "zip", "enumerate",
                   "round", "bool", "str"}
_REDUCTIONS = {"sum", "mean", "max", "min"}
# calls that arrange or convert tokens without computing anything from them
_ARRANGES = frozenset({"pad", "stack", "cat", "concat", "concatenate", "hstack", "vstack", "column_stack", "roll", "flip",
                       "split", "chunk", "narrow", "repeat", "tile", "repeat_interleave", "unfold", "pad_sequence",
                       "tensor", "as_tensor", "from_numpy", "array", "asarray", "ascontiguousarray"})
_JOINS = frozenset({"cat", "concat", "concatenate", "hstack"})
_LOGS = frozenset({"log", "log2", "log10", "log1p"})
_COUNTS = frozenset({"CTGT", "CCNT", "CNT", "CSUM"})
# calls that keep a per-token fact per token (a mask stays a mask); any other call drops it
_SAME_VALUES = frozenset({"from_numpy", "ascontiguousarray"})  # (whatever their keywords)
_CONVERTS = _SAME_VALUES | {"as_tensor", "asarray", "tensor", "array"}
_SQUASHES = frozenset({"sigmoid", "expit", "tanh", "softsign", "hardsigmoid"})
_ENCODES = frozenset({"pack", "to_bytes", "from_bytes", "tobytes", "digest", "hexdigest", "encode", "join"})  # same values
_SELECTS = frozenset({"where", "maximum", "minimum", "clip", "clamp", "logical_and", "logical_or", "logical_not"})
_ELEMENTWISE = {"where", "logical_and", "logical_or", "logical_not", "bool", "int", "as_tensor", "tensor", "from_numpy",
                "asarray", "array"}


def _named_methods(info, call: ast.Call) -> list:
    """The methods of the receiver's classes whose names `getattr(obj, name)` may spell: a
    constant, or an f-string whose constant parts must appear in that order."""
    name = call.args[1]
    if type(name) is ast.Constant and isinstance(name.value, str):
        pattern = re.escape(name.value)
    elif type(name) is ast.JoinedStr and any(type(v) is ast.Constant for v in name.values):
        pattern = ".*".join(re.escape(v.value) if type(v) is ast.Constant else "" for v in name.values)
    else:
        return []
    m, rx = info.module, re.compile(f"^{pattern}$")
    classes = m._receiver_classes(call.args[0], info)
    return [m.functions[q] for c in classes for q in sorted(m.functions)
            if q.startswith(c + ".") and q.count(".") == 1 and rx.match(q[len(c) + 1:])]


def _scored_here(info, e, depth: int = 0) -> bool:
    """e is computed, in this function, from the target's score taken right here (a `gather`
    at the target, a per-token cross-entropy), not from a value that only carries that label
    through the flow (a model's hidden state in a file whose forward also returns a loss)."""
    for n in lb.walk(e):
        if type(n) is ast.Call and lb.call_name(n.func) in lb.CE_FUNCS:
            return True
        if type(n) is ast.Call and lb.call_name(n.func) in _TARGET_READS and type(n.func) is ast.Attribute \
                and "DIST" in info.labels_of(n.func.value) and any("TGT" in info.labels_of(a) for a in n.args):
            return True  # `logp.gather(1, y[:, None])`: a distribution read at the target
        if type(n) is ast.Name and depth < 3:
            bound = info.binding(n.id)
            if bound is not None and n.id in info.defs and _scored_here(info, bound, depth + 1):
                return True
    return False


_TARGET_READS = frozenset({"gather", "take_along_dim", "take_along_axis"})


def _reaching_loss(info, holder, labels: frozenset) -> frozenset:
    """`loss = model(x, y); loss.backward()` in a training loop, and `loss, bpb = evaluate(...)`
    below the loop: the labels of the binding that reaches the backward pass (the nearest
    one above it), not the union with a binding that comes only after the loop."""
    if type(holder) is ast.BinOp and type(holder.op) in (ast.Div, ast.Mult):
        # `(loss / accum).backward()`: the loss binding that reaches it, scaled
        return EMPTY.union(*[_reaching_loss(info, side, info.labels_of(side)) for side in (holder.left, holder.right)])
    if type(holder) is not ast.Name:
        return labels
    m, line = info.module, holder.lineno
    end = info.ctx.loops[-1].end_lineno if info.ctx.loops else line  # (a binding later in the loop reaches the next pass)
    above, later = None, False
    for a in m.once(("assignments by name", info.qualname), lambda m: _by_name(m.under(info, m.nodes_of(ast.Assign)))).get(
            holder.id, ()):
        if a.lineno > end:
            later = True
        elif a.lineno > line:
            return labels
        elif len(a.targets) == 1 and type(a.targets[0]) is ast.Name and (above is None or a.lineno > above.lineno):
            above = a
    if above is None or any(type(a.target) is ast.Name and a.target.id == holder.id and above.lineno < a.lineno < line
                            for a in m.under(info, m.nodes_of(ast.AugAssign))):
        return labels  # (`loss += aux` on the way: the union stays)
    loop = info.ctx.loops[-1] if info.ctx.loops else None
    if later or (loop is not None and above.lineno > loop.lineno and above.col_offset == _statement_column(info, holder, loop)):
        # (bound after the loop, or rebound at the top level of this loop's body before the backward: each
        # pass reads this iteration's binding, not one of another loop earlier in the function)
        return info.labels_of(above.value)
    return labels


def _by_name(assigns: list) -> dict[str, list]:
    """Name -> the assignments (in order) whose targets bind it."""
    out: dict[str, list] = {}
    for a in assigns:
        for name in {n.id for t in a.targets for n in lb.walk(t) if type(n) is ast.Name}:
            out.setdefault(name, []).append(a)
    return out


def _statement_column(info, node, loop) -> int:
    """The column of the statement of the loop's body that holds `node` (-1 when none)."""
    for st in loop.body:
        if st.lineno <= node.lineno <= st.end_lineno:
            return st.col_offset
    return -1


_BOUND_READS = {"get", "setdefault", "index_select", "gather", "take", "take_along_axis", "__getitem__"}


def _as_method_call(info, e: ast.Call, bound: ast.Attribute) -> ast.Call:
    """`lookup(key, 0)` with `lookup = table.get` read as `table.get(key, 0)` (one node per call,
    kept: every run records the same node)."""
    made = info.module._facts.setdefault("bound method calls", {})
    if id(e) not in made:
        made[id(e)] = (e, ast.copy_location(ast.Call(func=bound, args=e.args, keywords=e.keywords), e))
    return made[id(e)][1]


_OPERATORS = {"bitwise_xor": ast.BitXor, "bitwise_and": ast.BitAnd, "bitwise_or": ast.BitOr, "left_shift": ast.LShift,
              "right_shift": ast.RShift, "remainder": ast.Mod, "mod": ast.Mod, "fmod": ast.Mod, "multiply": ast.Mult,
              "add": ast.Add}
_ARRAY_MODULES = {"np", "numpy", "torch", "jnp", "cp"}


def call_labels(info, e: ast.Call) -> frozenset:
    """Labels of a call expression (`FuncInfo`'s handler for `ast.Call`): records the call
    event, follows the module's functions (their returns, as this call's arguments allow),
    functions passed as values and `partial`, and the calls with a meaning (`special_call`)."""
    func = e.func
    if type(func) is ast.Name and type(bound := info.binding(func.id)) is ast.Attribute and bound.attr in _BOUND_READS:
        return call_labels(info, _as_method_call(info, e, bound))  # `lookup = self.pair.get`; `lookup(key, 0)`
    is_method = type(func) is ast.Attribute
    name = func.attr if is_method else func.id if type(func) is ast.Name else ""  # lb.call_name, inlined: hot
    if name in _OPERATORS and len(e.args) == 2 and not e.keywords and (
            lb.dotted(func.value) in _ARRAY_MODULES if is_method else name not in info.module.by_name):
        # `np.bitwise_xor(h, y * P)`: the operator written as a function
        return info._binop(info.module.once(("operator", id(e)), lambda m: ast.copy_location(
            ast.BinOp(e.args[0], _OPERATORS[name](), e.args[1]), e)))
    recv = info.L(func.value) if is_method else info.L(func) if type(func) is ast.Call else EMPTY  # (`make(cfg)(x)`: make runs)
    args = [info.L(a) for a in e.args]
    kws = {k.arg: info.L(k.value) for k in e.keywords}
    every = EMPTY.union(*args, *kws.values())
    if info.cls and any(type(a) is ast.Name and a.id == "self" for a in e.args):
        every = every | _whole_instance(info)  # `pickle.dumps(asdict(self))`: every field of the object
    callee = info.module.resolve(e.func, info)
    also = ()
    if callee is None and type(func) is ast.Name and func.id in info.params:
        passed = info.module.passed_functions(info, func.id)  # `hook(lg, tg, x, nll)`: what callers pass as hook
        if passed:
            callee, also = passed[0], tuple(g.qualname for g in passed[1:])
    table_call = func if type(func) is ast.Subscript else info.binding(func.id) if type(func) is ast.Name and callee is None else None
    if callee is None and type(table_call) is ast.Subscript and type(table_call.slice) is not ast.Constant:
        # `TTT_PATHS[path](...)`, or `expert = EXPERTS[name]; expert(...)`: the entry the key picks, else every one
        reached = info.module.dispatched(info, table_call)
        if reached:
            callee, also = reached[0], tuple(g.qualname for g in reached[1:])
    elif callee is None and (type(func) in (ast.Name, ast.Subscript) or (is_method and type(func.value) is ast.Name)):
        callee = info.module.called_value(info, func)  # a callable held in a name or a dict slot
        bound = info.module.bound_arguments(info, func) if callee is not None else None
        if bound is not None:  # `rows = partial(slice_rows, val_tokens, n)`; `rows(k)`: the bound arguments come first
            given, fixed = bound
            args, kws = given + args, fixed | kws
            every = every.union(*given, *fixed.values())
        if callee is None and type(func) is ast.Name:
            held = info.binding(func.id)  # `run = cached if flag else plain; run(x)`, `for hook in hooks: hook(lg, view)`
            chosen = info.module.function_values(held) if type(held) is ast.IfExp else \
                info.module.made_functions(info, held) or iterated_instances(info.module, info, func.id)
            if chosen:
                callee, also = chosen[0], tuple(g.qualname for g in chosen[1:])
    elif callee is None and type(func) is ast.IfExp:
        chosen = info.module.function_values(func)  # `(sw_slot if SLOT else sw)(m, val)`
        if chosen:
            callee, also = chosen[0], tuple(g.qualname for g in chosen[1:])
    elif callee is None and type(func) is ast.Call and lb.call_name(func.func) == "getattr" and len(func.args) >= 2:
        named = _named_methods(info, func)  # `getattr(self, f"{src}_tokens")()`: each method the name may spell
        if named:
            callee, also = named[0], tuple(g.qualname for g in named[1:])
    elif callee is not None and is_method:
        also = tuple(q for q in info.module.overrides(info, func) if q != callee.qualname)  # `self.score(...)`: a subclass's too
    if callee is not None and callee.node.decorator_list:
        also = also + info.module.wrappers(callee)  # `@with_hint(table, b) def score(...)`: the wrapper runs instead
    data = {"name": name, "args": args, "kws": kws, "recv": recv, "callee": callee.qualname if callee else None}
    if also:
        data["also"] = also
    info.event("call", e, data)
    if callee is None and name in _APPLIES and len(e.args) >= (1 if name == "to_thread" else 2) \
            and type(e.args[0]) in (ast.Name, ast.Attribute):
        applied = _applied(info, e, name, args)
        if applied is not None:
            return applied
    data = every & DATA
    if (type(func) is not ast.Attribute or (info.module.transform_names and lb.dotted(func) in info.module.transform_names)) \
            and _is_grad_transform(info, func):
        # torch.func.grad(loss_fn)(params, batch): the gradient of loss_fn on these arguments
        info.event("backward", e, {"loss": every | info.L(func)})
    if name in SPECIAL:  # most calls are none of these: one set test instead of the chain
        out = special_call(info, e, name, recv, args, kws, every, data)
        if out is not None:
            return out
    if callee is not None:
        # labels that reach the return through parameters follow this call's arguments
        via_params = EMPTY.union(*callee.param_labels.values()) & PARAM_SENSITIVE
        if callee.defaults:  # a parameter left out passes its default
            passed = set(callee.params[len(e.args) + (callee.is_method and is_method):]) - set(kws)
            every = every.union(*[v for p, v in callee.defaults.items() if p in passed])
        info.read_shared.setdefault(("callee", callee), (callee.ret, via_params, tuple(sorted(callee.param_effects.items()))))
        if callee.param_effects:
            _hand_back_effects(info, e, callee, is_method)
        own = info._receiver_data(func.value, callee, recv) if is_method else EMPTY
        out = (callee.ret - via_params) | (every & via_params & callee.ret) | own
        if "TPROP" in out and "TGT" in via_params and not every & {"TGT", "TPROP"}:
            out = out - {"TPROP"}  # `starts[tokens]` of a helper some caller hands the targets: a fact about them only there
        if out & DATA and e.args:
            named = pattern_splits(callee, e, info)  # `shard_pattern(root, "train")` making `fineweb_*.bin`: both splits
            if named:
                out = (out - DATA) | named
        if also:  # `self.encode(sd)` may run a subclass's encode, `score(...)` its decorator's wrapper: their returns too
            for q in also:
                g = info.module.functions[q]
                via = EMPTY.union(*g.param_labels.values()) & PARAM_SENSITIVE
                info.read_shared.setdefault(("callee", g), (g.ret, via, tuple(sorted(g.param_effects.items()))))
                out = out | (g.ret - via) | (every & via & g.ret)
        return out
    if name == "sum" and ("CCNT" in (recv | every) or (is_method and "CNT" in recv and "TCNT" not in recv
                                                        and _raw_row(info, func.value))):
        return (recv | every) | {"CSUM"}
    if name in lb.BLOB_FUNCS and not data:
        return (every | recv) - INDEX_ONLY | {"BLOB"}  # bytes of a file shipped with the code
    uncounted = _COUNTS if name in _LOGS else EMPTY  # (a log-probability, a loss, is no count: dividing it by a
    # total normalizes nothing)
    if isinstance(e.func, ast.Attribute) and name in lb.PASS_METHODS:
        return (recv | (every - {"CAND"})) - ({"TPROP"} if name in _REDUCTIONS else EMPTY) - uncounted
    if name in _POSITIONS:
        return EMPTY  # where the mask holds (`(val == bos).nonzero()`): positions, not tokens
    if dispatch.dispatch_table(info, func) is not None \
            or (type(func) is ast.Name and type(info.binding(func.id)) in (ast.Lambda, ast.Subscript)):
        # a value called (`sources[kind]()`, `fetch = table[k]; fetch()`): a lambda returns what its body carried;
        # of a table, the entry its key defaults to (else every entry)
        entry = dispatch.dispatch_entry(info, func) if type(func) is ast.Subscript else None
        held = info.L(entry) if entry is not None else info.L(func)
        if held & KEYS and type(func) is ast.Name and type(info.binding(func.id)) is ast.Lambda:
            return ((every | recv) - INDEX_ONLY) | (held & KEYS)  # `key_of(a, b, t)`: a hash of its arguments
        recv = recv | (held & (DATA | {"BLOB"})) | dispatch.lambdas_applied(info, func, entry, args, kws)
        if None in kws:  # (`**kw` reaches the lambdas' parameters, not the result as such)
            every = EMPTY.union(*args, *[v for k, v in kws.items() if k is not None])
    elif callee is None and type(func) is ast.Name and func.id in info.params and func.id not in info.env:
        # `stream_fn()` handed a lambda: read through the name, so a rerun sees new parameter labels
        held = info.L(func)  # (read even while unseeded: the fixpoint must see the parameter change)
        recv = recv | ((held if func.id in info.param_labels else EMPTY) & (DATA | {"BLOB"}))
    elif callee is None and type(func) is ast.Name and func.id in info.env and func.id in _loop_variables(info):
        # `for k, pick in SOURCES.items(): Loader(pick(args))` over a table of lambdas: what they return
        recv = recv | (info.L(func) & DATA)
    if name == "sliding_window_view" and args:
        return args[0] - INDEX_ONLY  # windows of the array; the window length is a size, not data (nor candidates)
    if name in _CONVERTS and (len(e.args) == 1 and not e.keywords or name in _SAME_VALUES) or name in _ENCODES:
        return (every | recv) - {"CAND"}  # `torch.from_numpy(keys)`, `h.digest()`: the same values, a key stays a key
    if name == "int" and every & KEYS or name in ("list", "tuple") and len(e.args) == 1 and type(func) is ast.Name:
        return every  # `int(h.hexdigest()[:8], 16)`: a hash written as a number; `list(range(s + 1, e + 1))`: the same positions
    out = (every | recv) - INDEX_ONLY - uncounted
    out |= every & {"POS1"} if name in _JOINS else EMPTY  # `np.concatenate(seg_pos)`: target positions, joined
    if name in _SQUASHES and {"TGTP", "VAL"} <= every and not every & {"DIST"} and e.args and _scored_here(info, e.args[0]):
        out = out | {"TGATE"}  # `sigmoid(k * (nll_y - c))`: a soft switch set by the target's own loss
    if name not in _ELEMENTWISE:
        out = out - {"TPROP"}  # a fact about one token does not survive an unknown call
    if "TGT" in every and name not in _PLAIN_BUILTINS and name not in _ARRANGES and name not in _SELECTS:
        out = out | {"TGTP"}  # `model(x, y)`: a loss of the targets (`F.pad(y, ...)`: still the targets; `where(emit,
        # beta, 0)` picks between its branches, it computes no score)
    return out


def _loop_variables(info) -> frozenset:
    """Names a loop or comprehension of the function binds (computed once per function)."""
    if "_loop_vars" not in info.__dict__:
        m = info.module
        loops = [*m.under(info, m.nodes_of(ast.For)), *(g for kind in (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
                                                        for c in m.under(info, m.nodes_of(kind)) for g in c.generators)]
        info._loop_vars = frozenset(n.id for lp in loops for n in lb.walk(lp.target) if type(n) is ast.Name)
    return info._loop_vars


def _whole_instance(info) -> frozenset:
    """The data splits held in the fields of the object a method belongs to."""
    out = info.module.instance_data(info.cls)
    info.read_shared.setdefault(("instance", info.cls), out)  # (a rerun must see fields stored later)
    return out


_APPLIES = {"map", "starmap", "reduce", "filter", "imap", "to_thread"}  # (asyncio.to_thread(f, *args): f(*args))


def _applied(info, e: ast.Call, name: str, args: list) -> frozenset | None:
    """`map(term, items)`, `functools.reduce(step, items, init)`: a module function applied
    to the elements of the iterables. Recorded as a call of that function (so its
    parameters receive the elements, and what it trains or scores is this caller's), and
    its return is what the call gives back."""
    g = info.module.resolve(e.args[0], info)
    if g is None:
        return None
    if name == "reduce":  # step(acc, item): the accumulator starts as init and is then what step returns
        passed = [(args[2] if len(args) > 2 else args[1]) | g.ret, args[1]]
    elif name == "starmap":
        passed = [args[1]] * max(1, len(g.params))  # each item unpacked into the parameters
    else:
        passed = args[1:]
    info.event("call", e, {"name": g.name, "args": passed, "kws": {}, "recv": EMPTY, "callee": g.qualname})
    via = EMPTY.union(*g.param_labels.values()) & PARAM_SENSITIVE
    info.read_shared.setdefault(("callee", g), (g.ret, via, tuple(sorted(g.param_effects.items()))))
    items = EMPTY.union(*passed)
    return (items - INDEX_ONLY) | (g.ret - via) | (items & via & g.ret)  # (labels that follow parameters: per call)


def _collective(func) -> bool:
    """`dist.gather(t, out, dst=0)`, `torch.distributed.gather(...)`: tensors sent between
    processes, not values picked by an index."""
    d = lb.dotted(func) or ""
    return d.startswith(("dist.", "torch.distributed.", "distributed.", "asyncio."))  # (asyncio.gather: coroutines)


def _raw_row(info, e) -> bool:
    """e is a row read from a table as is (`table[h]`, or a name bound to it, possibly cast),
    not something computed from it (a smoothed probability, its log)."""
    for _ in range(3):
        if type(e) is ast.Name:
            e = info.binding(e.id)
        elif type(e) is ast.Call and type(e.func) is ast.Attribute and e.func.attr in ("float", "double", "astype", "to"):
            e = e.func.value
        else:
            break
    return type(e) is ast.Subscript


def _hand_back_effects(info, e: ast.Call, callee, is_method: bool) -> None:
    """Data the callee appended into an object it was handed (`refresh(loader.stream, pats)`
    with `stream.files.append(shard)`) now sits in the caller's object: in the argument
    and in the name it hangs from (`loader`, whose batches then carry it)."""
    params = callee.params[1:] if callee.is_method and is_method else callee.params
    for p, v in callee.param_effects.items():
        arg = next((k.value for k in e.keywords if k.arg == p), None)
        if arg is None and p in params and params.index(p) < len(e.args):
            arg = e.args[params.index(p)]
        held = lb.dotted(arg) if arg is not None else None
        if held:
            info.set_env(held, v)
            if "." in held and not held.startswith("self."):
                info.set_env(held.split(".")[0], v)


def _is_grad_transform(info, func) -> bool:
    """`grad(f)` called at once, or a name bound once to it (`g = grad(f); g(p, x)`)."""
    if type(func) is ast.Attribute:  # `self._gv = grad_and_value(self._loss)`, then `self._gv(w, x, y)`
        return lb.dotted(func) in info.module.transform_names
    if type(func) is ast.Name:
        if func.id not in info.module.transform_names:
            return False
        func = info.binding(func.id)
    return type(func) is ast.Call and lb.call_name(func.func) in FUNC_TRANSFORMS
