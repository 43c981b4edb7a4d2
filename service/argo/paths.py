"""JSON paths as error messages spell them: ``spec.templates[2].container.image``.

Keys are joined with dots, list indexes are ``[i]``, and a key that is not a plain word
(a label like ``app.kubernetes.io/name``) is quoted: ``metadata.labels["app.kubernetes.io/name"]``.
"""

import json
import re
from collections.abc import Iterable

ROOT = "(root)"

_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


def child(path: str, part: str | int) -> str:
    """The path of ``part`` (a key or a list index) inside the value at ``path``."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    if _PLAIN_KEY.match(part):
        return f"{path}.{part}" if path else part
    return f"{path}[{json.dumps(part)}]"


def join(parts: Iterable[str | int], prefix: str = "") -> str:
    """The path of ``parts`` below ``prefix``; ``(root)`` for the document itself."""
    path = prefix
    for part in parts:
        path = child(path, part)
    return path or ROOT


def json_type(value: object) -> str:
    """The JSON/YAML name of a value's type, for "expected X, got Y" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
