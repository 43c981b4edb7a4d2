"""The fake GitHub's App flow, Checks API and rate limits (mixed into ``FakeGitHub``).

- **App**: :meth:`GithubAppFake.enable_app` makes the fake a GitHub App's world: ``/app/...`` and
  ``/repos/{o}/{r}/installation`` want the App's JWT (verified with its public key: RS256, issuer
  the App id, at most 10 minutes long); ``POST /app/installations/{id}/access_tokens`` mints a
  token that expires (``token_lifetime``), optionally limited to some repositories and
  permissions; every other call must carry a live token of an installation that covers the
  repository, or it is answered 401 "Bad credentials", as GitHub does.
- **Checks**: check runs created, updated (each request's body kept, in order) and listed.
- **Rate limits**: ``X-RateLimit-*`` headers on every answer; :meth:`rate_limit_next` makes the
  next N check-run or status writes answer 403 "secondary rate limit" with ``Retry-After``.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug import Request, Response

REPO_PATH = re.compile(r"^/repos/([^/]+/[^/]+)(/.*)?$")


def make_app_key() -> tuple[str, str]:
    """A fresh RSA key pair as (private PEM, public PEM), like the one GitHub gives an App."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@dataclass
class IssuedToken:
    installation: int
    expires_at: float  # epoch
    repositories: tuple[str, ...] | None = None  # limited to these (full names), or all
    permissions: dict[str, str] | None = None


@dataclass
class CheckRun:
    id: int
    repo: str
    head_sha: str
    name: str
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every request's body, in order
    state: dict[str, Any] = field(default_factory=dict)  # the fields as they are now

    def __getitem__(self, key: str) -> Any:
        return self.state.get(key)

    @property
    def statuses(self) -> list[str]:
        """Each request's status (with its conclusion when completed), in order."""
        return [
            f"{b['status']}:{b.get('conclusion')}" if b.get("status") == "completed" else b.get("status", "")
            for b in self.bodies
        ]


class GithubAppFake:
    """State and routes of the App flow and the Checks API; ``FakeGitHub`` mixes it in."""

    lock: threading.RLock
    changed: threading.Condition

    def init_app_fake(self) -> None:
        self.app_id = 0
        self.app_public_key = ""
        self.installations: dict[int, tuple[str, ...]] = {}  # id -> repositories it covers
        self.tokens: dict[str, IssuedToken] = {}
        self.token_lifetime = 3600.0
        self.jwts_seen: list[dict[str, Any]] = []
        self.tokens_minted: list[IssuedToken] = []
        self.auth_refusals: list[str] = []  # paths answered 401
        self.check_runs: list[CheckRun] = []
        self._ids = itertools.count(4_000_000_001)  # bigger than 32 bits, as GitHub's are
        self.rate_limited_writes = 0
        self.rate_limit_retry_after = 1
        self.rate_limit_answers: list[float] = []  # monotonic times of the 403s served
        self.budget = {"limit": 5000, "used": 0}

    # -- set-up ------------------------------------------------------------------------------

    def enable_app(self, app_id: int, public_key: str, installations: dict[int, list[str]]) -> None:
        self.app_id = app_id
        self.app_public_key = public_key
        self.installations = {i: tuple(repos) for i, repos in installations.items()}

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (as if an hour had passed)."""
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = 0

    def rate_limit_next(self, count: int, retry_after: int = 1) -> None:
        with self.lock:
            self.rate_limited_writes = count
            self.rate_limit_retry_after = retry_after

    # -- what tests look at -------------------------------------------------------------------

    def check_run_named(self, name: str, sha: str | None = None) -> list[CheckRun]:
        with self.lock:
            return [c for c in self.check_runs if c.name == name and sha in (None, c.head_sha)]

    def wait_check_runs(self, names: list[str], timeout: float = 30) -> dict[str, CheckRun]:
        """Wait until the latest check run of each name is completed; the latest per name."""

        def latest() -> dict[str, CheckRun]:
            found: dict[str, CheckRun] = {}
            for run in self.check_runs:
                found[run.name] = run
            return found

        def done() -> bool:
            runs = latest()
            return all(n in runs and runs[n]["status"] == "completed" for n in names)

        if not self.wait_for(done, timeout):  # type: ignore[attr-defined]
            raise AssertionError(f"check runs {names} not completed in {timeout}s: {self.check_runs}")
        with self.lock:
            return latest()

    # -- authentication ------------------------------------------------------------------------

    def app_authorized(self, request: Request) -> bool:
        if not self.app_id:
            return True
        path = request.path
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        repo_match = REPO_PATH.match(path)
        if path.startswith("/app/") or (repo_match and repo_match.group(2) == "/installation"):
            return scheme == "Bearer" and self._valid_jwt(credential)
        if repo_match is None:
            return False
        token = self.tokens.get(credential) if scheme.lower() in ("token", "bearer") else None
        if token is None or token.expires_at < time.time():
            self.auth_refusals.append(path)
            return False
        repo = repo_match.group(1)
        covered = repo in self.installations.get(token.installation, ())
        allowed = token.repositories is None or repo.split("/", 1)[1] in token.repositories
        if not (covered and allowed):
            self.auth_refusals.append(path)
        return covered and allowed

    def _valid_jwt(self, credential: str) -> bool:
        try:
            claims = jwt.decode(
                credential,
                self.app_public_key,
                algorithms=["RS256"],
                issuer=str(self.app_id),
                options={"require": ["iat", "exp", "iss"]},
                leeway=60,
            )
        except jwt.PyJWTError:
            return False
        if claims["exp"] - claims["iat"] > 660:  # GitHub: at most 10 minutes (+ backdating)
            return False
        with self.lock:
            self.jwts_seen.append(claims)
        return True

    # -- the App's endpoints -----------------------------------------------------------------

    def app_routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", r"^/repos/([^/]+/[^/]+)/installation$", self.get_installation),
            ("POST", r"^/app/installations/(\d+)/access_tokens$", self.post_access_token),
            ("POST", r"^/repos/([^/]+/[^/]+)/check-runs$", self.create_check_run),
            ("PATCH", r"^/repos/([^/]+/[^/]+)/check-runs/(\d+)$", self.update_check_run),
            ("GET", r"^/repos/([^/]+/[^/]+)/commits/([0-9a-f]{40})/check-runs$", self.list_check_runs),
        ]

    def get_installation(self, request: Request, full_name: str) -> Response:
        for installation, repos in self.installations.items():
            if full_name in repos:
                owner = full_name.split("/")[0]
                return self.json(  # type: ignore[attr-defined,no-any-return]
                    {"id": installation, "app_id": self.app_id, "account": {"login": owner}}
                )
        return self.json({"message": "Not Found"}, 404)  # type: ignore[attr-defined,no-any-return]

    def post_access_token(self, request: Request, installation: str) -> Response:
        number = int(installation)
        if number not in self.installations:
            return self.json({"message": "Not Found"}, 404)  # type: ignore[attr-defined,no-any-return]
        body = request.get_json(silent=True) or {}
        repos = tuple(body["repositories"]) if body.get("repositories") else None
        issued = IssuedToken(number, time.time() + self.token_lifetime, repos, body.get("permissions"))
        token = "ghs_" + secrets.token_hex(18)
        with self.lock:
            self.tokens[token] = issued
            self.tokens_minted.append(issued)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued.expires_at))
        answer = {"token": token, "expires_at": expires, "permissions": body.get("permissions") or {}}
        return self.json(answer, 201)  # type: ignore[attr-defined,no-any-return]

    # -- checks --------------------------------------------------------------------------------

    def _rate_limited(self) -> Response | None:
        with self.lock:
            if self.rate_limited_writes <= 0:
                return None
            self.rate_limited_writes -= 1
            self.rate_limit_answers.append(time.monotonic())
        message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        headers = {"Retry-After": str(self.rate_limit_retry_after)}
        return self.json({"message": message}, 403, headers)  # type: ignore[attr-defined,no-any-return]

    def _apply(self, run: CheckRun, body: dict[str, Any]) -> None:
        with self.changed:
            run.bodies.append(body)
            run.state.update(body)
            self.changed.notify_all()

    def create_check_run(self, request: Request, full_name: str) -> Response:
        limited = self._rate_limited()
        if limited is not None:
            return limited
        body = json.loads(request.get_data())
        if "name" not in body or "head_sha" not in body:
            return self.json({"message": "Invalid request: name and head_sha"}, 422)  # type: ignore[attr-defined,no-any-return]
        run = CheckRun(next(self._ids), full_name, body["head_sha"], body["name"])
        with self.lock:
            self.check_runs.append(run)
        self._apply(run, body)
        return self.json(self.check_run_json(run), 201)  # type: ignore[attr-defined,no-any-return]

    def update_check_run(self, request: Request, full_name: str, number: str) -> Response:
        limited = self._rate_limited()
        if limited is not None:
            return limited
        body = json.loads(request.get_data())
        if "head_sha" in body:
            return self.json({"message": "head_sha cannot be changed"}, 422)  # type: ignore[attr-defined,no-any-return]
        run = next((c for c in self.check_runs if c.id == int(number) and c.repo == full_name), None)
        if run is None:
            return self.json({"message": "Not Found"}, 404)  # type: ignore[attr-defined,no-any-return]
        self._apply(run, body)
        return self.json(self.check_run_json(run))  # type: ignore[attr-defined,no-any-return]

    def list_check_runs(self, request: Request, full_name: str, sha: str) -> Response:
        name = request.args.get("check_name")
        with self.lock:
            runs = [
                c
                for c in self.check_runs
                if c.repo == full_name and c.head_sha == sha and name in (None, c.name)
            ]
        body = {"total_count": len(runs), "check_runs": [self.check_run_json(c) for c in reversed(runs)]}
        return self.json(body)  # type: ignore[attr-defined,no-any-return]

    def check_run_json(self, run: CheckRun) -> dict[str, Any]:
        return {"id": run.id, "head_sha": run.head_sha, "name": run.name, **run.state}

    def rate_headers(self) -> dict[str, str]:
        with self.lock:
            self.budget["used"] += 1
            left = max(self.budget["limit"] - self.budget["used"], 0)
        return {
            "X-RateLimit-Limit": str(self.budget["limit"]),
            "X-RateLimit-Remaining": str(left),
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Resource": "core",
        }
