"""The config reference (docs/config.md), generated from the dataclasses and their field docstrings."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing

from mpidrl import registry
from mpidrl.config import SECTIONS
from mpidrl.config.schema import _describe


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (the string literal that follows it), fields inherited
    from dataclass bases included (a subclass's own docstring wins)."""
    docs = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        body = ast.parse(inspect.getsource(klass)).body[0].body
        for node, nxt in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if (
                    isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)
                ):
                    docs[node.target.id] = " ".join(nxt.value.value.split())  # one table row
    return docs


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return ""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else str(value)


def table(section: str, cls: type, algo: str | None = None) -> list[str]:
    """The key table of one section; under ``[algo]``, ``algo`` is the name the table describes."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        default = f'"{algo}"' if algo and f.name == "name" else _default(f)
        lines.append(f"| `{section}.{f.name}` | {_describe(hints[f.name])} | `{default}` | {docs.get(f.name, '')} |")
    return lines


def markdown() -> str:
    """The whole reference as Markdown."""
    out = [
        "# Config reference",
        "",
        "Generated from the dataclasses in `mpidrl/config` (`python -m mpidrl.config.reference > docs/config.md`).",
        "Every key may be set in the TOML file or with `--set section.key=value` (the value in TOML syntax).",
        "",
    ]
    for section, cls in SECTIONS.items():
        out += [f"## [{section}]", "", (cls.__doc__ or "").strip(), "", *table(section, cls), ""]
    out += ["## [algo]", "", "`name` selects the algorithm; the other keys are that algorithm's.", ""]
    for name in registry.BUILTINS:  # installed plugins document themselves
        spec = registry.lookup(name)
        doc = spec.doc or spec.params.__doc__ or ""
        out += [f'### `name = "{name}"`', "", doc.strip(), "", *table("algo", spec.params, name), ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown())
