"""YAML syntax errors in plain words: what the parser tripped over and what to write instead.

The parser's own words ("did not find expected key", "mapping values are not allowed in this
context") say where it stopped, not what the person wrote. :func:`explain` looks at the line
(and the one that opened the construct) and says which everyday slip it most likely was: a
``: `` inside a value, a tab, an indentation that matches no key, a quote or bracket never
closed, a value starting with a character YAML reserves.
"""

from __future__ import annotations

import re

import yaml

RESERVED_STARTS = {
    "@": "'@' is reserved in YAML",
    "`": "'`' is reserved in YAML",
    "%": "'%' starts a YAML directive",
    "*": "'*' starts a YAML alias (a reference to an &anchor)",
    "&": "'&' starts a YAML anchor",
    "!": "'!' starts a YAML tag",
    "|": "'|' starts a block of text",
    ">": "'>' starts a folded block of text",
}
SCANNING = {
    "while scanning an alias": "'*' starts a YAML alias (a reference to an &anchor)",
    "undefined alias": "'*' starts a YAML alias (a reference to an &anchor)",
    "while scanning an anchor": "'&' starts a YAML anchor",
    "while scanning a tag": "'!' starts a YAML tag",
    "while scanning a block scalar": "'|' or '>' starts a block of text on the lines below it",
}
_KEY = re.compile(r"^(\s*)(- +)?([^\s#'\"][^:#]*?|'[^']*'|\"[^\"]*\"):(\s+|$)")


def _line(lines: list[str], number: int) -> str:
    """Line ``number`` (1-based) without its trailing comment."""
    return _code(lines[number - 1]) if 0 < number <= len(lines) else ""


def _code(text: str) -> str:
    """``text`` without a `` # comment`` (one outside quotes)."""
    quote = ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"" and (index == 0 or text[index - 1] in " [{,:"):
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[:index].rstrip()
    return text.rstrip()


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def quoted(value: str) -> str:
    value = value.strip()
    return f'"{value}"' if "'" in value and '"' not in value else "'" + value.replace("'", "''") + "'"


def _value_of(text: str) -> tuple[str, str] | None:
    """(key part with its indentation, value) of a ``key: value`` line."""
    match = _KEY.match(text)
    if match is None or not text[match.end() :].strip():
        return None
    return text[: match.end()].rstrip() + " ", text[match.end() :].split(" #", 1)[0].rstrip()


def _colon_in_value(lines: list[str], line: int) -> str | None:
    text = _line(lines, line)
    found = _value_of(text)
    if found is not None and ": " in found[1] and found[1][0] not in "'\"[{":
        key, value = found
        return (
            f"the value {value!r} contains ': ', which YAML reads as the start of another key. "
            f"Put the whole value in quotes: {key.strip()} {quoted(value)}"
        )
    return None


def _indentation(lines: list[str], line: int, column: int) -> str:
    """What is wrong with a line whose indentation fits no key above it."""
    text = _line(lines, line)
    mine = _indent(text)
    if text.lstrip().startswith("- "):
        return (
            "a list item ('- ') where a key was expected. Put it under a key (e.g. steps:), "
            "indented more than that key"
        )
    siblings = sorted({_indent(t) for t in lines[: line - 1] if t.strip() and not t.lstrip().startswith("#")})
    near = [i for i in siblings if i < mine]
    closest = max(near) if near else 0
    above = [i for i in siblings if i > mine]
    if above:
        return (
            f"this line is indented {mine} spaces, which lines up with no key above it: "
            f"keys of the same mapping must start in the same column "
            f"(the keys near it start at {min(above, key=lambda i: abs(i - mine))} or {closest} spaces)"
        )
    return f"this line is indented {mine} spaces: keys of one mapping must start in the same column"


def explain(exc: yaml.MarkedYAMLError, source: str) -> tuple[str, int, int]:
    """(message, line, column) for a YAML syntax error, 1-based."""
    lines = source.splitlines()
    mark = exc.problem_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    context_mark = exc.context_mark
    context_line = context_mark.line + 1 if context_mark else 0
    problem, context = exc.problem or "", exc.context or ""
    text = _line(lines, line)
    char = text[column - 1] if 0 < column <= len(text) else ""

    if "cannot start any token" in problem:
        if char == "\t" or "\t" in text[: _indent(text) + 1]:
            return "a tab character is used for indentation; YAML indents with spaces only", line, column
        reason = RESERVED_STARTS.get(char, f"{char!r} cannot start a value")
        found = _value_of(text)
        fix = f": {found[0].strip()} {quoted(found[1])}" if found else ""
        return f"{reason}, so a value cannot start with it. Put the value in quotes{fix}", line, column
    if "mapping values are not allowed" in problem:
        said = _colon_in_value(lines, line)
        if said:
            return said, line, column
        above = _line(lines, line - 1)
        bare = re.match(r"^\s*(- +)?([A-Za-z_][\w.-]*):(\S.*)$", above)
        if bare:
            return (
                f"line {line - 1} needs a space after the colon: {bare.group(2)}: {bare.group(3)}",
                line - 1,
                _indent(above) + len(bare.group(1) or "") + len(bare.group(2)) + 2,
            )
        if line > 1 and _indent(text) > _indent(above) and _value_of(above):
            return (
                f"this line is indented more than the key above it, which already has a value "
                f"({above.strip()}). Line the keys up in the same column",
                line,
                column,
            )
        return "a ':' here starts a key where none can be. Put the value in quotes", line, column
    if "did not find expected key" in problem or "expected '-' indicator" in problem:
        stripped = text[column - 1 :] if column else ""
        opened = _line(lines, line)
        quote = re.search(r":\s+(['\"])(.*?)\1(\s*\S.*)$", opened)
        if quote and line == (mark.line + 1 if mark else 0) and not stripped.startswith(("-", "#")):
            whole = opened.split(":", 1)[1].strip()
            return (
                f"text follows the closing quote ({quote.group(3).strip()!r}). "
                f"Quote the whole value: {opened.split(':', 1)[0].strip()}: {quoted(whole)}",
                line,
                column,
            )
        if re.search(r":\s+'[^']*'[^'\s]", opened) or opened.count("'") % 2 == 1:
            return (
                "a single quote inside a value in single quotes ends it early. "
                "Write it twice ('it''s') or use double quotes",
                line,
                column,
            )
        if "expected '-' indicator" in problem:
            return (
                f"this line is not a list item ('- ') but the list that starts at line {context_line} "
                f"is not finished. Indent it under a list item, or indent it less to end the list",
                line,
                column,
            )
        return _indentation(lines, line, column), line, column
    if "while scanning a quoted scalar" in context:
        return (
            f"the quote opened at line {context_line} is never closed. Add the closing quote",
            context_line,
            context_mark.column + 1 if context_mark else 0,
        )
    if "flow sequence" in context or "flow mapping" in context:
        bracket, close = ("[", "]") if "sequence" in context else ("{", "}")
        return (
            f"the {bracket} opened here is not closed with {close} before line {line} "
            f"(or two of its items have no ',' between them)",
            context_line or line,
            context_mark.column + 1 if context_mark else column,
        )
    alias = "undefined alias" if "undefined alias" in problem else ""
    scanning = next((c for c in SCANNING if c in context), alias)
    if scanning:
        found = _value_of(text)
        fix = f": {found[0].strip()} {quoted(found[1])}" if found else ""
        if found and found[1][:1] in "[{" and column:  # an item of [a, b]: quote that item
            start = context_mark.column if context_mark and context_line == line else column - 1
            end = min([i for i in (text.find(c, start) for c in ",]}") if i >= 0] or [len(text)])
            item = text[start:end].strip()
            fix = ": " + (text[:start] + quoted(item) + text[start + len(item) :]).strip()
            column = start + 1
        return f"{SCANNING[scanning]}, so this value must be quoted{fix}", line, column
    if "could not find expected ':'" in problem:
        return (
            f"line {context_line} is not 'key: value'. If it belongs to a block of text above "
            f"(run: |), indent it more than that key",
            context_line,
            context_mark.column + 1 if context_mark else 0,
        )
    if "block sequence entries are not allowed" in problem:
        return (
            "a list item ('- ') cannot follow a key on the same line: start the list on the next "
            "line, indented, or write [a, b]",
            line,
            column,
        )
    if "another document" in problem:
        return f"a job file is one YAML document: remove the '---' at line {line}", line, column
    if "mapping keys are not allowed" in problem:
        return "'? ' starts a YAML key here. Put the value in quotes", line, column
    words = f"{problem} ({context})" if context else problem
    return words, line, column
