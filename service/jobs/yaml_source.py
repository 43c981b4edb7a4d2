"""Load YAML into plain values while remembering where each value came from.

Job files come from repositories, so loading is defensive: a size limit, a node budget that
stops alias bombs ("billion laughs") before they expand, a nesting limit, and only the safe
scalar types. Merge keys (``<<: *anchor``) and anchors work as usual.

Besides the data it keeps what later checks need to speak about what was *written*: the
position of every key and value, the text of every scalar YAML gave a type other than text
(``3.10`` read as the number 3.1, ``yes`` as true), and slips that need not stop the loading
(a key written twice, a value starting with ``!`` read as a tag), reported with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from service.jobs.yaml_errors import explain, quoted

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 256 * 1024
    max_nodes: int = 100_000  # values built, aliases counted every time they are used
    max_depth: int = 32
    max_jobs: int = 200  # DAG tasks of one file: every matrix cell counts
    max_matrix_cells: int = 256  # cells of one job's matrix
    max_templates: int = 20  # distinct templates one file may use


# libyaml's parser (about 10x faster than PyYAML's) when PyYAML was built with it; it refuses
# nesting deeper than 1,000 levels itself, below Python's recursion limit.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(Exception):
    """The text is not acceptable YAML; ``line``/``column`` are 1-based when known."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Located:
    """Plain data plus the position (1-based line, column) of every path in it.

    ``files`` names another file for the paths below a prefix (a job body that came from a
    template): positions there are in that file.
    """

    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    files: dict[Path, str] = field(default_factory=dict)
    # the node of each scalar value and the text it is in, for :meth:`value_at`
    scalars: dict[Path, ScalarNode] = field(default_factory=dict)
    source: str = ""
    # the text of scalars YAML typed as something that does not read back as written: 3.10 (the
    # number 3.1), yes (true), 010 (8), null, dates
    lossy: dict[Path, str] = field(default_factory=dict)
    # (path, line, column, message) of slips that did not stop the loading
    issues: list[tuple[Path, int, int, str]] = field(default_factory=list)
    # plain scalars written over several lines, which YAML joins into one with spaces
    folded: set[Path] = field(default_factory=set)

    def position(self, path: Path) -> tuple[int, int]:
        """The position of ``path``, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (1, 1))

    def text_of(self, path: Path) -> str | None:
        """The text written for a scalar YAML typed as a number, boolean, null or date."""
        node = self.scalars.get(path)
        if node is None or node.tag == STR_TAG or node.style:
            return None
        return str(node.value)

    def value_at(self, path: Path) -> tuple[int, int, str] | None:
        """Where the text value at ``path`` starts (line, column, its quote: "", "'" or '"'),
        when it is written on one line exactly as it reads (no escapes, no folding)."""
        node = self.scalars.get(path)
        if node is None or node.start_mark.line != node.end_mark.line:
            return None
        style = node.style or ""
        if style not in ("", "'", '"'):
            return None
        written = self.source[node.start_mark.index : node.end_mark.index]
        if written[len(style) : len(written) - len(style)] != node.value:
            return None
        return node.start_mark.line + 1, node.start_mark.column + 1, style

    def file_of(self, path: Path, default: str) -> str:
        """The file ``path`` was written in: ``default`` unless a template supplied it."""
        probe = tuple(path)
        while probe:
            if probe in self.files:
                return self.files[probe]
            probe = probe[:-1]
        return default


STR_TAG = "tag:yaml.org,2002:str"


def _reads_otherwise(value: Any, written: str) -> bool:
    """Whether a typed scalar reads back as other text than was written (3.10 -> "3.1")."""
    if isinstance(value, bool):
        return written not in ("true", "false")
    if isinstance(value, int | float):
        return str(value) != written
    return True  # null, dates, timestamps


class _Builder:
    def __init__(self, limits: Limits, source: str) -> None:
        self.limits = limits
        self.source = source
        self.count = 0
        self.positions: dict[Path, tuple[int, int]] = {}
        self.scalars: dict[Path, ScalarNode] = {}
        self.lossy: dict[Path, str] = {}
        self.issues: list[tuple[Path, int, int, str]] = []
        self.folded: set[Path] = set()
        self.constructor = SafeConstructor()

    def build(self, node: Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > self.limits.max_nodes:
            raise YamlError(
                f"too many values (over {self.limits.max_nodes}); aliases expanding too much?",
                node.start_mark.line + 1,
                node.start_mark.column + 1,
            )
        if depth > self.limits.max_depth:
            raise YamlError(
                f"nested deeper than {self.limits.max_depth} levels",
                node.start_mark.line + 1,
                node.start_mark.column + 1,
            )
        self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        raise YamlError("unsupported YAML node", node.start_mark.line + 1, node.start_mark.column + 1)

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        self.scalars[path] = node  # where its value is written, worked out when a problem asks
        style = node.style or ""  # libyaml says "" for plain scalars, PyYAML None
        start, end = node.start_mark, node.end_mark
        if not style and start.line != end.line:
            self.folded.add(path)
        line, column = start.line + 1, start.column + 1
        if node.tag[0] == "!":  # `if: !event.draft` is a tag, not the text it looks like
            written = self.source[node.start_mark.index : node.end_mark.index].strip()
            self.issues.append(
                (
                    path,
                    line,
                    column,
                    f"YAML reads a value that starts with '!' as a tag, not as text: "
                    f"quote it: {quoted(written)}",
                )
            )
            return written
        try:
            value = self.constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            raise YamlError(str(exc.problem), line, column) from exc
        except ValueError as exc:  # an integer of more digits than Python converts
            raise YamlError(
                f"a number too long to read ({len(node.value)} characters); quote it", line, column
            ) from exc
        if node.tag != STR_TAG and not style and _reads_otherwise(value, node.value):
            self.lossy[path] = node.value
        return value

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:  # duplicates written in the file (not merged in) are errors
            if isinstance(key_node, ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    self.issues.append(
                        (
                            (*path, key_node.value),
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                            f"duplicate key {key_node.value!r}: it is also written at line "
                            f"{seen[key_node.value]} of the same mapping; keep one",
                        )
                    )
                seen.setdefault(key_node.value, key_node.start_mark.line + 1)
        try:
            self.constructor.flatten_mapping(node)  # resolves "<<" merge keys; own keys win
        except ConstructorError as exc:
            raise YamlError(str(exc.problem), node.start_mark.line + 1, node.start_mark.column + 1) from exc
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise YamlError(
                    _braces(self.source, node), node.start_mark.line + 1, node.start_mark.column + 1
                )
            # Keys are names: keep the text as written, so YAML 1.1 does not turn the key
            # "on" (or "yes", "off") into a boolean.
            key = str(key_node.value)
            result[key] = self.build(value_node, (*path, key), depth + 1)
            # a key's own position is where the key is written
            self.positions[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return result


def load_located(text: str | bytes, limits: Limits | None = None) -> Located:
    """Parse one YAML document, enforcing ``limits``. Empty text gives ``None`` data."""
    limits = limits or Limits()
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if len(raw) > limits.max_bytes:
        raise YamlError(f"file is {len(raw)} bytes; the limit is {limits.max_bytes}")
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"file is not UTF-8: {exc}") from exc
    try:
        node = yaml.compose(source, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        message, line, column = explain(exc, source)
        raise YamlError(f"not valid YAML: {message}", line, column) from exc
    except yaml.YAMLError as exc:  # e.g. a control character: the first line says which
        raise YamlError(f"not valid YAML: {str(exc).splitlines()[0]}") from exc
    except RecursionError as exc:
        raise YamlError("nested too deeply to parse") from exc
    if node is None:
        return Located(None, {})
    builder = _Builder(limits, source)
    try:
        data = builder.build(node, (), 0)
    except RecursionError as exc:
        raise YamlError(f"nested deeper than {limits.max_depth} levels") from exc
    return Located(
        data,
        builder.positions,
        scalars=builder.scalars,
        source=source,
        lossy=builder.lossy,
        issues=builder.issues,
        folded=builder.folded,
    )


def _braces(source: str, node: Node) -> str:
    """What to say about ``{{ x }}`` (or ``[a]: b``), which YAML reads as a mapping in a key."""
    written = source[node.start_mark.index : node.end_mark.index]
    if written.startswith("{{"):
        start = node.start_mark.index
        key = source[source.rfind("\n", 0, start) + 1 : start].strip()
        return (
            f"YAML reads {written} as a mapping, not as text. forgeflow's expressions are written "
            f"${{{{ ... }}}} and a value with one is best quoted: {key} {quoted('$' + written)}".replace(
                ":  ", ": "
            )
        )
    return "a key here is itself a list or mapping; if this is text with brackets, put it in quotes"
