"""Unpack packed code: `exec(lzma.decompress(base64.b85decode(b"...")))` and friends.

Records often ship `train_gpt.py` as a compressed blob that is executed at import
(RULES.md §11 "Packed code"; #1413, #1758). The auditor must read what runs, so an
expression is *evaluated* when, and only when, it is a chain of known pure decoders
applied to literals (or to names bound to literals, or through a one-line helper
`def unpack(s): return lzma.decompress(b85decode(s))`). Two kinds of expression are
tried: the argument of every `exec`/`eval`/`compile` call (under any alias:
`run = builtins.exec`), and every outermost decoder chain wherever it stands, kept
when what it decodes is a Python program. The second needs no runner at all, so a
runner the auditor cannot name (`getattr(__builtins__, "ex" + "ec")`, `types.FunctionType`)
hides nothing: a compressed literal that holds a program is audited as code.
Nothing from the file is ever executed: the decoders below are the only callables.
"""

from __future__ import annotations

import ast
import base64
import bz2
import gzip
import lzma
import zlib

from auditors.labels import call_name, walk

MAX_DEPTH = 4
MAX_OUTPUT = 2 * 1024 * 1024  # bytes a decode may produce: a packed script is a few hundred KB; more is a bomb


class TooLarge(Exception):
    """A payload decodes to more than MAX_OUTPUT bytes: it is reported, not audited."""

# (module, function) -> pure decoder
_DECODERS = {
    ("lzma", "decompress"): lzma.decompress,
    ("zlib", "decompress"): zlib.decompress,
    ("gzip", "decompress"): gzip.decompress,
    ("bz2", "decompress"): bz2.decompress,
    ("base64", "b64decode"): base64.b64decode,
    ("base64", "b85decode"): base64.b85decode,
    ("base64", "a85decode"): base64.a85decode,
    ("base64", "b32decode"): base64.b32decode,
    ("base64", "b16decode"): base64.b16decode,
    ("base64", "standard_b64decode"): base64.standard_b64decode,
    ("base64", "urlsafe_b64decode"): base64.urlsafe_b64decode,
    ("base64", "decodebytes"): base64.decodebytes,
}
_RUNNERS = {"exec", "eval", "compile"}
_BUILTIN_RUNNERS = {("builtins", r) for r in _RUNNERS} | {("__builtins__", r) for r in _RUNNERS}
_COMPRESSORS = (zlib.decompress, gzip.decompress, bz2.decompress)


class _NotLiteral(Exception):
    pass


_DECODER_NAMES = frozenset(f for _, f in _DECODERS)
_IMPORTERS = {"__import__", "import_module"}  # `_l = __import__("lzma")`, `importlib.import_module("lzma")`


def _import_table(nodes: list[ast.AST]) -> dict[str, tuple[str, str | None]]:
    """Local name -> (module, attribute or None) for the imports among `nodes`, and for
    names bound to an imported module or function (`_l = __import__("lzma")`,
    `d = lzma.decompress`, `run = builtins.exec`)."""
    table: dict[str, tuple[str, str | None]] = {}
    aliases = []
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                table[a.asname or a.name.split(".")[0]] = (a.name, None)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                table[a.asname or a.name] = (node.module, a.name)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            aliases.append((node.targets[0].id, node.value))
    for name, value in aliases:  # after the imports, which they refer to
        if isinstance(value, ast.Call) and call_name(value.func) in _IMPORTERS and value.args \
                and isinstance(value.args[0], ast.Constant) and isinstance(value.args[0].value, str):
            table[name] = (value.args[0].value, None)
        elif isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
            mod = table.get(value.value.id, (value.value.id, None))
            if mod[1] is None:
                table[name] = (mod[0], value.attr)
        elif isinstance(value, ast.Name) and value.id in _RUNNERS:
            table[name] = ("builtins", value.id)
        elif isinstance(value, ast.Call) and call_name(value.func) == "getattr" and len(value.args) == 2 \
                and isinstance(value.args[1], ast.Constant) and value.args[1].value in _RUNNERS:
            table[name] = ("builtins", value.args[1].value)  # getattr(builtins, "exec")
    return table


def _literal_names(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level names bound once to an expression (candidates for literal chains)."""
    bound: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            bound[node.targets[0].id] = node.value
    return bound


def _one_line_helpers(tree: ast.Module) -> dict[str, tuple[list[str], ast.expr]]:
    """Module-level functions whose body is one `return expr` (after a docstring): name ->
    (parameters, expr). A decode helper `def unpack(s): return lzma.decompress(...)` is
    evaluated with its arguments substituted."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.args.vararg and not node.args.kwarg:
            body = node.body[1:] if node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant) else node.body
            if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
                found[node.name] = ([a.arg for a in node.args.posonlyargs + node.args.args], body[0].value)
    return found


class _Evaluator:
    def __init__(self, tree: ast.Module, nodes: list[ast.AST]):
        self.nodes, self.names = nodes, _literal_names(tree)  # nodes: at least every Import, ImportFrom and Assign
        self.helpers = _one_line_helpers(tree)
        self._imports = None

    @property
    def imports(self) -> dict[str, tuple[str, str | None]]:
        """Built on first use: most files hold no literal chain and never need it."""
        if self._imports is None:
            self._imports = _import_table(self.nodes)
        return self._imports

    def decoder(self, func: ast.expr):
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            mod = self.imports.get(func.value.id, (func.value.id, None))
            if mod[1] is None:
                return _DECODERS.get((mod[0], func.attr))
        if isinstance(func, ast.Name) and func.id in self.imports:
            mod, attr = self.imports[func.id]
            return _DECODERS.get((mod, attr))
        return None

    def is_runner(self, func: ast.expr) -> bool:
        """exec / eval / compile, by name or by an alias of the builtin."""
        if isinstance(func, ast.Name):
            return func.id in _RUNNERS or (func.id in self.imports and self.imports[func.id] in _BUILTIN_RUNNERS)
        return isinstance(func, ast.Attribute) and func.attr in _RUNNERS and isinstance(func.value, ast.Name) \
            and self.imports.get(func.value.id, (func.value.id, None))[0] in ("builtins", "__builtins__")

    def decodes(self, node: ast.Call) -> bool:
        """The call is a decoder, or a one-line helper whose return holds one."""
        name = call_name(node.func)
        if name in _DECODER_NAMES or name in self.imports:
            return self.decoder(node.func) is not None
        if isinstance(node.func, ast.Name) and name in self.helpers:
            return any(isinstance(n, ast.Call) and call_name(n.func) in _DECODER_NAMES
                       for n in walk(self.helpers[name][1]))
        return False

    def value(self, node: ast.expr, depth: int = 0, scope: dict | None = None):
        if depth > 32:
            raise _NotLiteral
        if isinstance(node, ast.Constant) and isinstance(node.value, (bytes, str)):
            return node.value
        if isinstance(node, ast.Name) and scope and node.id in scope:
            return scope[node.id]
        if isinstance(node, ast.Name) and node.id in self.names:
            return self.value(self.names[node.id], depth + 1)  # a module name: outside any helper's scope
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.value(node.left, depth + 1, scope), self.value(node.right, depth + 1, scope)
            if type(left) is type(right):
                return left + right
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(e, depth + 1, scope) for e in node.elts]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "join" and len(node.args) == 1 and not node.keywords:
                sep, parts = self.value(func.value, depth + 1, scope), self.value(node.args[0], depth + 1, scope)
                if isinstance(parts, list) and all(type(p) is type(sep) for p in parts):
                    return sep.join(parts)  # "".join(["...", "..."]): a blob split over several literals
                if isinstance(parts, str) and isinstance(sep, str):
                    return sep.join(parts)  # "".join(blob): ("..." "...") is already one string
            if isinstance(func, ast.Attribute) and func.attr in ("decode", "encode") and not node.keywords:
                base = self.value(func.value, depth + 1, scope)
                enc = self.value(node.args[0], depth + 1, scope) if node.args else "utf-8"
                if func.attr == "decode" and isinstance(base, bytes):
                    return base.decode(enc)
                if func.attr == "encode" and isinstance(base, str):
                    return base.encode(enc)
            if isinstance(func, ast.Name) and func.id in self.helpers and not node.keywords:
                params, body = self.helpers[func.id]
                if len(node.args) == len(params):
                    args = [self.value(a, depth + 1, scope) for a in node.args]
                    return self.value(body, depth + 1, dict(zip(params, args)))
            dec = self.decoder(func)
            if dec is not None and len(node.args) == 1:
                arg = self.value(node.args[0], depth + 1, scope)
                options = {k.arg: self.option(k.value) for k in node.keywords}
                if dec is lzma.decompress:
                    return _bounded_lzma(arg, **options)
                if dec in _COMPRESSORS and not options:
                    return _bounded(dec, arg)
                if not options:
                    return dec(arg)
        raise _NotLiteral

    def option(self, node: ast.expr):
        """Literal keyword values of a decoder: lzma constants, numbers, lists, dicts."""
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, str, bytes, type(None))):
            return node.value
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            mod = self.imports.get(node.value.id, (node.value.id, None))
            if mod == ("lzma", None) and node.attr.isupper() and isinstance(getattr(lzma, node.attr, None), int):
                return getattr(lzma, node.attr)
        if isinstance(node, ast.Name) and node.id in self.names:
            return self.option(self.names[node.id])  # `filters=_f` with `_f = [{"id": L.FILTER_LZMA2, ...}]`
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            left, right = self.option(node.left), self.option(node.right)
            if isinstance(left, int) and isinstance(right, int):
                return left | right  # `9 | L.PRESET_EXTREME`
            raise _NotLiteral
        if isinstance(node, ast.List):
            return [self.option(e) for e in node.elts]
        if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
            return {self.option(k): self.option(v) for k, v in zip(node.keys, node.values)}
        raise _NotLiteral


def _bounded_lzma(data: bytes, format=lzma.FORMAT_AUTO, filters=None, memlimit=None) -> bytes:
    d = lzma.LZMADecompressor(format=format, memlimit=memlimit, filters=filters)
    out = d.decompress(data, max_length=MAX_OUTPUT)
    if len(out) >= MAX_OUTPUT:
        raise TooLarge
    return out


def _bounded(dec, data: bytes) -> bytes:
    if dec is zlib.decompress:
        d = zlib.decompressobj()
        out = d.decompress(data, MAX_OUTPUT)
    elif dec is gzip.decompress:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(data, MAX_OUTPUT)
    else:
        d = bz2.BZ2Decompressor()
        out = d.decompress(data, max_length=MAX_OUTPUT)
    if len(out) >= MAX_OUTPUT:
        raise TooLarge
    return out


_PROGRAM_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
                       ast.AugAssign, ast.AnnAssign, ast.For, ast.While, ast.If, ast.With, ast.Try)


def _is_program(text: str) -> bool:
    """Decoded text that is Python with at least one statement that does something (data
    such as JSON or a bare word parses as an expression and is not a program)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(st, _PROGRAM_STATEMENTS) or (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call))
               for st in tree.body)


def packed_payloads(source: str, tree: ast.Module | None = None, by_type: dict | None = None) -> list[tuple[int, str | None, bool]]:
    """[(line, decoded source, executed)] for each exec/eval/compile of a literal chain
    (executed) and each other outermost decoder chain of literals that decodes to a
    Python program; the source is None when the chain decodes to more than MAX_OUTPUT
    bytes. The same program found twice (`s = decompress(...)`, then `exec(s)`) is one.

    With the module's tree and its nodes by type, each list in `ast.walk` order (the audit
    engine has both), nothing is parsed or walked again."""
    if tree is None:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return []
    if by_type is None:
        by_type = {}
        for n in walk(tree):
            by_type.setdefault(type(n), []).append(n)
    ev = _Evaluator(tree, [n for kind in (ast.Import, ast.ImportFrom, ast.Assign) for n in by_type.get(kind, [])])
    out, inside, texts = [], set(), set()  # ids of the nodes under a decoded chain; the programs found
    for node in by_type.get(ast.Call, []):  # breadth first: an outer chain comes before the decoders inside it
        if id(node) in inside:
            continue
        name = call_name(node.func)
        if ev.is_runner(node.func):
            if not node.args:
                continue
            expr, executed = node.args[0], True
        elif (name in _DECODER_NAMES or name in ev.helpers or name in ev.imports) and ev.decodes(node):
            expr, executed = node, False
        else:
            continue
        try:
            payload = ev.value(expr)
        except TooLarge:
            inside.update(id(n) for n in walk(expr))
            out.append((node.lineno, None, executed))  # too large to read: the caller reports it
            continue
        except (_NotLiteral, ValueError, TypeError, lzma.LZMAError, zlib.error, OSError, EOFError, UnicodeError,
                RecursionError):
            continue  # the decoders inside may still be literal chains: `exec(compile(decompress(..), f, "exec"))`
        inside.update(id(n) for n in walk(expr))
        if isinstance(payload, (str, bytes)) and len(payload) > MAX_OUTPUT:
            out.append((node.lineno, None, executed))
            continue
        if isinstance(payload, bytes):
            try:
                payload = payload.decode("utf-8")
            except UnicodeDecodeError:
                continue
        if isinstance(payload, str) and payload not in texts and (executed or _is_program(payload)):
            texts.add(payload)
            out.append((node.lineno, payload, executed))
    return out


def layer_name(name: str, i: int) -> str:
    """Display name of the i-th payload (from 0) unpacked from the unit `name`."""
    return f"{name}[unpacked]" if i == 0 else f"{name}[unpacked#{i + 1}]"


def unpack_all(name: str, source: str, depth: int = 0) -> list[tuple[str, str]]:
    """[(display name, source)] of the code packed inside `source`, recursively.

    `train_gpt.py` packing another packed layer yields `train_gpt.py[unpacked]` and
    `train_gpt.py[unpacked][unpacked]`; several blobs in one file get `#2`, `#3`.
    """
    if depth >= MAX_DEPTH:
        return []
    found = []
    for i, (_line, payload, _run) in enumerate(p for p in packed_payloads(source) if p[1] is not None):
        label = layer_name(name, i)
        found.append((label, payload))
        found.extend(unpack_all(label, payload, depth + 1))
    return found
