"""A job's memory, estimated from its family's params at submission, without torch.

Each family declares, in its own file, how many weights its G and D hold, how many activations one training step
outputs and how many floats one of its images takes, as arithmetic over its Config's params (training/families/base.py
`memory`); `ganserve catalog` writes those expressions into catalog.json with the bytes each unit costs and the
family's base, measured once (training/memory.py).
Here they are evaluated on a job's params: only names, numbers, arithmetic, comparisons and `x if c else y`.
"""
from __future__ import annotations

import ast
import functools
import operator
from typing import Any

MB = 2**20
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
           ast.Mod: operator.mod, ast.Pow: operator.pow, ast.Div: operator.truediv}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}


@functools.lru_cache(maxsize=256)
def parse(expression: str) -> ast.Expression:
    """The expression's tree; ValueError for anything beyond the arithmetic evaluate() allows."""
    tree = ast.parse(expression, mode="eval")
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.USub, ast.Name, ast.Load, ast.Constant, ast.IfExp,
               ast.Compare, ast.BoolOp, ast.Or, ast.And, *_BINARY, *_COMPARE)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ValueError(f"memory expression {expression!r}: {type(node).__name__} is not allowed")
    return tree


def names(expression: str) -> set[str]:
    """The params an expression reads."""
    return {node.id for node in ast.walk(parse(expression)) if isinstance(node, ast.Name)}


def evaluate(expression: str, params: dict[str, Any]) -> float:
    """An expression's value for these params (every name it reads must be one)."""
    def value(node):
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return params[node.id]
        if isinstance(node, ast.UnaryOp):
            return -value(node.operand)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.IfExp):
            return value(node.body) if value(node.test) else value(node.orelse)
        if isinstance(node, ast.BoolOp):
            values = [value(v) for v in node.values]
            return (next((v for v in values if v), values[-1]) if isinstance(node.op, ast.Or)
                    else next((v for v in values if not v), values[-1]))
        left = value(node.left)  # ast.Compare
        for op, right in zip(node.ops, node.comparators):
            if not _COMPARE[type(op)](left, right := value(right)):
                return False
            left = right
        return True
    return float(value(parse(expression)))


def estimate(spec: dict, params: dict[str, Any], images: int = 0) -> int:
    """Bytes a job of this family (its catalog entry) on `images` training images is expected to hold at its peak,
    training, and evaluating its export (which holds samples in proportion to an image's size, whatever the data's)."""
    memory = spec["memory"]
    values = {name: p["default"] for name, p in spec["params"].items()} | params
    per_image_float = memory["image_float_bytes"] * images + memory["evaluation_bytes"]
    return int(memory["base_bytes"] + memory["weight_bytes"] * evaluate(memory["weights"], values)
               + memory["activation_bytes"] * evaluate(memory["activations"], values)
               + per_image_float * evaluate(memory["image"], values))


def check(spec: dict, params: dict[str, Any], limit: int, images: int = 0) -> None:
    """ValueError naming the params the estimate grows with (those the job set first) when it is past `limit`."""
    need = estimate(spec, params, images)
    if need <= limit:
        return
    memory = spec["memory"]
    grows = sorted(names(memory["weights"]) | names(memory["activations"]) | names(memory["image"]))
    named = [name for name in grows if name in params] or grows
    values = ", ".join(f"params.{name} = {params.get(name, spec['params'][name]['default'])}" for name in named)
    data = f" on {images:,} images" if images else ""
    raise ValueError(f"params.{named[0]}: the job would need about {need // MB:,} MB of memory{data}, past the limit "
                     f"of {limit // MB:,} MB (max_job_memory); make smaller: {values}")
