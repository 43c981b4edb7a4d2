"""Static checks of CEL expressions against the event's schema, before any event arrives.

cel-python evaluates expressions but does not type-check them, so a condition that reads a
field the event does not have (``event.pull_request.drafts``), compares text with a number
(``event.pull_request.number == "7"``), calls a function CEL does not know (``lower()``) or
is not true/false at all (``event.branch``) would fail only when an event reaches it, as a
``forgeflow/config`` failure on someone's pull request. :func:`check` walks the parse tree
with the types of :mod:`service.jobs.event_schema` and says what is wrong and what to write.

It only reports what is certainly wrong: where a type is unknown (``dyn``) it stays silent.
The rules follow what cel-python accepts when it evaluates (``1 == 1.0`` fails there, so it
is reported; ``"a" in "abc"`` works, so it is not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree

from service.jobs.event_schema import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    TYPE,
    UINT,
    CelType,
    list_of,
    map_of,
)
from service.jobs.suggest import FOREIGN_EVENTS, closest, did_you_mean, one_of

# A lark Tree[Token]: its children mix trees and tokens by rule, which the rules below know.
Node = Any
NUMBERS = ("int", "uint", "double")
ORDERED = (*NUMBERS, "string", "bytes", "timestamp", "duration", "bool")
ADDABLE = (*NUMBERS, "string", "bytes", "list", "timestamp", "duration")
MAPS = ("map", "record")
SIZED = ("string", "bytes", "list", *MAPS)
LITERALS = {
    "INT_LIT": INT,
    "UINT_LIT": UINT,
    "FLOAT_LIT": DOUBLE,
    "STRING_LIT": STRING,
    "MLSTRING_LIT": STRING,
    "BYTES_LIT": BYTES,
    "BOOL_LIT": BOOL,
    "NULL_LIT": NULL,
}
TYPE_NAMES = ("int", "uint", "double", "string", "bool", "bytes", "list", "map", "null_type", "type")
CONVERSIONS = {"int": INT, "uint": UINT, "double": DOUBLE, "string": STRING, "bool": BOOL, "bytes": BYTES}
TIME_GETTERS = (
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getMonth",
    "getHours",
    "getMilliseconds",
    "getMinutes",
    "getSeconds",
)
STRING_TESTS = ("startsWith", "endsWith", "matches")
MACROS = ("all", "exists", "exists_one", "map", "filter")
METHODS = (*MACROS, "size", "contains", *STRING_TESTS, *TIME_GETTERS)
FUNCTIONS = (
    "size",
    "has",
    "dyn",
    "type",
    "timestamp",
    "duration",
    "contains",
    *STRING_TESTS,
    *CONVERSIONS,
    *TIME_GETTERS,
)
# What people reach for from other languages, and the CEL way to say it.
FOREIGN_FUNCTIONS = {
    "lower": "CEL has no lower(); match either case with matches('(?i)text')",
    "lowerAscii": "this CEL has no lowerAscii(); match either case with matches('(?i)text')",
    "upper": "CEL has no upper(); match either case with matches('(?i)text')",
    "upperAscii": "this CEL has no upperAscii(); match either case with matches('(?i)text')",
    "toLowerCase": "CEL has no toLowerCase(); match either case with matches('(?i)text')",
    "includes": "write contains('x') for text, or 'x' in list for a list",
    "length": "write size(x)",
    "len": "write size(x)",
    "count": "write size(x)",
    "split": "CEL has no split(); test the text with matches('regex') or startsWith('x')",
    "replace": "CEL has no replace(); test the text with matches('regex')",
    "trim": "CEL has no trim(); test the text with matches('^\\\\s*text\\\\s*$')",
    "join": "CEL has no join(); test a list with exists(x, ...) or 'x' in list",
    "format": "CEL has no format(); join text with +: 'v' + event.tag",
    "hashFiles": "hashFiles() is only known in cache keys",
    "failed": "write failure(): true when a need failed",
    "succeeded": "write success(): true when every need succeeded",
    "passed": "write success(): true when every need succeeded",
    "canceled": "cancelled() is spelt with two l",
    "finished": "write always(): the job runs whatever its needs did",
    "cancelled": "cancelled() is never true when a job could start (a stopped run starts no job)",
    "substring": "CEL has no substring(); event.short_sha is the commit's first 7 characters, "
    "and startsWith()/matches() test the start of text",
    "substr": "CEL has no substr(); test the start of text with startsWith() or matches('^...')",
    "slice": "CEL has no slice(); test the start of text with startsWith() or matches('^...')",
}
UNKNOWN_NAMES = {
    "True": "CEL writes true and false in lower case: true",
    "False": "CEL writes true and false in lower case: false",
    "TRUE": "CEL writes true and false in lower case: true",
    "FALSE": "CEL writes true and false in lower case: false",
    "None": "CEL writes null",
    "nil": "CEL writes null",
    "undefined": "CEL writes null",
    "github": "forgeflow's conditions read event, not github: e.g. event.pull_request.draft",
    "gitlab": "forgeflow's conditions read event: e.g. event.branch",
    "env": "conditions cannot read environment variables; they read event (e.g. event.branch)",
    "secrets": "conditions cannot read secrets",
    "steps": "conditions are decided before the job runs; they read event",
    "runner": "conditions read event only",
    "matrix": "a job's if: is decided for the whole job, before its matrix: matrix is not known here",
}


# Values people write for the event's fixed ones: the forge Gitea is served as forgejo.
VALUE_ALIASES = {"gitea": "forgejo", "codeberg": "forgejo", **FOREIGN_EVENTS}


@dataclass(frozen=True)
class CelIssue:
    """One problem: the message and where in the expression (0-based character) it is."""

    message: str
    offset: int


def _text(tree: Node | Token, source: str) -> str:
    if isinstance(tree, Token):
        return str(tree)
    meta = tree.meta
    if getattr(meta, "empty", True):
        return ""
    return source[meta.start_pos : meta.end_pos]


def _start(tree: Node | Token) -> int:
    if isinstance(tree, Token):
        return tree.start_pos or 0
    return 0 if getattr(tree.meta, "empty", True) else tree.meta.start_pos


def _known(t: CelType) -> bool:
    return t.kind != "dyn"


def _same(a: CelType, b: CelType) -> bool:
    """Whether ``==`` between values of these types can be evaluated."""
    if not (_known(a) and _known(b)) or "null" in (a.kind, b.kind):
        return True
    if a.kind in MAPS and b.kind in MAPS:
        return True
    if a.kind == "list" and b.kind == "list":
        return a.item is None or b.item is None or _same(a.item, b.item)
    return a.kind == b.kind


STATUS_FUNCTIONS = ("always", "success", "failure", "cancelled")


class _Checker:
    def __init__(self, source: str, variables: Mapping[str, CelType], status: bool = False) -> None:
        self.source = source
        self.status = status  # if: may ask how the job's needs ended (always(), failure(), ...)
        self.scopes: list[dict[str, CelType]] = [dict(variables)]
        self.issues: list[CelIssue] = []

    # -- reporting ----------------------------------------------------------------------------

    def issue(self, at: Node | Token, message: str) -> CelType:
        self.issues.append(CelIssue(message, _start(at)))
        return DYN

    def show(self, tree: Node | Token) -> str:
        return _text(tree, self.source).strip() or "this"

    def expect(self, tree: Node, got: CelType, kinds: tuple[str, ...], what: str) -> None:
        if _known(got) and got.kind not in kinds:
            self.issue(tree, f"{self.show(tree)} is {got.describe()}, but {what}")

    def need_bool(self, tree: Node, got: CelType, where: str) -> None:
        if _known(got) and got.kind != "bool":
            shown = self.show(tree)
            self.issue(tree, f"{shown} is {got.describe()}, not true/false; {where}{_hint(got, shown)}")

    # -- the walk -----------------------------------------------------------------------------

    def visit(self, tree: Node | Token) -> CelType:
        if isinstance(tree, Token):
            return DYN
        rule: Callable[[Node], CelType] | None = getattr(self, f"r_{tree.data}", None)
        if rule is not None:
            return rule(tree)
        children = [c for c in tree.children if isinstance(c, Tree)]
        return self.visit(children[0]) if len(children) == 1 else DYN

    def r_expr(self, tree: Node) -> CelType:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        condition, when_true, when_false = tree.children
        self.need_bool(condition, self.visit(condition), "the part before '?' must be true or false")
        a, b = self.visit(when_true), self.visit(when_false)
        return a if _same(a, b) and _known(a) and a.kind == b.kind else DYN

    def _logical(self, tree: Node, word: str) -> CelType:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        for child in tree.children:
            self.need_bool(child, self.visit(child), f"both sides of {word} must be true or false")
        return BOOL

    def r_conditionalor(self, tree: Node) -> CelType:
        return self._logical(tree, "||")

    def r_conditionaland(self, tree: Node) -> CelType:
        return self._logical(tree, "&&")

    def r_relation(self, tree: Node) -> CelType:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        operator, right_tree = tree.children
        left_tree = operator.children[0]
        left, right = self.visit(left_tree), self.visit(right_tree)
        op = operator.data.removeprefix("relation_")
        if op in ("eq", "ne"):
            self.compare(tree, left_tree, left, right_tree, right)
        elif op == "in":
            self.contained(tree, left_tree, left, right_tree, right)
        elif (
            _known(left)
            and _known(right)
            and (left.kind not in ORDERED or right.kind not in ORDERED or left.kind != right.kind)
        ):
            self.issue(
                tree,
                f"{self.show(left_tree)} ({left.describe()}) and {self.show(right_tree)} "
                f"({right.describe()}) cannot be ordered with {_OPERATORS[op]}",
            )
        return BOOL

    def compare(self, at: Node, left_tree: Node, left: CelType, right_tree: Node, right: CelType) -> None:
        if not _same(left, right):
            fix = ""
            if "string" in (left.kind, right.kind) and {left.kind, right.kind} & {"int", "bool", "double"}:
                fix = "; write numbers and true/false without quotes, text in quotes"
            self.issue(
                at,
                f"{self.show(left_tree)} is {left.describe()} and {self.show(right_tree)} is "
                f"{right.describe()}: they are never equal{fix}",
            )
            return
        self.known_value(left, right_tree, left_tree)
        self.known_value(right, left_tree, right_tree)

    def known_value(self, field: CelType, literal_tree: Node, field_tree: Node) -> None:
        """``event.kind == "pull-request"``: a value the field never has."""
        if not field.values:
            return
        value = _string_literal(literal_tree)
        if value is not None and value not in field.values:
            near = VALUE_ALIASES.get(value.lower()) or closest(value, field.values)
            hint = f"; did you mean {near!r}?" if near in field.values else ""
            self.issue(
                literal_tree,
                f"{self.show(field_tree)} is never {value!r}{hint} (it is one of {one_of(field.values)})",
            )

    def contained(self, at: Node, left_tree: Node, left: CelType, right_tree: Node, right: CelType) -> None:
        if not _known(right) or right.kind == "string":
            return
        if right.kind not in ("list", *MAPS):
            self.issue(
                at,
                f"'in' looks in a list or a map, but {self.show(right_tree)} is {right.describe()}",
            )
            return
        item = right.item if right.kind == "list" else STRING if right.kind == "record" else None
        if item is not None and not _same(left, item):
            self.issue(
                at,
                f"{self.show(right_tree)} holds {item.describe()}, but {self.show(left_tree)} is "
                f"{left.describe()}",
            )
        if right.kind == "list" and right_tree is not None:
            items = _list_literal(right_tree)
            if items and _known(left) and left.values:
                for item_tree in items:
                    self.known_value(left, item_tree, left_tree)

    def _arithmetic(self, tree: Node, prefix: str) -> CelType:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        operator, right_tree = tree.children
        left_tree = operator.children[0]
        left, right = self.visit(left_tree), self.visit(right_tree)
        symbol = _OPERATORS[operator.data.removeprefix(prefix)]
        allowed = ADDABLE if symbol == "+" else NUMBERS
        if _known(left) and _known(right):
            if left.kind not in allowed or right.kind not in allowed or left.kind != right.kind:
                joining = symbol == "+" and "string" in (left.kind, right.kind)
                fix = " (to join text, both sides must be text: string(x))" if joining else ""
                return self.issue(
                    tree,
                    f"{self.show(left_tree)} ({left.describe()}) {symbol} {self.show(right_tree)} "
                    f"({right.describe()}) cannot be computed{fix}",
                )
            return left
        return DYN

    def r_addition(self, tree: Node) -> CelType:
        return self._arithmetic(tree, "addition_")

    def r_multiplication(self, tree: Node) -> CelType:
        return self._arithmetic(tree, "multiplication_")

    def r_unary(self, tree: Node) -> CelType:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        operator, operand = tree.children
        got = self.visit(operand)
        if operator.data == "unary_not":
            self.need_bool(operand, got, "'!' turns true into false and back")
            return BOOL
        self.expect(operand, got, NUMBERS, "'-' needs a number")
        return got

    def r_member_dot(self, tree: Node) -> CelType:
        target_tree, name = tree.children
        return self.field(name, target_tree, self.visit(target_tree), str(name))

    def field(self, at: Node | Token, target_tree: Node, target: CelType, name: str) -> CelType:
        if target.kind == "record":
            fields = target.field_map
            if name in fields:
                return fields[name]
            hint = target.hint or did_you_mean(name, fields) or f" (its fields: {', '.join(fields)})"
            return self.issue(at, f"{target.name or self.show(target_tree)} has no field {name!r}{hint}")
        if target.kind == "map":
            return target.item or DYN
        if _known(target):
            shown = self.show(target_tree)
            return self.issue(at, f"{shown} is {target.describe()}: it has no field {name!r}")
        return DYN

    def r_member_index(self, tree: Node) -> CelType:
        target_tree, index_tree = tree.children
        target, index = self.visit(target_tree), self.visit(index_tree)
        if target.kind == "list":
            self.expect(index_tree, index, ("int", "uint"), "a list is indexed by a number: list[0]")
            return target.item or DYN
        if target.kind == "record":
            name = _string_literal(index_tree)
            return self.field(index_tree, target_tree, target, name) if name is not None else DYN
        if target.kind == "map":
            return target.item or DYN
        if _known(target):
            return self.issue(tree, f"{self.show(target_tree)} is {target.describe()}: it cannot be indexed")
        return DYN

    def r_member_object(self, tree: Node) -> CelType:
        return self.issue(tree, "message construction (Type{...}) is not available here")

    def r_member_dot_arg(self, tree: Node) -> CelType:
        target_tree, name_token, *rest = tree.children
        name = str(name_token)
        args = _args(rest[0] if rest else None)
        target = self.visit(target_tree)
        if name in MACROS:
            return self.macro(tree, target_tree, target, name, args)
        types = [self.visit(a) for a in args]
        if name not in METHODS:
            return self.unknown_function(name_token, name, METHODS, method=True)
        if name == "size":
            self.expect(target_tree, target, SIZED, "size() counts text or a list")
            return INT
        if name == "contains":
            self.expect(target_tree, target, ("string", "list", *MAPS), "contains() looks in text or a list")
            if target.kind == "string" and types:
                self.expect(args[0], types[0], ("string",), "contains() looks for text in text")
            return BOOL
        if name in STRING_TESTS:
            fix = f"; for a list write {self.show(target_tree)}.exists(x, x.{name}(...))"
            if _known(target) and target.kind != "string":
                self.issue(
                    target_tree,
                    f"{name}() tests text, but {self.show(target_tree)} is {target.describe()}"
                    + (fix if target.kind == "list" else ""),
                )
            for arg, got in zip(args, types, strict=False):
                self.expect(arg, got, ("string",), f"{name}() takes text")
            return BOOL
        return INT  # the timestamp getters

    def macro(self, at: Node, target_tree: Node, target: CelType, name: str, args: list[Node]) -> CelType:
        if len(args) not in (2, 3) or (len(args) == 3 and name != "map"):
            return self.issue(at, f"{name}() takes a variable and an expression: list.{name}(x, x == 'a')")
        variable = _identifier(args[0])
        if variable is None:
            return self.issue(args[0], f"the first argument of {name}() is a variable name, like x")
        if _known(target) and target.kind not in ("list", *MAPS):
            return self.issue(
                target_tree,
                f"{name}() goes through a list, but {self.show(target_tree)} is {target.describe()}",
            )
        element = target.item if target.kind == "list" else STRING if target.kind in MAPS else DYN
        self.scopes.append({variable: element or DYN})
        try:
            results = [self.visit(a) for a in args[1:]]
        finally:
            self.scopes.pop()
        if name in ("all", "exists", "exists_one"):
            self.need_bool(args[1], results[0], f"{name}() needs a condition for each item")
            return BOOL
        if name == "filter":
            self.need_bool(args[1], results[0], "filter() needs a condition for each item")
            return target if target.kind == "list" else list_of(DYN)
        if len(args) == 3:
            self.need_bool(args[1], results[0], "map(x, condition, value) needs a condition")
        return list_of(results[-1])

    def r_ident_arg(self, tree: Node) -> CelType:
        name_token, *rest = tree.children
        name = str(name_token)
        args = _args(rest[0] if rest else None)
        if name == "has":
            if len(args) != 1 or _member_dot(args[0]) is None:
                return self.issue(tree, "has() takes one field: has(event.pull_request.draft)")
            self.visit(args[0])
            return BOOL
        types = [self.visit(a) for a in args]
        if self.status and name in STATUS_FUNCTIONS:
            if args:
                return self.issue(tree, f"{name}() takes no arguments")
            return BOOL
        if name not in FUNCTIONS:
            known = (*FUNCTIONS, *STATUS_FUNCTIONS) if self.status else FUNCTIONS
            if name in STATUS_FUNCTIONS:
                return self.issue(name_token, f"{name}() is only known in a job's if:")
            return self.unknown_function(name_token, name, known, method=False)
        if name == "size":
            if len(args) == 1:
                self.expect(args[0], types[0], SIZED, "size() counts text or a list")
            return INT
        if name in CONVERSIONS:
            return CONVERSIONS[name]
        if name in ("contains", *STRING_TESTS):
            return BOOL
        return {"dyn": DYN, "type": TYPE, "timestamp": TIMESTAMP, "duration": DURATION}.get(name, INT)

    r_dot_ident_arg = r_ident_arg

    def unknown_function(self, at: Token, name: str, known: tuple[str, ...], method: bool) -> CelType:
        advice = FOREIGN_FUNCTIONS.get(name)
        kind = "method" if method else "function"
        if advice:
            return self.issue(at, f"unknown {kind} {name}(): {advice}")
        return self.issue(at, f"unknown {kind} {name}(){did_you_mean(name, known)}")

    def r_ident(self, tree: Node) -> CelType:
        name = str(tree.children[0])
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        if name in TYPE_NAMES:
            return TYPE
        advice = UNKNOWN_NAMES.get(name)
        if advice is None:
            names = [n for scope in self.scopes for n in scope]
            near = closest(name, names)
            advice = (
                f"did you mean {near!r}?"
                if near
                else f"text is written in quotes: '{name}'; the condition reads {one_of(self.scopes[0])}"
            )
        return self.issue(tree, f"unknown name {name!r}: {advice}")

    r_dot_ident = r_ident

    def r_paren_expr(self, tree: Node) -> CelType:
        return self.visit(tree.children[0])

    def r_list_lit(self, tree: Node) -> CelType:
        items = [self.visit(a) for a in _args(tree.children[0] if tree.children else None)]
        known = {t.kind for t in items if _known(t)}
        return list_of(items[0] if len(known) == 1 and len(items) == sum(map(_known, items)) else DYN)

    def r_map_lit(self, tree: Node) -> CelType:
        parts = [self.visit(c) for c in (tree.children[0].children if tree.children else [])]
        values = parts[1::2]
        return map_of(values[0] if values and all(v == values[0] for v in values) else DYN)

    def r_literal(self, tree: Node) -> CelType:
        token = tree.children[0]
        return LITERALS.get(token.type, DYN) if isinstance(token, Token) else DYN


_OPERATORS = {
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "eq": "==",
    "ne": "!=",
    "in": "in",
    "add": "+",
    "sub": "-",
    "mul": "*",
    "div": "/",
    "mod": "%",
}


def _hint(got: CelType, shown: str) -> str:
    x = shown if len(shown) <= 40 and " " not in shown else "x"
    if got.kind == "string":
        return f": compare it, e.g. {x} == 'main', or test it, e.g. {x}.startsWith('release/')"
    if got.kind in NUMBERS:
        return f": compare it, e.g. {x} > 0"
    if got.kind == "list":
        return f": test it, e.g. 'name' in {x} or size({x}) > 0"
    return ""


def _args(exprlist: Node | Token | None) -> list[Node]:
    if not isinstance(exprlist, Tree):
        return []
    return [c for c in exprlist.children if isinstance(c, Tree)]


def _down(tree: Node) -> Node:
    """Below the chain of single-child precedence rules (expr → … → primary)."""
    while len(tree.children) == 1 and isinstance(tree.children[0], Tree) and tree.data not in _LEAVES:
        tree = tree.children[0]
    return tree


_LEAVES = ("literal", "ident", "member_dot", "list_lit", "member_dot_arg", "ident_arg", "member_index")


def _string_literal(tree: Node) -> str | None:
    import ast

    leaf = _down(tree)
    if leaf.data == "literal" and isinstance(leaf.children[0], Token):
        token = leaf.children[0]
        if token.type == "STRING_LIT" and not str(token).lower().startswith("r"):
            try:
                value = ast.literal_eval(str(token))
            except (SyntaxError, ValueError):
                return None
            return value if isinstance(value, str) else None
    return None


def _identifier(tree: Node) -> str | None:
    leaf = _down(tree)
    if leaf.data == "ident" and isinstance(leaf.children[0], Token):
        return str(leaf.children[0])
    return None


def _member_dot(tree: Node) -> Node | None:
    leaf = _down(tree)
    return leaf if leaf.data == "member_dot" else None


def _list_literal(tree: Node) -> list[Node]:
    leaf = _down(tree)
    if leaf.data == "list_lit" and leaf.children:
        return _args(leaf.children[0])
    return []


def check(
    tree: Node, source: str, variables: Mapping[str, CelType], want_bool: bool, status: bool = False
) -> list[CelIssue]:
    """Everything certainly wrong with the parsed expression ``tree`` (of ``source``);
    ``status``: the status functions of a job's ``if:`` are known."""
    checker = _Checker(source, variables, status)
    try:
        result = checker.visit(tree)
    except (RecursionError, IndexError, AttributeError, ValueError):  # a tree shape not foreseen: no verdict
        return checker.issues
    if want_bool and not checker.issues:
        checker.need_bool(tree, result, "an if: condition must be true or false")
    seen: set[tuple[str, int]] = set()
    unique = []
    for issue in checker.issues:
        if (issue.message, issue.offset) not in seen:
            seen.add((issue.message, issue.offset))
            unique.append(issue)
    return unique
