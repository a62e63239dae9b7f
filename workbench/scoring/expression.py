"""A small, restricted Python expression language for the `python` scorer.

    {type: python, expr: "len(output) < 200 and 'sorry' not in output.lower()"}

Why an interpreter and not `eval` with empty builtins: every known `eval` sandbox escape
walks attributes (`().__class__.__bases__[0].__subclasses__()`), reaches a frame or a
format string. Here the expression is parsed with `ast`, checked against a whitelist of
node types, and then *interpreted* node by node by the code below; Python's own `eval`
never runs. So:

- Names resolve only to the variables we pass in, comprehension variables and a fixed
  set of builtins (`BUILTINS`). There is no `getattr`, `eval`, `open`, `__import__`,
  `format`, `type` or `vars`.
- Attributes exist only as method calls, looked up in a per-type whitelist
  (`METHODS`) by the exact type of the receiver; a name starting with `_` is refused
  when parsing. `str.format` / `format_map` are not on the list (`'{0.__class__}'`).
- Values are plain data: the variables are copied into str/int/float/bool/None/list/
  dict before evaluation, so no object with interesting attributes is ever reachable.
- Resources are bounded in two layers. Inside the interpreter: every node costs a step
  (`MAX_STEPS`), a wall-clock deadline is checked on every step, and operations that can
  allocate a lot (`*`, `+`, `**`, `str()`, `join`, `replace`) check the size of their result
  *before* computing it, so `'a' * 10**10` and `9**9**9` fail fast; everything an evaluation
  creates is charged in bytes (integers by their bit length, strings and lists by their size,
  lists returned by calls with their elements) against `MAX_ALLOCATED`, so
  `[output * 999 for c in output]` stops after a few copies. Those are estimates and a single
  builtin (`sorted` of millions of items) cannot be interrupted, so:
- Evaluation runs in a sandbox process (`evaluate`), a fresh interpreter with an empty
  environment (no keys to read), an address-space limit (`RLIMIT_AS`, `SANDBOX_MEMORY_MB`) and a
  CPU-time limit per evaluation; the caller kills it when the wall clock passes the timeout
  plus `KILL_GRACE_S`. Processes are kept in a small pool and reused across rows (about a
  millisecond per evaluation instead of a process start); one that was killed or ran out of
  memory is replaced.
- `re_search` / `re_findall` use the `regex` package with its timeout, so a catastrophic
  pattern ends at the deadline instead of hanging the scorer.
"""

from __future__ import annotations

import ast
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

MAX_STEPS = 1_000_000
MAX_SIZE = 10_000_000  # characters in a string, elements in a container, deep size for str()
MAX_ALLOCATED = 200_000_000  # bytes created over a whole evaluation
SANDBOX_MEMORY_MB = 512  # address space of a sandbox process (a fresh interpreter uses ~20 MB)
KILL_GRACE_S = 0.5  # past the timeout before the sandbox process is killed
MAX_REPLY_BYTES = 32_000_000
POOL_IDLE = 4  # idle sandbox processes kept for reuse
MAX_INT_BITS = 100_000
DEFAULT_TIMEOUT = 1.0
MAX_EXPRESSION_CHARS = 5_000


class ExpressionError(ValueError):
    """The expression is not allowed, or failed while running; the message is shown to users."""


def _regex_call(kind, pattern, text, flags, ev):
    import regex

    if not isinstance(pattern, str) or not isinstance(text, str):
        raise ExpressionError(f"re_{kind}(pattern, text) takes two strings")
    flag_bits = regex.IGNORECASE if flags in ("i", "I") else 0
    timeout = max(0.001, ev.deadline - time.monotonic())
    try:
        if kind == "search":
            match = regex.search(pattern, text, flag_bits, timeout=timeout)
            return match.group(0) if match else None
        found = regex.findall(pattern, text, flag_bits, timeout=timeout)
        return [list(item) if isinstance(item, tuple) else item for item in found]
    except TimeoutError:
        raise ExpressionError("the regular expression took too long") from None
    except regex.error as exc:
        raise ExpressionError(f"bad regular expression {pattern!r}: {exc}") from None


def _sum(values, start=0):
    values = list(values)
    if not all(type(v) in (int, float, bool) for v in [*values, start]):
        raise ExpressionError("sum() only adds numbers")
    return sum(values, start)


BUILTINS = {
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "sum": _sum,
    "any": any,
    "all": all,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "sorted": sorted,
    "set": set,
    "list": list,
    "tuple": tuple,
    "dict": dict,
}
HELPERS = {"re_search", "re_findall"}  # implemented in _Evaluator._Call

STR_METHODS = {
    "lower",
    "upper",
    "strip",
    "lstrip",
    "rstrip",
    "startswith",
    "endswith",
    "split",
    "rsplit",
    "splitlines",
    "count",
    "find",
    "rfind",
    "index",
    "rindex",
    "replace",
    "join",
    "title",
    "capitalize",
    "casefold",
    "isdigit",
    "isalpha",
    "isalnum",
    "isspace",
    "islower",
    "isupper",
    "isnumeric",
    "isdecimal",
    "istitle",
    "partition",
    "rpartition",
    "removeprefix",
    "removesuffix",
}
METHODS = {
    str: STR_METHODS,
    dict: {"get", "keys", "values", "items"},
    list: {"count", "index"},
    tuple: {"count", "index"},
}
ALL_METHODS = set().union(*METHODS.values())

ALLOWED_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.BinOp,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.Constant,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.keyword,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.BitAnd,
    ast.BitOr,
    ast.BitXor,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
)
NODE_HINTS = {
    ast.Lambda: "lambda is not allowed",
    ast.NamedExpr: "':=' is not allowed",
    ast.JoinedStr: "f-strings are not allowed; use + and str()",
    ast.Starred: "'*' unpacking is not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.LShift: "'<<' is not allowed",
    ast.RShift: "'>>' is not allowed",
    ast.MatMult: "'@' is not allowed",
    ast.Invert: "'~' is not allowed",
}


@dataclass(frozen=True)
class Expression:
    """A parsed and checked expression, ready to evaluate many times."""

    source: str
    tree: ast.Expression


def _node_error(node: ast.AST, message: str) -> ExpressionError:
    col = getattr(node, "col_offset", None)
    return ExpressionError(f"{message} (at column {col + 1})" if col is not None else message)


def _bound_names(target: ast.AST) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Tuple):
        names = set()
        for element in target.elts:
            names |= _bound_names(element)
        return names
    raise _node_error(target, "a comprehension variable must be a name or a tuple of names")


def _check(node: ast.AST, names: set[str]) -> None:
    """Walk the tree with the set of visible names; raise ExpressionError on anything not allowed."""
    if not isinstance(node, ALLOWED_NODES):
        hint = NODE_HINTS.get(type(node)) or f"{type(node).__name__} is not allowed"
        raise _node_error(node, hint)
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise _node_error(node, f"names starting with '_' are not allowed: {node.id}")
        if isinstance(node.ctx, ast.Load) and node.id not in names:
            raise _node_error(node, f"unknown name {node.id!r}; available: {', '.join(sorted(names))}")
        return
    if isinstance(node, ast.Attribute):
        raise _node_error(
            node, f"attribute access is not allowed (.{node.attr}); only method calls such as output.lower() are"
        )
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (str, int, float, bool, type(None))):
            raise _node_error(node, f"{type(node.value).__name__} literals are not allowed")
        return
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            if func.id not in BUILTINS and func.id not in HELPERS:
                raise _node_error(
                    func,
                    f"calling {func.id!r} is not allowed; allowed functions: "
                    f"{', '.join(sorted([*BUILTINS, *HELPERS]))}",
                )
        elif isinstance(func, ast.Attribute):
            if func.attr.startswith("_"):
                raise _node_error(func, f"names starting with '_' are not allowed: .{func.attr}")
            if func.attr not in ALL_METHODS:
                raise _node_error(func, f"method .{func.attr}() is not allowed")
            _check(func.value, names)
        else:
            raise _node_error(func, "only named functions and methods can be called")
        for arg in node.args:
            _check(arg, names)
        for keyword in node.keywords:
            if keyword.arg is None:
                raise _node_error(keyword.value, "'**' unpacking is not allowed")
            _check(keyword.value, names)
        return
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        scope = set(names)
        for generator in node.generators:
            if generator.is_async:
                raise _node_error(node, "async comprehensions are not allowed")
            _check(generator.iter, scope)
            scope |= _bound_names(generator.target)
            for condition in generator.ifs:
                _check(condition, scope)
        if isinstance(node, ast.DictComp):
            _check(node.key, scope)
            _check(node.value, scope)
        else:
            _check(node.elt, scope)
        return
    if isinstance(node, ast.Dict) and any(key is None for key in node.keys):
        raise _node_error(node, "'**' unpacking is not allowed")
    for child in ast.iter_child_nodes(node):
        _check(child, names)


def compile_expression(source: str, names) -> Expression:
    """Parse and check `source` against the variable names that will be available."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("the expression is empty")
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
        _check(tree, set(names) | set(BUILTINS) | HELPERS)
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg} (at column {exc.offset})") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("the expression is nested too deeply") from None
    return Expression(source, tree)


def plain(value, depth: int = 0):
    """Copy a variable into plain data (str/int/float/bool/None/list/dict); anything else becomes str.

    This is what makes attribute whitelisting by exact type sound: no user object, no
    subclass with overridden methods, and no datetime/Decimal with extra surface ever
    reaches the interpreter.
    """
    if depth > 20:
        raise ExpressionError("a variable is nested too deeply")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, depth + 1) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return plain(value.item(), depth + 1)
    return str(value)


def _deep_size(value, limit: int = MAX_SIZE) -> int:
    """Rough size of a value as text (string lengths, 1 per other element); stops early past `limit`."""
    stack, total = [value], 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 1
        else:
            total += 8
        if total > limit:
            return total
    return total


def _too_big(what: str) -> ExpressionError:
    return ExpressionError(f"{what} would be too large (limit {MAX_SIZE:,} characters/elements)")


class _Evaluator:
    def __init__(self, variables: dict, timeout: float, max_steps: int):
        self.variables = variables
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.steps = 0
        self.max_steps = max_steps
        self.allocated = 0

    def charge(self, value, elements: bool = False):
        """Count the bytes an operation created; refuse once the evaluation has created too much.

        Integers count by their size in memory (bit length), strings and containers by theirs;
        with `elements`, a container's elements count too (a list from split() or sorted() holds
        new strings). Values that already existed (a variable, an indexed element) are not charged."""
        kind = type(value)
        if kind in (str, int, list, tuple, dict, set, float):
            self.allocated += sys.getsizeof(value)
            if elements and kind in (list, tuple, set, dict):
                self.allocated += sum(map(sys.getsizeof, value.values() if kind is dict else value))
            if self.allocated > MAX_ALLOCATED:
                raise ExpressionError(
                    f"the expression creates too much data (more than {MAX_ALLOCATED // 1_000_000:,} MB in total)"
                )
        return value

    def tick(self):
        self.steps += 1
        if self.steps > self.max_steps:
            raise ExpressionError(f"the expression took more than {self.max_steps:,} steps")
        if time.monotonic() > self.deadline:
            raise ExpressionError(f"the expression took longer than {self.timeout:g} s")

    def eval(self, node, scope):
        self.tick()
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:  # _check already refused it; defence in depth
            raise ExpressionError(f"{type(node).__name__} is not allowed")
        return method(node, scope)

    def _Expression(self, node, scope):
        return self.eval(node.body, scope)

    def _Constant(self, node, scope):
        return node.value

    def _Name(self, node, scope):
        if node.id in scope:
            return scope[node.id]
        if node.id in self.variables:
            return self.variables[node.id]
        raise ExpressionError(f"unknown name {node.id!r}")

    def _BoolOp(self, node, scope):
        is_and = isinstance(node.op, ast.And)
        value = None
        for operand in node.values:
            value = self.eval(operand, scope)
            if bool(value) != is_and:
                return value
        return value

    def _UnaryOp(self, node, scope):
        value = self.eval(node.operand, scope)
        if isinstance(node.op, ast.Not):
            return not value
        if not isinstance(value, (int, float)):
            raise ExpressionError(f"bad operand for unary minus/plus: {type(value).__name__}")
        return -value if isinstance(node.op, ast.USub) else +value

    def _IfExp(self, node, scope):
        return self.eval(node.body if self.eval(node.test, scope) else node.orelse, scope)

    def _Compare(self, node, scope):
        left = self.eval(node.left, scope)
        for op, comparator in zip(node.ops, node.comparators):
            right = self.eval(comparator, scope)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _BinOp(self, node, scope):
        left = self.eval(node.left, scope)
        right = self.eval(node.right, scope)
        op = type(node.op)
        _guard_binop(op, left, right)
        return self.charge(_BINOPS[op](left, right))

    def _List(self, node, scope):
        return self.charge([self.eval(e, scope) for e in node.elts])

    def _Tuple(self, node, scope):
        return self.charge(tuple(self.eval(e, scope) for e in node.elts))

    def _Set(self, node, scope):
        return self.charge({self.eval(e, scope) for e in node.elts})

    def _Dict(self, node, scope):
        return self.charge({self.eval(k, scope): self.eval(v, scope) for k, v in zip(node.keys, node.values)})

    def _Subscript(self, node, scope):
        value = self.eval(node.value, scope)
        if type(value) not in (str, list, tuple, dict):
            raise ExpressionError(f"{type(value).__name__} values cannot be indexed")
        if isinstance(node.slice, ast.Slice):
            parts = [
                self.eval(p, scope) if p is not None else None
                for p in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            if not all(p is None or type(p) is int for p in parts):
                raise ExpressionError("slice bounds must be integers")
            return self.charge(value[slice(*parts)])
        return value[self.eval(node.slice, scope)]

    def _iterate(self, generators, scope):
        """Yield the scope for each combination of comprehension variables that passes the ifs."""
        if not generators:
            yield scope
            return
        first, rest = generators[0], generators[1:]
        iterable = self.eval(first.iter, scope)
        if type(iterable) not in (str, list, tuple, dict, set):
            raise ExpressionError(f"cannot iterate over {type(iterable).__name__}")
        for item in list(iterable):
            self.tick()
            inner = dict(scope)
            _assign(first.target, item, inner)
            if all(self.eval(condition, inner) for condition in first.ifs):
                yield from self._iterate(rest, inner)

    def _ListComp(self, node, scope):
        return self.charge([self.eval(node.elt, s) for s in self._iterate(node.generators, scope)])

    def _GeneratorExp(self, node, scope):
        return self._ListComp(node, scope)

    def _SetComp(self, node, scope):
        return self.charge({self.eval(node.elt, s) for s in self._iterate(node.generators, scope)})

    def _DictComp(self, node, scope):
        return self.charge(
            {self.eval(node.key, s): self.eval(node.value, s) for s in self._iterate(node.generators, scope)}
        )

    def _Call(self, node, scope):
        args = [self.eval(a, scope) for a in node.args]
        kwargs = {k.arg: self.eval(k.value, scope) for k in node.keywords}
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in ("re_search", "re_findall"):
                if kwargs or not 2 <= len(args) <= 3:
                    raise ExpressionError(f"{func.id}(pattern, text[, 'i']) takes 2 or 3 arguments")
                found = _regex_call(func.id[3:], args[0], args[1], args[2] if len(args) > 2 else None, self)
                return self.charge(found, elements=True)
            _guard_builtin(func.id, args)
            return self.charge(_plain_result(BUILTINS[func.id](*args, **kwargs)), elements=True)
        receiver = self.eval(func.value, scope)
        allowed = METHODS.get(type(receiver), ())
        if func.attr not in allowed:
            raise ExpressionError(f"{type(receiver).__name__} has no allowed method .{func.attr}()")
        _guard_method(receiver, func.attr, args, kwargs)
        return self.charge(_plain_result(getattr(receiver, func.attr)(*args, **kwargs)), elements=True)


def _assign(target, value, scope):
    if isinstance(target, ast.Name):
        scope[target.id] = value
        return
    items = list(value) if type(value) in (list, tuple, str) else None
    if items is None or len(items) != len(target.elts):
        raise ExpressionError("cannot unpack value in comprehension")
    for element, item in zip(target.elts, items):
        _assign(element, item, scope)


def _plain_result(value):
    """dict views from .keys()/.items() become lists, so only plain types circulate."""
    if type(value).__name__ in ("dict_keys", "dict_values"):
        return list(value)
    if type(value).__name__ == "dict_items":
        return [list(pair) for pair in value]
    return value


def _is_number(value) -> bool:
    return type(value) in (int, float, bool)


def _guard_binop(op, left, right):
    """Refuse operations whose result would be huge, before computing them."""
    if op is ast.Mult:
        for seq, count in ((left, right), (right, left)):
            if type(seq) in (str, list, tuple) and type(count) in (int, bool):
                if count > 0 and _deep_size(seq) * count > MAX_SIZE:
                    raise _too_big("the repeated value")
                return
        if type(left) is int and type(right) is int and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _too_big("the product")
    elif op is ast.Add:
        if type(left) in (str, list, tuple) and type(left) is type(right) and len(left) + len(right) > MAX_SIZE:
            raise _too_big("the concatenation")
    elif op is ast.Pow:
        if type(left) is int and type(right) is int and right > 0 and abs(left) > 1:
            if left.bit_length() * right > MAX_INT_BITS:
                raise _too_big("the power")
    elif op is ast.Mod:
        if not (_is_number(left) and _is_number(right)):
            raise ExpressionError("'%' is only allowed between numbers (no string formatting)")


def _guard_builtin(name, args):
    if name == "str" and args and _deep_size(args[0]) > MAX_SIZE:
        raise _too_big("str()")
    if name in ("int", "float") and args and type(args[0]) is str and len(args[0]) > 1000:
        raise ExpressionError(f"{name}() of a string longer than 1000 characters")


def _guard_method(receiver, name, args, kwargs):
    if type(receiver) is not str:
        return
    if name == "join" and args:
        parts = args[0]
        if type(parts) not in (list, tuple, set, dict, str):
            raise ExpressionError("join() takes a list of strings")
        total = sum(len(p) if isinstance(p, str) else 0 for p in parts) + len(receiver) * len(parts)
        if total > MAX_SIZE:
            raise _too_big("the joined string")
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        occurrences = receiver.count(args[0]) if args[0] else len(receiver) + 1
        if len(receiver) + occurrences * len(args[1]) > MAX_SIZE:
            raise _too_big("the replaced string")


def _safe_in(item, container):
    if type(container) not in (str, list, tuple, dict, set):
        raise ExpressionError(f"'in' needs a string or a collection on the right, not {type(container).__name__}")
    return item in container


_COMPARE = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.In: _safe_in,
    ast.NotIn: lambda a, b: not _safe_in(a, b),
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}
_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitXor: lambda a, b: a ^ b,
}


def evaluate(
    expression: Expression | str, variables: dict, timeout: float = DEFAULT_TIMEOUT, max_steps: int = MAX_STEPS
):
    """Evaluate an expression against `variables` in a sandbox process; any failure (including
    running out of time or memory) is an ExpressionError with a clear message.

    The result comes back as JSON data: tuples and sets arrive as lists."""
    variables = {name: plain(value) for name, value in variables.items()}
    if isinstance(expression, str):
        expression = compile_expression(expression, variables)
    request = {
        "source": expression.source,
        "variables": variables,
        "timeout": float(timeout),
        "max_steps": int(max_steps),
    }
    reply = _sandboxed(json.dumps(request, ensure_ascii=False).encode("utf-8"), float(timeout))
    if "error" in reply:
        raise ExpressionError(reply["error"])
    return reply["value"]


def evaluate_here(
    expression: Expression | str, variables: dict, timeout: float = DEFAULT_TIMEOUT, max_steps: int = MAX_STEPS
):
    """Evaluate in this process, bounded only by the interpreter's own limits (the sandbox's inner layer)."""
    variables = {name: plain(value) for name, value in variables.items()}
    if isinstance(expression, str):
        expression = compile_expression(expression, variables)
    evaluator = _Evaluator({**BUILTINS, **variables}, timeout, max_steps)
    try:
        result = evaluator.eval(expression.tree, {})
    except ExpressionError:
        raise
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply") from None
    except (MemoryError, OverflowError) as exc:
        raise ExpressionError(f"{type(exc).__name__}: the result is too large") from None
    except Exception as exc:  # TypeError, ZeroDivisionError, KeyError, ... from the user's expression
        raise ExpressionError(f"{type(exc).__name__}: {exc}") from None
    if isinstance(result, float) and math.isnan(result):
        raise ExpressionError("the expression returned NaN")
    return result


# ---------------------------------------------------------------------------- the sandbox processes

# The child loads this file by path, not as `workbench.scoring.expression`: importing the package
# would pull in every scorer, the model-call path and litellm. This module needs only the stdlib
# and `regex`.
_BOOT = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('workbench_expression_sandbox', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = module\n"
    "spec.loader.exec_module(module)\n"
    "module.serve(int(sys.argv[2]))\n"
)


def _read_exactly(stream, n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def serve(memory_mb: int) -> None:
    """The sandbox process's loop: length-prefixed JSON requests on stdin, replies on stdout."""
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    compiled: dict[tuple, Expression] = {}
    while True:
        header = _read_exactly(stdin, 4)
        if header is None:
            return
        body = _read_exactly(stdin, int.from_bytes(header, "big"))
        if body is None:
            return
        request = json.loads(body)
        # a CPU-time bound of its own, should the parent die while an evaluation runs (SIGXCPU)
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu_now = int(used.ru_utime + used.ru_stime)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_now + int(request["timeout"]) + 5, resource.RLIM_INFINITY))
        try:
            key = (request["source"], tuple(sorted(request["variables"])))
            if key not in compiled:
                if len(compiled) > 256:
                    compiled.clear()
                compiled[key] = compile_expression(request["source"], request["variables"])
            value = evaluate_here(compiled[key], request["variables"], request["timeout"], request["max_steps"])
            reply = json.dumps({"value": value}, ensure_ascii=False, default=list).encode("utf-8")
            if len(reply) > MAX_REPLY_BYTES:
                raise ExpressionError(f"the result is larger than {MAX_REPLY_BYTES // 1_000_000} MB")
        except ExpressionError as exc:
            reply = json.dumps({"error": str(exc)}).encode("utf-8")
        except MemoryError:
            reply = json.dumps({"error": f"the expression ran out of memory (limit {memory_mb} MB)"}).encode()
        except (TypeError, ValueError) as exc:  # a result JSON cannot carry (an int of 5000 digits, tuple keys)
            reply = json.dumps({"error": f"the result cannot be returned: {exc}"}).encode("utf-8")
        stdout.write(len(reply).to_bytes(4, "big") + reply)
        stdout.flush()


class _Sandbox:
    """One sandbox process and its pipes."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, os.path.abspath(__file__), str(SANDBOX_MEMORY_MB)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},  # nothing of the server's environment (keys) is visible in there
        )
        self.owner = os.getpid()

    def ask(self, request: bytes, wall_s: float) -> dict | None:
        """The reply, or None when the process did not answer in time or died (it is then dead)."""
        deadline = time.monotonic() + wall_s
        try:
            self.proc.stdin.write(len(request).to_bytes(4, "big") + request)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return None
        fd = self.proc.stdout.fileno()
        data = b""
        needed = 4
        while len(data) < needed:
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(0.0, left))[0] if left > 0 else []
            if not ready:
                self.kill()
                return None
            chunk = os.read(fd, max(65536, needed - len(data)))
            if not chunk:
                self.kill()
                return None
            data += chunk
            if needed == 4 and len(data) >= 4:
                needed = 4 + int.from_bytes(data[:4], "big")
        return json.loads(data[4:needed])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


_idle: list[_Sandbox] = []
_idle_lock = threading.Lock()


def _sandboxed(request: bytes, timeout: float) -> dict:
    with _idle_lock:
        # a forked process (the CLI shards runs) must not share its parent's sandbox pipes
        _idle[:] = [box for box in _idle if box.owner == os.getpid()]
        box = _idle.pop() if _idle else None
    if box is None or box.proc.poll() is not None:
        box = _Sandbox()
    started = time.monotonic()
    reply = box.ask(request, timeout + KILL_GRACE_S)
    if reply is None:
        if time.monotonic() - started >= timeout:
            raise ExpressionError(f"the expression took longer than {timeout:g} s (stopped)")
        raise ExpressionError(f"the expression ran out of memory (limit {SANDBOX_MEMORY_MB} MB) or its process died")
    with _idle_lock:
        if len(_idle) < POOL_IDLE:
            _idle.append(box)
            box = None
    if box is not None:
        box.kill()
    return reply


def describe(value) -> str:
    """A short rendering of a result for a score reason."""
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
