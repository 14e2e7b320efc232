"""A small, safe condition language for rules: facts, numbers, arithmetic, comparisons, logic.

A condition is parsed with `ast.parse` and checked node by node against a short allow-list,
then turned into a tree of plain values that is walked to evaluate it. Nothing is ever
passed to eval, exec or compile, so a rule file cannot run code.

Missing facts never make a condition true. A fact that is None, a division by zero or an
arithmetic overflow gives "unknown"; unknown propagates through arithmetic, comparisons and
`not`, and `and`/`or` follow three-valued logic (False and unknown is False, True or unknown
is True). A condition whose result is unknown is False. `x == None` and `x != None` test
whether a fact is known, as do `is_none(x)` and `not_none(x)`.
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Compute bounds only: no clinical meaning.
MAX_SOURCE_CHARS = 500
MAX_DEPTH = 30

Value = float | int | bool | None


class ExpressionError(ValueError):
    """A condition that is not valid in the rule language; the message says why."""


_ARITHMETIC: Mapping[type[ast.operator], tuple[str, Callable[[float, float], float]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
}
_COMPARISONS: Mapping[type[ast.cmpop], tuple[str, Callable[[float, float], bool]]] = {
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
}
_FUNCTIONS = frozenset({"abs", "is_none", "not_none"})
_FORBIDDEN_NAMES: Mapping[type[ast.AST], str] = {
    ast.Attribute: "attribute access (.)",
    ast.Subscript: "subscripts ([...])",
    ast.Lambda: "lambda",
    ast.IfExp: "conditional expressions (x if y else z)",
    ast.NamedExpr: "assignment (:=)",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.Starred: "starred expressions",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}
_OPERATOR_SYMBOLS: Mapping[type[ast.AST], str] = {
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.UAdd: "unary +",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


@dataclass(frozen=True)
class _Const:
    value: Value


@dataclass(frozen=True)
class _Fact:
    name: str


@dataclass(frozen=True)
class _Not:
    operand: _Node


@dataclass(frozen=True)
class _Negate:
    operand: _Node


@dataclass(frozen=True)
class _Arithmetic:
    symbol: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Logic:
    is_and: bool
    operands: tuple[_Node, ...]


@dataclass(frozen=True)
class _Compare:
    operands: tuple[_Node, ...]
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class _Call:
    function: str
    argument: _Node


_Node = _Const | _Fact | _Not | _Negate | _Arithmetic | _Logic | _Compare | _Call
_ARITHMETIC_BY_SYMBOL = dict(_ARITHMETIC.values())
_COMPARISON_BY_SYMBOL = dict(_COMPARISONS.values())


def _is_none_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


class _Checker:
    """Turn an allowed Python expression tree into a condition tree, refusing everything else."""

    def __init__(self, known: frozenset[str]) -> None:
        self.known = known
        self.used: set[str] = set()

    def node(self, node: ast.AST, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"condition nests deeper than {MAX_DEPTH} levels")
        inner = depth + 1
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Constant):
            return self._constant(node.value)
        builders: dict[type[ast.AST], Callable[[Any, int], _Node]] = {
            ast.BoolOp: self._logic,
            ast.UnaryOp: self._unary,
            ast.BinOp: self._arithmetic,
            ast.Compare: self._compare,
            ast.Call: self._call,
        }
        build = builders.get(type(node))
        if build is None:
            what = _FORBIDDEN_NAMES.get(type(node), type(node).__name__)
            raise ExpressionError(f"{what} is not allowed in a condition")
        return build(node, inner)

    def _logic(self, node: ast.BoolOp, inner: int) -> _Node:
        return _Logic(isinstance(node.op, ast.And), tuple(self.node(v, inner) for v in node.values))

    def _unary(self, node: ast.UnaryOp, inner: int) -> _Node:
        if isinstance(node.op, ast.Not):
            return _Not(self.node(node.operand, inner))
        if isinstance(node.op, ast.USub):
            return _Negate(self.node(node.operand, inner))
        raise self._operator(node.op)

    def _arithmetic(self, node: ast.BinOp, inner: int) -> _Node:
        if type(node.op) not in _ARITHMETIC:
            raise self._operator(node.op)
        return _Arithmetic(
            _ARITHMETIC[type(node.op)][0], self.node(node.left, inner), self.node(node.right, inner)
        )

    def _operator(self, op: ast.AST) -> ExpressionError:
        symbol = _OPERATOR_SYMBOLS.get(type(op), type(op).__name__)
        hint = (
            "; use == None, != None, is_none() or not_none()" if symbol in ("is", "is not") else ""
        )
        return ExpressionError(f"operator {symbol!r} is not allowed in a condition{hint}")

    def _compare(self, node: ast.Compare, inner: int) -> _Node:
        raw = [node.left, *node.comparators]
        symbols: list[str] = []
        for index, op in enumerate(node.ops):
            if type(op) not in _COMPARISONS:
                raise self._operator(op)
            symbol = _COMPARISONS[type(op)][0]
            sides = (raw[index], raw[index + 1])
            if symbol not in ("==", "!=") and any(_is_none_literal(s) for s in sides):
                raise ExpressionError(f"None can only be compared with == or !=, not {symbol!r}")
            symbols.append(symbol)
        operands = tuple(
            _Const(None) if _is_none_literal(side) else self.node(side, inner) for side in raw
        )
        return _Compare(operands, tuple(symbols))

    def _name(self, name: str) -> _Node:
        if name in _FUNCTIONS:
            raise ExpressionError(f"{name} is a function: write {name}(...)")
        if name not in self.known:
            close = difflib.get_close_matches(name, sorted(self.known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ExpressionError(f"unknown fact {name!r}{hint}")
        self.used.add(name)
        return _Fact(name)

    def _constant(self, value: object) -> _Node:
        if value is None:
            raise ExpressionError("None can only appear in == None or != None")
        if isinstance(value, float) and not math.isfinite(value):
            raise ExpressionError(f"numbers must be finite, got {value!r}")
        if isinstance(value, bool | int | float):
            return _Const(value)
        kind = "strings" if isinstance(value, str | bytes) else f"{type(value).__name__} values"
        raise ExpressionError(f"{kind} are not allowed in a condition")

    def _call(self, node: ast.Call, inner: int) -> _Node:
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            called = node.func.id if isinstance(node.func, ast.Name) else "this"
            raise ExpressionError(
                f"calling {called!r} is not allowed; the only functions are "
                f"{', '.join(sorted(_FUNCTIONS))}"
            )
        name = node.func.id
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise ExpressionError(f"{name}() takes exactly one argument")
        argument = node.args[0]
        if name != "abs" and not isinstance(argument, ast.Name):
            raise ExpressionError(f"{name}() takes a fact name")
        return _Call(name, self.node(argument, inner))


def _kleene_and(values: list[Value]) -> Value:
    if any(v is not None and not v for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True


def _kleene_or(values: list[Value]) -> Value:
    if any(v is not None and v for v in values):
        return True
    if any(v is None for v in values):
        return None
    return False


def _fact_value(facts: Mapping[str, object], name: str) -> Value:
    value = facts.get(name)
    # Anything but a number or a bool (a missing fact, a string) is unknown.
    return value if isinstance(value, bool | int | float) else None


def _evaluate(node: _Node, facts: Mapping[str, object]) -> Value:
    if isinstance(node, _Const):
        return node.value
    if isinstance(node, _Fact):
        return _fact_value(facts, node.name)
    if isinstance(node, _Logic):
        values = [_evaluate(operand, facts) for operand in node.operands]
        return _kleene_and(values) if node.is_and else _kleene_or(values)
    if isinstance(node, _Not | _Negate):
        value = _evaluate(node.operand, facts)
        if value is None:
            return None
        return not value if isinstance(node, _Not) else -value
    if isinstance(node, _Arithmetic):
        return _arithmetic(node, facts)
    if isinstance(node, _Compare):
        return _compare(node, facts)
    return _function(node, facts)


def _arithmetic(node: _Arithmetic, facts: Mapping[str, object]) -> Value:
    left, right = _evaluate(node.left, facts), _evaluate(node.right, facts)
    if left is None or right is None:
        return None
    try:
        return _ARITHMETIC_BY_SYMBOL[node.symbol](left, right)
    except (ZeroDivisionError, OverflowError):
        return None


def _function(node: _Call, facts: Mapping[str, object]) -> Value:
    value = _evaluate(node.argument, facts)
    if node.function == "is_none":
        return value is None
    if node.function == "not_none":
        return value is not None
    return None if value is None else abs(value)


def _compare(node: _Compare, facts: Mapping[str, object]) -> Value:
    values = [_evaluate(operand, facts) for operand in node.operands]
    results: list[Value] = []
    for index, symbol in enumerate(node.symbols):
        left, right = values[index], values[index + 1]
        literal = (node.operands[index], node.operands[index + 1])
        if any(isinstance(side, _Const) and side.value is None for side in literal):
            known = (left is None) == (right is None)
            results.append(known if symbol == "==" else not known)
        elif left is None or right is None:
            results.append(None)
        else:
            results.append(_COMPARISON_BY_SYMBOL[symbol](left, right))
    return _kleene_and(results)


@dataclass(frozen=True)
class Condition:
    """A checked condition; `facts` names every fact it reads."""

    source: str
    facts: frozenset[str]
    _root: _Node

    def evaluate(self, facts: Mapping[str, object]) -> bool:
        """Return True only when the condition is known to hold for these facts."""
        result = _evaluate(self._root, facts)
        if result is None or (isinstance(result, float) and math.isnan(result)):
            return False
        return bool(result)


def compile_condition(source: str, known: frozenset[str]) -> Condition:
    """Check a condition against the language and the known fact names, or raise ExpressionError."""
    if not isinstance(source, str):
        raise ExpressionError(f"a condition must be text, got {type(source).__name__}")
    # Whitespace, line breaks included, only separates tokens: a rule file may wrap a condition.
    text = " ".join(source.split())
    if not text:
        raise ExpressionError("condition is empty")
    if len(text) > MAX_SOURCE_CHARS:
        raise ExpressionError(
            f"condition is {len(text)} characters long; the limit is {MAX_SOURCE_CHARS}"
        )
    if any(quote in text for quote in ("'", '"')):
        # Refused before parsing: strings are not allowed and their escapes would warn.
        raise ExpressionError("strings are not allowed in a condition")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        where = f" (column {exc.offset})" if exc.offset else ""
        raise ExpressionError(f"condition is not valid syntax: {exc.msg}{where}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"condition cannot be parsed: {exc}") from None
    checker = _Checker(known)
    root = checker.node(tree.body, 1)
    return Condition(source=text, facts=frozenset(checker.used), _root=root)
