"""The types CEL expressions see: the ``event`` variable's fields, and the type values the
static checker (:mod:`service.jobs.celcheck`) reasons with.

The schema mirrors :func:`service.jobs.expressions.event_context` field by field (a test
keeps the two equal), so a condition that reads a field the context lacks (``drafts``) or
compares it with the wrong kind of value (``number == "7"``) is found when the job file is
loaded, not when an event arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.events import EventKind


@dataclass(frozen=True)
class CelType:
    """A CEL type: a scalar kind, a list or map (``item``: element or value type), a record with
    known ``fields`` (the event and its parts), or ``dyn`` (unknown: anything goes)."""

    kind: str
    item: CelType | None = None
    fields: tuple[tuple[str, CelType], ...] = ()
    name: str = ""  # a record's path, for messages: "event.pull_request"
    values: tuple[str, ...] = ()  # the only values a string field takes, when known
    hint: str = ""  # what to say when a record has no field of the name asked

    @property
    def field_map(self) -> dict[str, CelType]:
        return dict(self.fields)

    def describe(self) -> str:
        """How a newcomer would call it: "text", "a number", "true/false", "a list of text"."""
        if self.kind == "list":
            inner = self.item.describe() if self.item is not None and self.item.kind != "dyn" else ""
            return f"a list of {inner.removeprefix('a ')}" if inner else "a list"
        return WORDS.get(self.kind, self.kind)


WORDS = {
    "bool": "true/false",
    "int": "a number",
    "uint": "a number",
    "double": "a decimal number",
    "string": "text",
    "bytes": "bytes",
    "null": "null",
    "map": "a map",
    "record": "a map",
    "type": "a type",
    "timestamp": "a timestamp",
    "duration": "a duration",
}

DYN = CelType("dyn")
BOOL = CelType("bool")
INT = CelType("int")
UINT = CelType("uint")
DOUBLE = CelType("double")
STRING = CelType("string")
BYTES = CelType("bytes")
NULL = CelType("null")
TYPE = CelType("type")
TIMESTAMP = CelType("timestamp")
DURATION = CelType("duration")


def list_of(item: CelType) -> CelType:
    return CelType("list", item=item)


def map_of(value: CelType) -> CelType:
    return CelType("map", item=value)


def record(path: str, /, **fields: CelType) -> CelType:
    return CelType("record", fields=tuple(fields.items()), name=path)


STRINGS = list_of(STRING)
FORGES = ("github", "gitlab", "forgejo", "pagure", "local")
EVENT_KINDS = tuple(kind.value for kind in EventKind)

EVENT = record(
    "event",
    forge=CelType("string", values=FORGES),
    kind=CelType("string", values=EVENT_KINDS),
    action=STRING,
    sha=STRING,
    short_sha=STRING,
    ref=STRING,
    branch=STRING,
    tag=STRING,
    before=STRING,
    sender=STRING,
    created=BOOL,
    target_branch=STRING,
    labels=STRINGS,
    clone_url=STRING,
    jobs=STRINGS,
    files=STRINGS,
    inputs=map_of(DYN),
    schedule=STRING,
    repository=record(
        "event.repository",
        namespace=STRING,
        name=STRING,
        full_name=STRING,
        default_branch=STRING,
        private=BOOL,
        clone_url=STRING,
        html_url=STRING,
    ),
    pull_request=record(
        "event.pull_request",
        number=INT,
        title=STRING,
        author=STRING,
        source_branch=STRING,
        target_branch=STRING,
        base_sha=STRING,
        head_sha=STRING,
        fork=BOOL,
        draft=BOOL,
        labels=STRINGS,
        url=STRING,
    ),
    comment=record("event.comment", body=STRING, author=STRING),
)


# The environment variable each event field reaches a step as (see jobs.plan.event_environment).
STEP_VARIABLES = {
    "event.forge": "FORGEFLOW_FORGE",
    "event.repository.full_name": "FORGEFLOW_REPO",
    "event.clone_url": "FORGEFLOW_CLONE_URL",
    "event.kind": "FORGEFLOW_EVENT",
    "event.action": "FORGEFLOW_ACTION",
    "event.sha": "FORGEFLOW_SHA",
    "event.ref": "FORGEFLOW_REF",
    "event.branch": "FORGEFLOW_BRANCH",
    "event.tag": "FORGEFLOW_TAG",
    "event.before": "FORGEFLOW_BEFORE",
    "event.sender": "FORGEFLOW_SENDER",
    "event.pull_request.number": "FORGEFLOW_PR_NUMBER",
    "event.pull_request.title": "FORGEFLOW_PR_TITLE",
    "event.pull_request.author": "FORGEFLOW_PR_AUTHOR",
    "event.pull_request.source_branch": "FORGEFLOW_PR_SOURCE_BRANCH",
    "event.pull_request.target_branch": "FORGEFLOW_PR_TARGET_BRANCH",
    "event.pull_request.fork": "FORGEFLOW_PR_FORK",
}


INPUT_TYPES = {"string": STRING, "choice": STRING, "boolean": BOOL}


def event_with_inputs(declared: dict[str, str]) -> CelType:
    """The event whose ``inputs`` are the manual inputs the job file declares (name: type)."""
    fields = {name: INPUT_TYPES.get(kind, DYN) for name, kind in declared.items()}
    inputs = CelType(
        "record",
        fields=tuple(fields.items()),
        name="event.inputs",
        hint="" if fields else ": no job declares manual inputs (on: {manual: {inputs: {NAME: {}}}})",
    )
    return CelType(
        "record", fields=tuple((k, inputs if k == "inputs" else v) for k, v in EVENT.fields), name="event"
    )


def matrix_type(keys: tuple[str, ...]) -> CelType:
    """``matrix`` in ``arguments`` and ``concurrency``: the cell's values, all text."""
    return record("matrix", **dict.fromkeys(keys, STRING))
