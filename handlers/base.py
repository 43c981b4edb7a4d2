"""What every webhook handler shares: the delivery, the results, the errors.

A handler is pure: bytes and headers in, a :class:`Parsed`, :class:`Ignored` or :class:`Ping`
out, or a :class:`WebhookError` saying why the delivery is refused. No I/O happens here.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from service.events import Event


class WebhookError(Exception):
    """A delivery that cannot be accepted; ``status`` is the HTTP answer."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadPayload(WebhookError):
    status = 400


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery as received: header names are matched case-insensitively."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lowered = {k.lower(): v for k, v in self.headers.items()}
        object.__setattr__(self, "headers", lowered)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True)
class Parsed:
    """A delivery forgeflow acts on."""

    event: Event
    event_type: str  # the forge's own name for it, e.g. "pull_request" or "Merge Request Hook"


@dataclass(frozen=True)
class Ignored:
    """A valid delivery nobody acts on, and why."""

    reason: str
    event_type: str = ""


@dataclass(frozen=True)
class Ping:
    """A forge checking that the hook works."""

    message: str = "pong"


ParseResult = Parsed | Ignored | Ping


@dataclass(frozen=True)
class WebhookHandler:
    """A forge's webhook protocol, gathered for the dispatch table: how a delivery is verified,
    identified and parsed, and how one is signed (``replay``, the demo and the tests send
    deliveries exactly as the forge would, so what :attr:`verify` accepts is proven by use)."""

    name: str
    verify: Callable[[Delivery, str], bool]
    delivery_id: Callable[[Delivery], str]
    parse: Callable[[Delivery], ParseResult]
    # (body, secret, event type, delivery id) → the headers the forge sends with that body
    sign: Callable[[bytes, str, str, str], dict[str, str]]
    event_header: str  # the header naming the event type, as the forge sends it
    guess_event_type: Callable[[dict[str, Any]], str]  # for a recorded payload without headers


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(expected_hex: str, received: str) -> bool:
    """Constant-time comparison of a hex digest with a received signature (any case)."""
    return hmac.compare_digest(expected_hex.encode(), received.strip().lower().encode())


MAX_JSON_DEPTH = 1024  # orjson's own limit; deeper nesting is refused, never recursed into


def load_json_object(delivery: Delivery) -> dict[str, Any]:
    """The delivery's JSON object, accepting GitHub-style ``payload=`` form bodies too.

    Whatever a body holds, the answer is the object or a :class:`BadPayload` saying why not:
    nesting deeper than :data:`MAX_JSON_DEPTH`, text that is not Unicode (invalid UTF-8, a lone
    surrogate escape such as ``\\ud800``), numbers Python cannot hold, bad JSON."""
    body = delivery.body
    content_type = delivery.header("content-type").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadPayload(f"form body could not be decoded: {exc}") from exc
        values = form.get("payload")
        if not values:
            raise BadPayload("form body has no 'payload' field")
        return parse_json_object(values[0].encode("utf-8", "surrogatepass"))
    return parse_json_object(body)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A JSON object from bytes (see :func:`load_json_object`)."""
    try:
        # the common case, parsed fast; anything orjson refuses (NaN, a BOM, invalid UTF-8,
        # bad JSON) takes the standard parser below, which accepts what it always did and
        # words the errors as it always did
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        refused = str(exc)
        if "depth limit" in refused:
            raise BadPayload(f"body is nested deeper than {MAX_JSON_DEPTH} levels") from exc
        data = _standard_json(body, refused)
    if not isinstance(data, dict):
        raise BadPayload(f"body is JSON but not an object (got {type(data).__name__})")
    return data


def _standard_json(body: bytes, refused: str) -> Any:
    """What orjson refused (``refused``: why), parsed by the standard library, or why not."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPayload(f"body is not UTF-8: {exc}") from exc
    if "surrogate" in refused:
        # a lone surrogate escape ("\\ud800"): JSON syntax, but not Unicode text; no forge
        # sends it, and it could be neither stored nor shown
        raise BadPayload(f"body is not valid Unicode: {refused}")
    if not text.strip():
        raise BadPayload("body is empty; expected a JSON object")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise BadPayload(f"body is not valid JSON: {exc.msg} at {where}") from exc
    except RecursionError as exc:
        raise BadPayload(f"body is nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise BadPayload(f"body is not valid JSON: {exc}") from exc


MAX_INT = 2**31 - 1  # the largest number an Integer column holds: PR numbers, ids


class Payload:
    """Lenient read access to a JSON payload: missing or mistyped fields read as empty.

    Forges send old and new payload shapes; a handler requires only what it uses and reports
    a missing required field as a :class:`BadPayload` through :meth:`require_str`.
    """

    __slots__ = ("_keys", "_parent", "data")

    def __init__(self, data: Any, path: str = "") -> None:
        self.data = data
        # the path is spelled out only for an error message: most reads never need it
        self._parent: Payload | str = path
        self._keys: tuple[str | int, ...] = ()

    @property
    def path(self) -> str:
        path = self._parent if isinstance(self._parent, str) else self._parent.path
        for key in self._keys:
            path = f"{path}.{key}" if path else str(key)
        return path

    def get(self, *keys: str | int) -> Payload:
        value = self.data
        for key in keys:
            if type(value) is dict and type(key) is str:
                value = value.get(key)
            elif isinstance(key, int) and isinstance(value, list) and -len(value) <= key < len(value):
                value = value[key]
            elif isinstance(key, str) and isinstance(value, dict):
                value = value.get(key)
            else:
                value = None
        child = Payload(value)
        child._parent, child._keys = self, keys
        return child

    def __bool__(self) -> bool:
        return bool(self.data)

    @property
    def present(self) -> bool:
        return self.data is not None

    def str(self, default: str = "") -> str:
        if isinstance(self.data, str):
            return self.data
        if isinstance(self.data, bool):
            return default
        if isinstance(self.data, int | float):
            return str(self.data)
        return default

    def int(self, default: builtins.int = 0) -> builtins.int:
        """A whole number a database column can hold (32 bits), else ``default``."""
        value = self.data
        if isinstance(value, bool):
            return default
        if isinstance(value, str):
            text = value.strip()
            # ASCII digits only: "²".isdigit() is true, but int("²") fails
            if not (text.isascii() and text.isdigit() and len(text) <= 10):
                return default
            value = int(text)
        if not isinstance(value, int):
            return default
        return value if -MAX_INT <= value <= MAX_INT else default

    def bool(self, default: builtins.bool = False) -> builtins.bool:
        return self.data if isinstance(self.data, bool) else default

    def list(self) -> builtins.list[Payload]:
        if not isinstance(self.data, list):
            return []
        base = self.path
        return [Payload(v, f"{base}[{i}]") for i, v in enumerate(self.data)]

    def require_str(self) -> builtins.str:
        value = self.str()
        if not value:
            raise BadPayload(f"payload field '{self.path}' is missing or empty")
        return value

    def require_int(self) -> builtins.int:
        if not self.present:
            raise BadPayload(f"payload field '{self.path}' is missing")
        value = self.int(-1)
        if value < 0:
            raise BadPayload(f"payload field '{self.path}' is not a number")
        return value


def ref_kind(ref: str) -> tuple[str, str]:
    """Split a git ref into ("branch" | "tag" | "other", short name)."""
    if ref.startswith("refs/heads/"):
        return "branch", ref[len("refs/heads/") :]
    if ref.startswith("refs/tags/"):
        return "tag", ref[len("refs/tags/") :]
    return "other", ref


def body_digest_id(body: bytes) -> str:
    """A delivery id for a delivery that names none: the body's SHA-256 (a repeat dedupes)."""
    return "sha256-" + hashlib.sha256(body).hexdigest()


def first_header(delivery: Delivery, *names: str) -> str:
    """The first of ``names`` the delivery carries with a non-blank value, stripped."""
    for name in names:
        value = delivery.header(name).strip()
        if value:
            return value
    return ""


def web_root(url: str, project_path: str = "") -> str:
    """The forge's web root for a project URL: ``scheme://host`` plus any path prefix.

    A self-managed forge may live under a prefix: ``web_root("https://example.com/git/a/b",
    "a/b")`` is ``"https://example.com/git"``. Empty when ``url`` is not absolute.
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    path = parts.path.rstrip("/").removesuffix(".git")
    suffix = "/" + project_path.strip("/") if project_path.strip("/") else ""
    prefix = path[: -len(suffix)] if suffix and path.lower().endswith(suffix.lower()) else ""
    return f"{parts.scheme}://{parts.netloc}{prefix}"


DRAFT_TITLE_PREFIXES = ("wip:", "[wip]", "draft:", "[draft]", "(draft)")


def draft_title(title: str) -> bool:
    """A title marking work in progress, the way Gitea, Forgejo and Pagure mark drafts."""
    return title.strip().lower().startswith(DRAFT_TITLE_PREFIXES)


def is_commit_sha(value: str) -> bool:
    """A full hex object name (SHA-1 or SHA-256), not a branch name."""
    return len(value) in (40, 64) and all(c in "0123456789abcdef" for c in value)
