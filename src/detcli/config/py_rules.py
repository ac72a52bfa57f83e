"""What a `.py` config may not contain, and what to write instead: the refusal messages.

detcli reads MMDetection `.py` configs without running them, so every construct outside the
small data language of `py_eval` is refused with its file:line:column and a way around it.
"""

from __future__ import annotations

import ast
from typing import NoReturn

from detcli.errors import ConfigError

# A construct's name in messages, and what the user can write instead.
_REFUSED: dict[type[ast.AST], tuple[str, str]] = {
    ast.Import: ("an import", "Write the values out; a config never imports modules."),
    ast.ImportFrom: ("an import", "Write the values out; a config never imports modules."),
    ast.If: ("an `if` statement", "Write the value you want, or one config file per variant."),
    ast.For: ("a `for` loop", "Write the list or dict out."),
    ast.AsyncFor: ("a `for` loop", "Write the list or dict out."),
    ast.While: ("a `while` loop", "Write the values out."),
    ast.FunctionDef: ("a function definition", "Write the values out."),
    ast.AsyncFunctionDef: ("a function definition", "Write the values out."),
    ast.ClassDef: (
        "a class definition",
        "Register new components in a detcli plugin (see docs/plugins.md).",
    ),
    ast.With: ("a `with` statement", "Write the values out."),
    ast.AsyncWith: ("a `with` statement", "Write the values out."),
    ast.Try: ("a `try` statement", "Write the values out."),
    ast.Delete: ("a `del` statement", "Leave the name out of the file instead."),
    ast.Global: ("a `global` statement", "Assign the name at the top level."),
    ast.Nonlocal: ("a `nonlocal` statement", "Assign the name at the top level."),
    ast.Assert: ("an `assert` statement", "Remove it; `detcli check` validates configs."),
    ast.Raise: ("a `raise` statement", "Remove it."),
    ast.Return: ("a `return` statement", "Remove it."),
    ast.AugAssign: (
        "an augmented assignment (`x += ...`)",
        "Write `x = x + ...` (or the final value) instead.",
    ),
    ast.Lambda: ("a lambda", "Write the value it would compute."),
    ast.ListComp: ("a list comprehension", "Write the list out."),
    ast.SetComp: ("a set comprehension", "Write the list out."),
    ast.DictComp: ("a dict comprehension", "Write the dict out with dict(...)."),
    ast.GeneratorExp: ("a generator expression", "Write the list out."),
    ast.IfExp: ("a conditional expression (`a if c else b`)", "Write the value you want."),
    ast.Compare: ("a comparison", "Write the resulting True or False."),
    ast.BoolOp: ("an `and`/`or` expression", "Write the value you want."),
    ast.Subscript: (
        "a subscript (`x[...]`)",
        "Write the value out, or read a base file's variable as `_base_.name`.",
    ),
    ast.NamedExpr: ("an assignment expression (`:=`)", "Assign the name on its own line."),
    ast.Await: ("an `await` expression", "Write the value out."),
    ast.Yield: ("a `yield` expression", "Write the value out."),
    ast.YieldFrom: ("a `yield` expression", "Write the value out."),
    ast.Slice: ("a slice", "Write the list out."),
    ast.Set: ("a set (`{a, b}`)", "Use a list `[a, b]`; a config holds dicts, lists and scalars."),
}
if hasattr(ast, "Match"):  # Python >= 3.10
    _REFUSED[ast.Match] = ("a `match` statement", "Write the value you want.")

_WHY = "detcli reads .py configs without running them"


def where(source: str, node: ast.AST) -> str:
    """`file:line:column` of a node (1-based column, as editors count)."""
    line = getattr(node, "lineno", None)
    col = getattr(node, "col_offset", None)
    if line is None:
        return source
    return f"{source}:{line}:{(col or 0) + 1}"


def refuse(
    source: str, node: ast.AST, what: str | None = None, advice: str | None = None
) -> NoReturn:
    """Raise the ConfigError for a construct a `.py` config may not use."""
    default_what, default_advice = _REFUSED.get(type(node), (None, None))
    what = what or default_what or f"this Python construct ({type(node).__name__})"
    advice = advice or default_advice or "Write the value out with literals and dict(...)."
    raise ConfigError(
        f"{where(source, node)}: {what} is not allowed in a config ({_WHY}). {advice}"
    )


def lazy_config_error(source: str, node: ast.AST) -> ConfigError:
    """The error for mmengine's new-style lazy configs (`with read_base(): from ... import *`)."""
    return ConfigError(
        f"{where(source, node)}: this is mmengine's new-style lazy config (`read_base()` with "
        "imports), which only works by importing and running Python modules; detcli reads .py "
        "configs without running them. Write the file in the classic style (`_base_ = [...]` "
        "with dict(...) values), or convert the lazy config by hand to YAML."
    )


def custom_imports_error(source: str, node: ast.AST) -> ConfigError:
    """The error for `custom_imports`: modules named in a config are never imported."""
    return ConfigError(
        f"{where(source, node)}: `custom_imports` asks to import Python modules, and detcli "
        "never imports code named in a config. Make those modules a detcli plugin (a pip "
        "package whose components register themselves; see docs/plugins.md), install it, and "
        "remove `custom_imports` from the config."
    )


def syntax_error(source: str, exc: SyntaxError) -> ConfigError:
    """The Python syntax error of a `.py` config, located at its file:line:column."""
    loc = source
    if exc.lineno is not None:
        loc += f":{exc.lineno}" + (f":{exc.offset}" if exc.offset else "")
    return ConfigError(
        f"{loc}: Python syntax error: {exc.msg}. Fix the file at that line and column."
    )
