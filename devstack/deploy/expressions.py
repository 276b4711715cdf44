"""Terraform expressions evaluated offline, on the tree python-hcl2 parses: references
(var.* from a .tfvars file or the defaults, local.*, path.module, a resource's own
arguments), string templates, function calls (those the module uses), operators,
conditionals and `for`. A resource attribute that only exists after apply (a
random_password's `result`) comes from `known`.

The one evaluator of terraform/ in Python: everything that needs a value from the
module (tests/deploy, make deploy-check's production values, the chart digest) goes
through `evaluate`. What it cannot know (type conversions, variable validations) is
asked of Terraform itself where a binary exists (terraform_console.py).

    evaluate("${local.app_config}", module_with_tfvars(EXAMPLE_TFVARS))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hcl2.api import parses_to_tree
from lark import Token, Tree

from devstack.deploy.terraform import Each, Module, Unresolved, origin

Scope = Mapping[str, Any]


def evaluate(value: Any, module: Module, each: Each = None, known: Mapping[str, Any] | None = None) -> Any:
    """A loaded HCL value with every "${...}" in it evaluated, maps and lists deeply;
    `each` is the (each.key, each.value) of a resource with for_each."""
    evaluator = Evaluator(module, known or {})
    scope = {} if each is None else {"each": {"key": each[0], "value": evaluator.value(each[1])}}
    return evaluator.value(value, scope)


def evaluate_or_none(value: Any, module: Module, each: Each = None) -> Any:
    """As `evaluate`, None where it cannot be evaluated offline (a variable with no default)."""
    try:
        return evaluate(value, module, each)
    except Unresolved:
        return None


def for_each_items(body: dict[str, Any], module: Module) -> Iterator[Each]:
    """(each.key, each.value as written) per instance of a resource, or None without for_each."""
    if "for_each" not in body:
        yield None
        return
    items = origin(body["for_each"], module)
    if not isinstance(items, dict):
        items = evaluate(items, module)
    assert isinstance(items, dict), f"for_each must be a map, got {body['for_each']!r}"
    yield from items.items()


def template_text(value: Any) -> str:
    """A value as a string template or tostring() writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    raise Unresolved(f"{value!r} inside a string template")


@cache
def _parsed(expression: str) -> Tree:
    attribute = parses_to_tree(f"x = {expression}").children[0].children[0]
    return attribute.children[-1]


def _template_parts(text: str) -> list[tuple[bool, str]]:
    """(is_expression, text) pieces of a string with ${...} interpolations; braces and
    quoted strings inside an interpolation are skipped over."""
    parts: list[tuple[bool, str]] = []
    position = 0
    while (start := text.find("${", position)) != -1:
        if start > position:
            parts.append((False, text[position:start]))
        depth, index, quoted = 1, start + 2, False
        while depth:
            char = text[index]
            if quoted:
                quoted = char != '"' or text[index - 1] == "\\"
            elif char == '"':
                quoted = True
            else:
                depth += {"{": 1, "}": -1}.get(char, 0)
            index += 1
        parts.append((True, text[start + 2 : index - 1]))
        position = index
    if position < len(text):
        parts.append((False, text[position:]))
    return parts


def _fileset(directory: str, pattern: str) -> list[str]:
    if pattern != "**":
        raise Unresolved(f"fileset pattern {pattern!r}")
    root = Path(directory)
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def _replace(text: str, old: str, new: str) -> str:
    if len(old) > 1 and old.startswith("/") and old.endswith("/"):
        raise Unresolved(f"replace() with the pattern {old}")  # Terraform's regex form
    return text.replace(old, new)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "merge": lambda *maps: {key: value for each in maps for key, value in each.items()},
    "join": lambda separator, items: separator.join(template_text(item) for item in items),
    "tostring": template_text,
    "sort": lambda items: sorted(items),
    "sha256": lambda text: hashlib.sha256(text.encode()).hexdigest(),
    "filesha256": lambda path: hashlib.sha256(Path(path).read_bytes()).hexdigest(),
    "fileset": _fileset,
    # Terraform's jsonencode: keys sorted, no spaces (the checksum only has to follow the data).
    "jsonencode": lambda value: json.dumps(value, sort_keys=True, separators=(",", ":")),
    "yamlencode": lambda value: yaml.safe_dump(value, sort_keys=True),
    "nonsensitive": lambda value: value,
    "length": len,
    "replace": lambda text, old, new: _replace(text, old, new),
    "startswith": lambda text, prefix: text.startswith(prefix),
}

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "%": lambda a, b: a % b,
    "&&": lambda a, b: a and b,
    "||": lambda a, b: a or b,
}


@dataclasses.dataclass(frozen=True)
class _Root:
    """The head of a reference before its name: var, local, path or a resource type."""

    parts: tuple[str, ...]


def _children(node: Tree) -> list[Any]:
    """A node's children without punctuation tokens and newlines."""
    return [
        child
        for child in node.children
        if (isinstance(child, Tree) and child.data != "new_line_or_comment")
        or (isinstance(child, Token) and child.type in ("INT_LITERAL", "FLOAT_LITERAL", "NAME", "STRING_CHARS"))
    ]


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unescape(chars: str) -> str:
    return re.sub(r"\\(.)", lambda match: _ESCAPES.get(match.group(1), match.group(0)), chars)


def _bare_key(node: Tree) -> str | None:
    """`name` in `{ name = ... }`: a bare identifier as an object key is its own name."""
    while isinstance(node, Tree) and node.data in ("object_elem_key", "expr_term") and len(_children(node)) == 1:
        node = _children(node)[0]
    if isinstance(node, Tree) and node.data in ("identifier", "keyword"):
        return str(node.children[0])
    return None


class Evaluator:
    def __init__(self, module: Module, known: Mapping[str, Any]) -> None:
        self.module = module
        self.known = known

    def value(self, value: Any, scope: Scope | None = None) -> Any:
        """A loaded HCL value with every "${...}" in it evaluated, maps and lists deeply."""
        scope = scope or {}
        if isinstance(value, dict):
            return {key: self.value(item, scope) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item, scope) for item in value]
        if not isinstance(value, str) or "${" not in value:
            return value
        parts = _template_parts(value)
        if len(parts) == 1 and parts[0][0]:  # "${expr}" alone keeps the expression's type
            return self.tree(_parsed(parts[0][1]), scope)
        return "".join(template_text(self.tree(_parsed(text), scope)) if is_expr else text for is_expr, text in parts)

    def reference(self, root: _Root, name: str) -> Any:
        head, *rest = (*root.parts, name)
        if head == "var":
            return self.value(self.module.variable(name))
        if head == "local":
            return self.value(self.module.locals[name])
        if head == "path" and name == "module":
            return str(self.module.directory)
        if head in self.module.resources and not rest[1:]:
            return _Root((head, name))
        if head in self.module.resources:
            key = ".".join((head, *rest))
            if key in self.known:
                return self.known[key]
            body = self.module.resources[head][rest[0]]
            if name not in body:
                raise Unresolved(f"{key} is known only after apply: pass it in `known`")
            return self.value(body[name])
        raise Unresolved(f"{'.'.join((head, *rest))}")

    def tree(self, node: Any, scope: Scope) -> Any:
        if isinstance(node, Token):
            if node.type == "INT_LITERAL":
                return int(node)
            if node.type == "FLOAT_LITERAL":
                return float(node)
            return str(node)
        kind, children = node.data, _children(node)
        if kind in ("expr_term", "interpolation", "object_elem_key") and len(children) == 1:
            return self.tree(children[0], scope)
        if kind in ("int_lit", "float_lit"):
            return self.tree(children[0], scope)
        if kind == "literal_value":
            return {"true": True, "false": False, "null": None}[str(node.children[0])]
        if kind == "identifier":
            name = str(node.children[0])
            return scope[name] if name in scope else _Root((name,))
        if kind == "string":
            pieces = (part.children[0] for part in children)
            return "".join(
                _unescape(piece) if isinstance(piece, Token) else template_text(self.tree(piece, scope))
                for piece in pieces
            )
        if kind == "get_attr_expr_term":
            base = self.tree(children[0], scope)
            name = str(_children(children[1])[0].children[0])
            return self.reference(base, name) if isinstance(base, _Root) else base[name]
        if kind == "index_expr_term":
            base = self.tree(children[0], scope)
            index = self.tree(_children(children[1])[0], scope)
            return base[int(index)] if isinstance(base, list) else base[index]
        if kind == "tuple":
            return [self.tree(child, scope) for child in children]
        if kind == "object":
            result = {}
            for element in children:
                key_node, value_node = _children(element)
                result[_bare_key(key_node) or self.tree(key_node, scope)] = self.tree(value_node, scope)
            return result
        if kind == "function_call":
            name = str(children[0].children[0])
            if name not in FUNCTIONS:
                raise Unresolved(f"function {name}()")
            arguments = [self.tree(child, scope) for child in _children(children[1])] if len(children) > 1 else []
            return FUNCTIONS[name](*arguments)
        if kind == "binary_op":
            operator, right = node.children[1].children[0], node.children[1].children[-1]
            return _OPERATORS[str(operator.children[0])](self.tree(children[0], scope), self.tree(right, scope))
        if kind == "unary_op":
            operand = self.tree(children[0], scope)
            return not operand if str(node.children[0]) == "!" else -operand
        if kind == "conditional":
            condition, if_true, if_false = children
            return self.tree(if_true if self.tree(condition, scope) else if_false, scope)
        if kind in ("for_tuple_expr", "for_object_expr"):
            return self.for_expression(kind, children, scope)
        raise Unresolved(f"expression kind {kind}")

    def for_expression(self, kind: str, children: list[Any], scope: Scope) -> Any:
        intro, *bodies = children
        condition = bodies.pop().children[-1] if bodies[-1].data == "for_cond" else None
        *names, collection = _children(intro)
        items = self.tree(collection, scope)
        pairs = sorted(items.items()) if isinstance(items, dict) else list(enumerate(items))
        results = []
        for key, item in pairs:
            inner = {**scope, **dict(zip([str(n.children[0]) for n in names], [key, item][-len(names) :], strict=True))}
            if condition is not None and not self.tree(condition, inner):
                continue
            results.append([self.tree(body, inner) for body in bodies])
        if kind == "for_tuple_expr":
            return [body[0] for body in results]
        return {key: value for key, value in results}
