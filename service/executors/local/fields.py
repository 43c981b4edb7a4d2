"""The fields of a local pod template: env, input and output artifacts, retries. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.executors.local.values import (
    WORKSPACE,
    UnsupportedManifest,
    check_keys,
    parse_duration,
    parse_int,
)

ARTIFACT_KEYS = {"name", "path", "git", "raw", "mode", "optional", "s3", "archive"}
OUTPUT_ARTIFACT_KEYS = {"name", "path", "optional", "archive", "s3"}
OUTPUT_ARTIFACT_KEYS |= {"artifactGC"}  # Argo's deletion of it; locally the sweep's retention
PARAMETER_KEYS = {"name", "valueFrom", "description"}
GIT_KEYS = {"repo", "revision", "depth", "singleBranch", "branch", "fetch"}
GIT_KEYS |= {"insecureIgnoreHostKey", "disableSubmodules", "usernameSecret", "passwordSecret"}
RETRY_POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")


@dataclass(frozen=True)
class Retry:
    """A template's ``retryStrategy``.

    ``limit`` counts the attempts after the first (None: no limit, as in Argo); ``policy``
    says which endings are retried; the backoff fields say how long to wait in between.
    """

    limit: int | None
    policy: str
    backoff: float
    factor: float
    max_backoff: float | None
    max_duration: float | None

    def retries(self, phase: str) -> bool:
        """Whether a ``phase`` (Failed/Error) attempt is retried under this policy."""
        if self.policy == "Always":
            return True
        if self.policy == "OnFailure":
            return phase == "Failed"
        return phase == "Error"

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (1 = the first retry)."""
        wait = self.backoff * self.factor ** max(attempt - 1, 0)
        return min(wait, self.max_backoff) if self.max_backoff is not None else wait


def check_workspace_path(path: str, where: str) -> None:
    inside = path == WORKSPACE or path.startswith(WORKSPACE + "/")
    if not inside or "/../" in path + "/":
        raise UnsupportedManifest(f"{where}: path {path!r} outside {WORKSPACE}")


def env_entry(entry: dict[str, Any], where: str) -> dict[str, Any]:
    source = entry.get("valueFrom")
    if source and not set(source) <= {"secretKeyRef", "configMapKeyRef"}:
        raise UnsupportedManifest(f"{where}: env {entry.get('name')!r} valueFrom {sorted(source)}")
    return dict(entry)


def env_from_entry(entry: dict[str, Any], where: str) -> dict[str, Any]:
    if not ({"secretRef", "configMapRef"} & set(entry)):
        raise UnsupportedManifest(f"{where}: envFrom {sorted(entry)}")
    return dict(entry)


def input_artifacts(inputs: dict[str, Any], where: str) -> tuple[dict[str, Any], ...]:
    check_keys(inputs, {"artifacts", "parameters"}, f"{where} inputs")  # parameters: local_manifest
    artifacts = []
    for artifact in inputs.get("artifacts") or []:
        label = f"{where} input artifact {artifact.get('name')!r}"
        check_keys(artifact, ARTIFACT_KEYS, label)
        if "git" in artifact:
            check_keys(artifact["git"] or {}, GIT_KEYS, f"{label} git")
            if not (artifact["git"] or {}).get("repo"):
                raise UnsupportedManifest(f"{label}: git without repo")
        elif "s3" in artifact:
            _key_only(artifact, label)
        # otherwise a task's arguments pass it (checked with the DAG, see local.manifest)
        check_workspace_path(str(artifact.get("path", "")), label)
        artifacts.append(dict(artifact))
    return tuple(artifacts)


def _key_only(artifact: dict[str, Any], label: str) -> None:
    """A key-only s3 artifact (the workflow's artifact repository): locally a folder."""
    s3 = artifact.get("s3") or {}
    check_keys(s3, {"key"}, f"{label} s3 (locally only key-only artifacts)")
    key = str(s3.get("key") or "")
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise UnsupportedManifest(f"{label}: s3 key {key!r}")


def output_parameters(outputs: dict[str, Any], where: str) -> tuple[dict[str, Any], ...]:
    parameters = []
    for parameter in outputs.get("parameters") or []:
        label = f"{where} output parameter {parameter.get('name')!r}"
        check_keys(parameter, PARAMETER_KEYS, label)
        source = parameter.get("valueFrom") or {}
        check_keys(source, {"path", "default"}, f"{label} valueFrom")
        check_workspace_path(str(source.get("path", "")), label)
        parameters.append(dict(parameter))
    return tuple(parameters)


def output_artifacts(outputs: dict[str, Any], where: str) -> tuple[dict[str, Any], ...]:
    check_keys(outputs, {"artifacts", "parameters"}, f"{where} outputs")
    artifacts = []
    for artifact in outputs.get("artifacts") or []:
        label = f"{where} outputs artifact {artifact.get('name')!r}"
        check_keys(artifact, OUTPUT_ARTIFACT_KEYS, label)
        if "s3" in artifact:
            _key_only(artifact, label)
        check_workspace_path(str(artifact.get("path", "")), label)
        artifacts.append(dict(artifact))
    return tuple(artifacts)


def retry_strategy(raw: dict[str, Any] | None, where: str) -> Retry | None:
    if raw is None:
        return None
    check_keys(raw, {"limit", "retryPolicy", "backoff"}, f"{where} retryStrategy")
    policy = raw.get("retryPolicy") or "OnFailure"
    if policy not in RETRY_POLICIES:
        raise UnsupportedManifest(f"{where}: retryPolicy {policy!r}")
    backoff = raw.get("backoff") or {}
    check_keys(backoff, {"duration", "factor", "maxDuration", "cap"}, f"{where} backoff")
    factor = backoff.get("factor")
    return Retry(
        limit=parse_int(raw.get("limit"), f"{where} retryStrategy.limit"),
        policy=policy,
        backoff=parse_duration(backoff.get("duration"), f"{where} backoff.duration") or 0.0,
        factor=float(parse_int(factor, f"{where} backoff.factor") or 1) if factor else 1.0,
        max_backoff=parse_duration(backoff.get("cap"), f"{where} backoff.cap"),
        max_duration=parse_duration(backoff.get("maxDuration"), f"{where} backoff.maxDuration"),
    )
