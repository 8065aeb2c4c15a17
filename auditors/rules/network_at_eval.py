"""Network access and downloads in the scored path (RULES.md §1.2, §10 "Downloads at startup").

Evaluation must be self-contained: no downloads, no network calls. Flags calls of
the download/network APIs (Hugging Face hub, urllib, requests, http.client, sockets,
torch.hub, `datasets.load_dataset`) and subprocess commands that run curl/wget (also
when the command list is built in a name first), and readers that fetch a remote address
they are handed (`np.genfromtxt(url)`, `pd.read_csv(url)`: a URL written in the code or
in a settings file the folder ships),
wherever they are reachable (#1707, #1814, #1873, #2098 download a re-tokenized val
set at module level), also when the module is imported at run time
(`importlib.import_module("huggingface_hub")`) and the function taken by `getattr`.
fsspec's openers fetch any URL, chained ones too (`"simplecache::hf://..."`). A reader
handed a value the code does not spell (`fsspec.open(spec.source)`) fetches what a
settings file sets: where a file the folder ships sets that key (`"source"`) to a remote
address, however deep, the call is an error (the value may travel through dataclasses,
registries and other modules on its way, so the key is looked up rather than followed). Reading files already on disk is not flagged.
A download whose arguments name the training split only, in a function that scores
nothing (fetching train shards before training), is a warning: data preparation. So is
any download in a script (`if __name__ == "__main__":`, or calls at its top level) that
neither trains nor scores anything (a `prepare_data.py` beside the training script): it runs before the record
run, and were it imported by a file that evaluates, the two files analysed together
make it an error. A module of definitions only, or a predictor of the submission API
(`load`/`score`/`observe`), is part of what it is imported into.
"""

from __future__ import annotations

import ast

from auditors import labels as lb
from auditors.flow import Ctx
from auditors.model import RuleInfo
from auditors.rules import raw

RULE = RuleInfo("network-at-eval", "network_at_eval", "download or network call", "RULES.md §1.2, §10 (#1707, #1814, #1873, #2098)")

NETWORK_CALLS = {"snapshot_download", "hf_hub_download", "urlopen", "urlretrieve", "create_connection",
                 "load_dataset", "load_state_dict_from_url", "download_url_to_file"}
NETWORK_MODULES = {"requests", "httpx", "urllib", "urllib.request", "http.client", "socket", "torch.hub", "aiohttp", "wget"}
MODULE_CALLS = {"get", "post", "request", "load", "connect", "urlopen", "download"}  # of NETWORK_MODULES
SHELL = {"run", "call", "check_call", "check_output", "Popen", "system"}
# readers that fetch a URL they are handed (numpy's DataSource, pandas' readers)
URL_READERS = {"genfromtxt", "loadtxt", "fromregex", "DataSource", "read_csv", "read_table", "read_json", "read_parquet",
               "read_pickle", "read_feather", "read_excel", "read_fwf"}
# fsspec's openers: any URL they are handed, chained (`simplecache::hf://...`) or not, is fetched
FSSPEC_READERS = {"open", "open_files", "open_local", "filesystem", "get_mapper", "url_to_fs", "get_fs_token_paths"}


def _command_parts(f, node: ast.Call) -> list:
    """The call and, for a command held in a name (`cmd = ["curl", url]; run(cmd)`), the
    expression that name was bound to (once, here, in an enclosing function or the module)."""
    parts = [node]
    for arg in node.args:
        bound = f.binding(arg.id) if isinstance(arg, ast.Name) else None
        if bound is not None:
            parts.append(bound)
    return parts


def _imported(f, expr) -> str | None:
    """The module an expression names when bound by `importlib.import_module("m")` or
    `__import__("m")` (here, in an enclosing function or at module level)."""
    bound = f.binding(expr.id) if type(expr) is ast.Name else expr
    if type(bound) is ast.Call and lb.call_name(bound.func) in ("import_module", "__import__") and bound.args \
            and type(bound.args[0]) is ast.Constant and isinstance(bound.args[0].value, str):
        return bound.args[0].value
    return None


def _resolved(f, node: ast.Call) -> tuple[str, str, str]:
    """(name, module, shown) of the called function, through `fn = getattr(mod, "name")`
    and modules imported by name at run time."""
    func = node.func
    if type(func) is ast.Name and func.id in _aliases(f.module):  # from huggingface_hub import snapshot_download as grab
        module, name = _aliases(f.module)[func.id]
        return name, module, f"{module}.{name}"
    if type(func) is ast.Name:
        bound = f.binding(func.id)
        if type(bound) is ast.Call and lb.call_name(bound.func) == "partial" and bound.args \
                and type(bound.args[0]) in (ast.Name, ast.Attribute):
            bound = bound.args[0]  # sh = functools.partial(subprocess.run, check=True): sh(...) runs subprocess.run
            if type(bound) is ast.Name:
                module, name = _aliases(f.module).get(bound.id, ("", bound.id))
                return name, module, f"{module}.{name}" if module else name
        if type(bound) is ast.Attribute:  # get = ur.urlopen
            base = _module_of(f, bound.value)
            return bound.attr, base, f"{base}.{bound.attr}"
        if type(bound) is ast.Call and lb.call_name(bound.func) == "getattr" and len(bound.args) >= 2 \
                and type(bound.args[1]) is ast.Constant and isinstance(bound.args[1].value, str):
            owner = bound.args[0]
            base = _imported(f, owner) or lb.src(owner)
            return bound.args[1].value, base, f"{base}.{bound.args[1].value}"
    dotted = lb.src(func)
    base = dotted.rsplit(".", 1)[0] if "." in dotted else ""
    if type(func) is ast.Attribute:
        base = _imported(f, func.value) or _module_of(f, func.value)
    return lb.call_name(func), base, dotted


def _module_of(f, expr) -> str:
    """The module an expression names: `ur` after `import urllib.request as ur`, else its text."""
    text = lb.src(expr)
    return _module_aliases(f.module).get(text, text)


def _module_aliases(m) -> dict[str, str]:
    """`import urllib.request as ur`: ur -> urllib.request, anywhere in the module."""
    return m.once("module aliases", lambda m: {a.asname: a.name for n in m.nodes_of(ast.Import) for a in n.names if a.asname})


def _aliases(m) -> dict[str, tuple[str, str]]:
    """Names imported under another name, anywhere in the module: alias -> (module, name)."""
    return m.once("import aliases", lambda m: {a.asname: (n.module or "", a.name) for n in m.nodes_of(ast.ImportFrom)
                                               for a in n.names if a.asname and a.asname != a.name})


_SUBMISSION_API = {"load", "score", "observe"}  # the harness's predictor: what it defines is the evaluation


def _prepares_only(m) -> bool:
    """A data-preparation script: run as a script (`if __name__ == "__main__":`, or calls at
    its top level), it trains and scores nothing and is no predictor of the submission
    API. (A helper module of definitions only is part of what imports it; one imported by
    a file that evaluates is judged with that file: see auditors.cross_file.)"""
    script = any((type(n) is ast.If and type(n.test) is ast.Compare and lb.src(n.test.left) == "__name__")
                 or (type(n) is ast.Expr and type(n.value) is ast.Call) for n in m.tree.body)  # (a main, or top-level calls)
    api = {q for q in m.functions if "." not in q} & _SUBMISSION_API
    return script and not api and not any(m.scores(g) or m.trains_any(g) for g in m.functions.values())


def check(m):
    out = []
    prep = None
    for f, ev in m.events("call"):
        node: ast.Call = ev.node
        name = ev.data["name"]
        if (name in URL_READERS or (name in FSSPEC_READERS and _resolved(f, node)[1] == "fsspec")) \
                and ev.data["callee"] is None and ev.data["args"]:
            if "URL" in ev.data["args"][0]:
                out.append(raw(RULE, f, node, ev.ctx, "error", "high", f"`{lb.src(node.func)}(...)` is handed a remote address "
                               "(a URL from the code or its settings) and fetches it; evaluation must be self-contained"))
            elif node.args and _setting_key(node.args[0]) and _resolved(f, node)[1] in ("fsspec", "np", "numpy", "pd", "pandas"):
                finding = raw(RULE, f, node, ev.ctx, "error", "medium", f"`{lb.src(node.func)}(...)` fetches the remote "
                              "address a settings file sets; evaluation must be self-contained")
                finding.setting = _setting_key(node.args[0])  # (kept only where a shipped settings file holds a URL there)
                out.append(finding)
            continue
        if name not in NETWORK_CALLS and name not in MODULE_CALLS and name not in SHELL:
            if type(node.func) is not ast.Name or (f.binding(node.func.id) is None and node.func.id not in _aliases(m)):
                continue  # no test below can pass: spare unparsing the callee
        name, base, dotted = _resolved(f, node)
        hit = name in NETWORK_CALLS or (base in NETWORK_MODULES and name in MODULE_CALLS)
        if hit and any(k.arg == "local_files_only" and _true(f, k.value) for k in node.keywords):
            continue  # `hf_hub_download(..., local_files_only=True)`: the local cache only, never the network
        if not hit and name in SHELL and base in ("subprocess", "os"):
            words = " ".join(str(c.value) for part in _command_parts(f, node) for c in lb.walk(part)
                             if isinstance(c, ast.Constant) and isinstance(c.value, str))
            hit = any(w in words.split() or w + " " in words for w in ("curl", "wget", "git clone", "huggingface-cli"))
        if hit:
            if prep is None:
                prep = _prepares_only(m)
            if prep:
                out.append(raw(RULE, f, node, ev.ctx, "warning", "medium",
                               f"`{dotted}(...)` reaches the network in a module that neither trains nor scores: data "
                               "preparation, fine before the record run, never during it"))
                continue
            named = frozenset().union(*ev.data["args"], *ev.data["kws"].values()) & lb.DATA
            if named == {"TRAIN"} and f.qualname != "<module>" and not m.scores(f):
                # fetching training shards in a function that scores nothing: data preparation
                out.append(raw(RULE, f, node, ev.ctx, "warning", "medium",
                               f"`{dotted}(...)` downloads training data; fine before training starts, but evaluation "
                               "must not depend on it and must not reach the network"))
                continue
            ctx = ev.ctx
            offline = next((k.value for k in node.keywords if k.arg == "local_files_only" and type(k.value) is not ast.Constant), None)
            if offline is not None:  # `local_files_only=offline` set by a setting: the network only where it is false
                ctx = Ctx(ctx.guards + ((offline, False),), ctx.loops, ctx.nograd)
            out.append(raw(RULE, f, node, ctx, "error", "high", f"`{dotted}(...)` reaches the network; evaluation must be self-contained"))
    return out


def _setting_key(arg) -> str | None:
    """The name a value handed to a reader goes by (`source`, `spec.source`, `cfg["source"]`):
    the key a settings file would set it under."""
    if type(arg) is ast.Name:
        return arg.id
    if type(arg) is ast.Attribute:
        return arg.attr
    if type(arg) is ast.Subscript and type(arg.slice) is ast.Constant and isinstance(arg.slice.value, str):
        return arg.slice.value
    return None


def _true(f, e) -> bool:
    """The literal True, or a name bound once to it (`offline = True`; not a setting a run may flip)."""
    if type(e) is ast.Name:
        e = f.binding(e.id)
    return type(e) is ast.Constant and e.value is True
