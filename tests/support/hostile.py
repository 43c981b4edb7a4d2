"""Hostile webhook deliveries, for the fault suite in ``make test`` and ``make chaos``.

- :class:`Mutator`: structure-aware mutations of real payloads (``../shared/fixtures``): a few
  values anywhere in the tree become something a parser may not expect (other types, huge or
  negative numbers, long, empty, control-character or shell-looking strings, lone surrogate
  escapes, deep nesting, missing and extra keys), serialised and then signed as the forge signs
  it, so they get past verification to the parser and the database;
- :func:`encoding_attacks`: bodies that are not UTF-8 JSON (UTF-16, a BOM, invalid bytes,
  NaN, duplicate keys, form bodies with garbage), signed too;
- :func:`framing_attacks`: raw HTTP requests whose framing is broken (lengths, chunked
  encoding, request lines, headers), for a real server.

Everything is seeded: the same seed makes the same requests, so a failure can be replayed.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from service.cli.replay import signed_headers
from tests.support.shared import shared_fixtures

FORGES = ("github", "gitlab", "forgejo", "pagure")


@dataclass(frozen=True)
class Sample:
    forge: str
    name: str
    event: str
    payload: dict[str, Any]


def corpus(root: Path | None = None) -> list[Sample]:
    """Every fixture payload with the event header its forge sends."""
    root = root or shared_fixtures() / "webhooks"
    samples = []
    for forge in FORGES:
        index_file = root / forge / "index.json"
        if not index_file.exists():
            continue
        for name, event in sorted(json.loads(index_file.read_text()).items()):
            try:
                payload = json.loads((root / forge / name).read_text())
            except (OSError, ValueError):
                continue
            if isinstance(payload, dict):
                samples.append(Sample(forge, name, str(event), payload))
    return samples


SHELL = ["$(touch${IFS}pwned)", "`id`", "; rm -rf / #", "a|b&c>d<e", "${{ event.sha }}", "{{workflow.name}}"]
STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202e\u2066",
    "\ufeff",
    "ﬀ\u0301",
    "😀" * 50,
    "../../../../etc/passwd",
    "refs/heads/../../x",
    "refs/heads/",
    "refs/tags/",
    "x" * 70_000,
    "0" * 40,
    "f" * 64,
    "\r\nX-Injected: 1",
    "%00%ff",
    "main\n- run: evil",
    *SHELL,
]
NUMBERS: list[Any] = [
    0,
    -1,
    1,
    2**31,
    2**31 - 1,
    2**63,
    2**64 + 1,
    -(2**63),
    10**30,
    1.5,
    -0.0,
    1e308,
    10**300,
]


class Mutator:
    """Structure-aware mutations of a payload (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def body(self, payload: dict[str, Any]) -> bytes:
        """A mutated copy of ``payload``, serialised (sometimes with raw-text tricks)."""
        data = copy.deepcopy(payload)
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            data = self._mutate(data)
        text = json.dumps(data, ensure_ascii=self.rng.random() < 0.5)
        return self._raw(text).encode("utf-8", "surrogatepass")

    def _paths(self, value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        yield path
        if len(path) > 30:  # a deep value an earlier mutation made: its top will do
            return
        if isinstance(value, dict):
            for key, item in value.items():
                yield from self._paths(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value[:20]):
                yield from self._paths(item, (*path, index))

    def _mutate(self, data: dict[str, Any]) -> Any:
        paths = list(self._paths(data))
        path = self.rng.choice(paths[1:] or paths)
        if not path:
            return data
        parent: Any = data
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        kind = self.rng.random()
        if kind < 0.12 and isinstance(parent, dict):
            del parent[last]
        elif kind < 0.18 and isinstance(parent, dict):
            parent[self._string()[:50] or "extra"] = self._value()
        else:
            parent[last] = self._value(parent[last])
        return data

    def _string(self) -> str:
        choice = self.rng.random()
        if choice < 0.6:
            return self.rng.choice(STRINGS)
        if choice < 0.8:
            return "".join(chr(self.rng.randrange(1, 0x2FFFF)) for _ in range(self.rng.randrange(1, 40)))
        return "".join(self.rng.choice("abc/-_.~:@${}()[]*?") for _ in range(self.rng.randrange(1, 300)))

    def _value(self, old: Any = None) -> Any:
        choice = self.rng.random()
        if choice < 0.3:
            return self._string()
        if choice < 0.5:
            return self.rng.choice(NUMBERS)
        if choice < 0.6:
            return self.rng.choice([None, True, False, [], {}, [None], {"": None}])
        if choice < 0.7:  # the old value, in another type
            if isinstance(old, str):
                return [old] if self.rng.random() < 0.5 else {"value": old}
            if isinstance(old, dict):
                return list(old.values())[:5]
            if isinstance(old, list):
                return {str(i): v for i, v in enumerate(old[:5])}
            return str(old)
        if choice < 0.8:  # deep, or wide
            depth = self.rng.choice((10, 100, 600))
            value: Any = "leaf"
            for _ in range(depth):
                value = [value] if self.rng.random() < 0.5 else {"k": value}
            return value
        if choice < 0.9:
            return [self._string() for _ in range(self.rng.randrange(1, 500))]
        return "LONE_SURROGATE"  # replaced by a raw escape in _raw

    def _raw(self, text: str) -> str:
        text = text.replace(
            '"LONE_SURROGATE"', '"' + self.rng.choice(["\\ud800", "\\udfff", "x\\udc00"]) + '"'
        )
        choice = self.rng.random()
        if choice < 0.03:  # nested deeper than any parser allows
            depth = self.rng.choice((1025, 3000, 50_000))
            return text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
        if choice < 0.05:  # numbers Python or orjson cannot hold
            return (
                text[:-1]
                + ', "n": '
                + self.rng.choice(["1e400", "-1e400", "9" * 5000, "NaN", "-Infinity"])
                + "}"
            )
        if choice < 0.07:  # the same key twice
            return text[:-1] + ', "ref": 1, "ref": {"x": null}}'
        if choice < 0.08:
            return text[: self.rng.randrange(1, max(2, len(text)))]  # cut short
        return text


def headers_for(forge: str, body: bytes, event: str, secret: str) -> dict[str, str]:
    return signed_headers(forge, body, secret, event, f"fuzz-{uuid.uuid4()}")


def encoding_attacks(rng: random.Random, sample: Sample) -> Iterator[tuple[str, bytes, str]]:
    """(what, body, content type) of bodies that are not UTF-8 JSON objects."""
    text = json.dumps(sample.payload)
    yield "utf-16", text.encode("utf-16"), "application/json"
    yield "utf-32", text.encode("utf-32"), "application/json"
    yield "bom", b"\xef\xbb\xbf" + text.encode(), "application/json"
    yield "latin-1 bytes", text.replace('"', '"\xe9', 1).encode("latin-1", "replace"), "application/json"
    cut = rng.randrange(1, max(2, len(text)))
    yield "invalid utf-8", text[:cut].encode() + b"\xff\xfe\xc0\x80" + text[cut:].encode(), "application/json"
    yield "overlong utf-8", text.encode().replace(b'"', b"\xc0\xa2", 1), "application/json"
    yield "encoded surrogate", text[:-1].encode() + b', "s": "\xed\xa0\x80"}', "application/json"
    yield "NUL bytes", text.encode().replace(b",", b",\x00", 1), "application/json"
    yield "not an object", json.dumps([sample.payload]).encode(), "application/json"
    yield "a string", json.dumps(text).encode(), "application/json"
    yield "empty", b"", "application/json"
    yield "whitespace", b" \n\t ", "application/json"
    yield "form garbage", b"payload=%ZZ%" + quote(text).encode()[:100], "application/x-www-form-urlencoded"
    yield "form without payload", b"x=1&y=2", "application/x-www-form-urlencoded"
    yield (
        "form invalid utf-8",
        b"payload=" + quote(text).encode() + b"%ff%fe",
        "application/x-www-form-urlencoded",
    )
    yield (
        "form deep",
        b"payload=" + quote("[" * 2000 + "]" * 2000).encode(),
        "application/x-www-form-urlencoded",
    )
    yield "wrong content type", text.encode(), "text/plain; charset=utf-7"
    yield (
        "multipart",
        b"--x\r\nContent-Disposition: form-data\r\n\r\n" + text.encode() + b"\r\n--x--",
        ("multipart/form-data; boundary=x"),
    )


def framing_attacks(
    forge: str, secret: str, sample: Sample, host: str = "127.0.0.1"
) -> Iterator[tuple[str, bytes]]:
    """(what, raw request) of requests whose HTTP framing is broken."""
    body = json.dumps(sample.payload).encode()
    signed = headers_for(forge, body, sample.event, secret)
    lines = "".join(f"{name}: {value}\r\n" for name, value in signed.items()).encode()
    path = f"/api/webhooks/{forge}".encode()
    start = b"POST " + path + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + lines

    def request(extra: bytes, payload: bytes = body) -> bytes:
        return start + extra + b"\r\n" + payload

    n = str(len(body)).encode()
    yield "length short", request(b"Content-Length: " + str(len(body) // 2).encode() + b"\r\n")
    yield "length long, closed", request(b"Content-Length: " + str(len(body) + 50).encode() + b"\r\n")
    yield "length negative", request(b"Content-Length: -1\r\n")
    yield "length hex", request(b"Content-Length: 0x10\r\n")
    yield "length huge", request(b"Content-Length: 99999999999999999999999\r\n")
    yield "length twice", request(b"Content-Length: " + n + b"\r\nContent-Length: 5\r\n")
    yield "length twice same", request(b"Content-Length: " + n + b"\r\nContent-Length: " + n + b"\r\n")
    yield "length superscript", request("Content-Length: \u00b2\r\n".encode("latin-1"))
    yield "length with sign", request(b"Content-Length: +" + n + b"\r\n")
    yield "length and chunked", request(b"Content-Length: " + n + b"\r\nTransfer-Encoding: chunked\r\n")
    yield "no length", request(b"")
    chunked = b"Transfer-Encoding: chunked\r\n"
    yield "chunked ok", request(chunked, f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    yield "chunked bad size", request(chunked, b"zz\r\n" + body + b"\r\n0\r\n\r\n")
    yield "chunked negative", request(chunked, b"-5\r\nabcde\r\n0\r\n\r\n")
    yield "chunked huge size", request(chunked, b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n")
    yield "chunked too long", request(chunked, b"3\r\nabcdef\r\n0\r\n\r\n")
    yield "chunked no end", request(chunked, b"5\r\nabcde\r\n")
    yield "chunked cut", request(chunked, b"50\r\nabc")
    yield (
        "chunked extension",
        request(chunked, f"{len(body):x};name=value\r\n".encode() + body + b"\r\n0\r\n\r\n"),
    )
    yield "chunked bad trailer", request(chunked, b"0\r\nX-Trailer\r\n\r\n")
    yield "te gzip", request(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n")
    yield "te unknown", request(b"Transfer-Encoding: bogus\r\n")
    yield "te twice", request(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", b"0\r\n\r\n")
    yield "te obfuscated", request(b"Transfer-Encoding : chunked\r\nContent-Length: " + n + b"\r\n")
    yield "expect continue", request(b"Expect: 100-continue\r\nContent-Length: " + n + b"\r\n")
    yield "http/1.0 no length", start.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n" + body
    yield "http/0.9", b"GET " + path + b"\r\n"
    yield "http/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    yield (
        "bad version",
        start.replace(b"HTTP/1.1", b"HTTP/9.9") + b"Content-Length: " + n + b"\r\n\r\n" + body,
    )
    yield "no version", b"POST " + path + b"\r\nContent-Length: 2\r\n\r\n{}"
    yield "bad method", start.replace(b"POST", b"P\x00ST", 1) + b"Content-Length: " + n + b"\r\n\r\n" + body
    yield "lower method", start.replace(b"POST", b"post", 1) + b"Content-Length: " + n + b"\r\n\r\n" + body
    yield (
        "absolute uri",
        start.replace(path, b"http://evil.example" + path, 1) + b"Content-Length: " + n + b"\r\n\r\n" + body,
    )
    for weird in (
        b"/%2e%2e/",
        b"%00",
        b"%ff%fe",
        b"/" * 3000,
        "\u00e9".encode(),
        b"?" + b"a=" * 5000,
        b"#frag",
    ):
        yield (
            f"path {weird[:10]!r}",
            start.replace(path, path + weird, 1) + b"Content-Length: " + n + b"\r\n\r\n" + body,
        )
    yield "long header", request(b"X-Long: " + b"a" * 20_000 + b"\r\nContent-Length: " + n + b"\r\n")
    yield (
        "many headers",
        request(b"".join(b"X-H%d: v\r\n" % i for i in range(300)) + b"Content-Length: " + n + b"\r\n"),
    )
    yield "header without colon", request(b"NoColonHere\r\nContent-Length: " + n + b"\r\n")
    yield "header NUL", request(b"X-Nul: a\x00b\r\nContent-Length: " + n + b"\r\n")
    yield "header folded", request(b"X-Fold: a\r\n  b\r\nContent-Length: " + n + b"\r\n")
    yield "header utf-8", request("X-Ümlaut: ü\r\nContent-Length: ".encode() + n + b"\r\n")
    yield "bare LF", (start + b"Content-Length: " + n + b"\r\n\r\n").replace(b"\r\n", b"\n") + body
    yield (
        "pipelined",
        request(b"Content-Length: " + n + b"\r\n") + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    yield (
        "smuggled",
        request(
            b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
            b"0\r\n\r\nPOST /api/webhooks/github HTTP/1.1\r\n\r\n",
        ),
    )
    yield "garbage", bytes(random.Random(len(body)).randrange(256) for _ in range(500))
    yield "empty request", b"\r\n\r\n"
