"""Reading recipe text: YAML (JSON is YAML) into a mapping, with a syntax error told in one line.

The parser's own message is a multi-line dump with a caret; a recipe author gets where (1-based
line and column, and the bracket the error belongs to) and what to check instead.
"""

from __future__ import annotations

from typing import Any

import yaml

from consortium.errors import InvalidInput


def load_text(text: str | bytes) -> Any:
    """``yaml.safe_load``, its syntax errors raised as ``InvalidInput`` (``yaml_error``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise yaml_error(e) from None


def yaml_error(e: yaml.YAMLError) -> InvalidInput:
    """The parser's complaint in one line, with where (1-based line and column) and what to check.

    >>> try:
    ...     yaml.safe_load("name: x\\nmodel: {type: mlp\\ntrain: {}")
    ... except yaml.YAMLError as err:
    ...     print(yaml_error(err).message.replace(" (in ", "\\n(in "))
    the recipe is not valid YAML at line 3, column 6: expected ',' or '}', but got ':'
    (in the flow mapping that starts at line 2, column 8)
    """
    mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
    if mark is None or not problem:
        return InvalidInput("the recipe is not valid YAML/JSON", hint="check its brackets and indentation")
    msg = f"the recipe is not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and cmark is not None and (cmark.line, cmark.column) != (mark.line, mark.column):
        what = context.removeprefix("while parsing ").removeprefix("while scanning ")
        what = what.removeprefix("a ").removeprefix("an ")
        msg += f" (in the {what} that starts at line {cmark.line + 1}, column {cmark.column + 1})"
    hint = ("indent with spaces, not tabs" if "\\t" in problem else
            "close every { and [ you open, put a space after each ':', and indent nested keys by the same spaces")
    return InvalidInput(msg, hint=hint, details=[{"line": mark.line + 1, "column": mark.column + 1}])
