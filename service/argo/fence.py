"""The fence around raw Argo: what a job file's own ``argo:`` templates may not do.

A job file is written by anyone who can push to a connected repository, so its templates must
not reach past the run: create Kubernetes objects (``resource:`` templates, the controller's
memoize caches), mount anything but scratch space (``emptyDir``) and the Secrets granted to the
repository, patch the pod spec, use the host's namespaces, escalate privileges, add
capabilities, run as root, drop the seccomp/AppArmor profile, choose a service account, read the
namespace's ConfigMaps (env, envFrom, parameters; like ``configMap`` volumes), bind a
port on the node (``hostPort``), or move artifacts anywhere but the run's own place in the
operator's artifact repository (an artifact location of its own, at a bucket, endpoint, git or
HTTP server, could carry the node's cloud credentials or reach another run's files), or choose
its nodes or priority (tolerations reach tainted nodes; a priority class preempts other pods).

:func:`fence_problems` walks one template and returns every refusal with the path of the key
inside the template and the name of the exception a repository policy may grant
(``argo_allow`` in the service config, see ``service.settings.ARGO_EXCEPTIONS``). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]

ALLOWED_VOLUME_KINDS = frozenset({"name", "emptyDir", "secret"})
ALLOWED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})  # what the "restricted" profile allows
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
SCHEDULING = ("nodeSelector", "affinity", "tolerations", "priorityClassName", "priority", "schedulerName")
UNSAFE_PROFILES = frozenset({"Unconfined", "unconfined"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_ANNOTATION = "seccomp.security.alpha.kubernetes.io/"
# Artifact locations a raw template may use: the operator's repository, by key only (``raw`` is
# inline text, no location). The key stays under the run's own Workflow name.
KEY_ONLY = {"s3": "key", "gcs": "key", "oss": "key", "azure": "blob"}
ARTIFACT_LOCATIONS = frozenset({*KEY_ONLY, "git", "http", "hdfs", "artifactory"})  # plugin: its own rule
OWN_PREFIX = re.compile(r"^\{\{\s*workflow\.name\s*\}\}/")


@dataclass(frozen=True)
class Refusal:
    """One thing a template may not do: where (inside the template), the exception that would
    allow it, and why."""

    path: Path
    exception: str
    message: str


def _true(value: Any) -> bool:
    return value is True


def _any(value: Any) -> bool:
    return value is not None


def _root(value: Any) -> bool:
    return value in (0, "0")


def _unsafe_capabilities(value: Any) -> bool:
    added = value.get("add") if isinstance(value, dict) else None
    if not isinstance(added, list) or not added:
        return bool(added)
    return not {str(item) for item in added} <= ALLOWED_CAPABILITIES


def _unsafe_profile(value: Any) -> bool:
    return isinstance(value, dict) and str(value.get("type")) in UNSAFE_PROFILES


# key → (the exception that allows it, when the value is refused, why). Keys are matched at
# any depth of a template (containers, sidecars, init containers, securityContext...).
KEYS: dict[str, tuple[str, Callable[[Any], bool], str]] = {
    "resource": ("resource", _any, "resource templates create Kubernetes objects"),
    "hostPath": ("hostPath", _any, "hostPath volumes reach the node's files"),
    "podSpecPatch": ("podSpecPatch", _any, "podSpecPatch can change anything in the pod"),
    "privileged": ("privileged", _true, "privileged containers own the node"),
    "allowPrivilegeEscalation": (
        "allowPrivilegeEscalation",
        _true,
        "allowPrivilegeEscalation lets processes gain privileges",
    ),
    "capabilities": (
        "capabilities",
        _unsafe_capabilities,
        "added capabilities (other than NET_BIND_SERVICE) escalate",
    ),
    "serviceAccountName": ("serviceAccount", _any, "the service account is decided by the service config"),
    "automountServiceAccountToken": (
        "serviceAccount",
        _true,
        "a Kubernetes token in the pod is decided by the service config",
    ),
    "executor": ("serviceAccount", _any, "the executor's service account is decided by the service config"),
    "runAsUser": ("runAsRoot", _root, "running as root (user 0) is not allowed"),
    "runAsGroup": ("runAsRoot", _root, "running as group 0 is not allowed"),
    "runAsNonRoot": ("runAsRoot", lambda v: v is False, "runAsNonRoot: false is not allowed"),
    "seccompProfile": ("securityProfiles", _unsafe_profile, "an unconfined seccomp profile"),
    "appArmorProfile": ("securityProfiles", _unsafe_profile, "an unconfined AppArmor profile"),
    "seLinuxOptions": ("securityProfiles", _any, "custom SELinux options"),
    "procMount": ("securityProfiles", lambda v: v not in (None, "Default"), "an unmasked /proc"),
    "sysctls": ("securityProfiles", _any, "sysctls change the node's kernel settings"),
    "windowsOptions": ("securityProfiles", _any, "Windows host processes"),
    "memoize": ("controllerObjects", _any, "memoize caches are ConfigMaps the controller writes"),
    "synchronization": ("controllerObjects", _any, "synchronization reads ConfigMaps or locks others' runs"),
    "plugin": ("plugin", _any, "executor plugins run with their own rights"),
    **{key: ("hostNamespaces", _true, f"{key} shares a namespace with the node") for key in HOST_NAMESPACES},
    "hostPort": ("hostPort", _any, "hostPort binds a port on the node"),
    # where a pod lands and whom it pushes out is the operator's: tolerations reach tainted
    # (control-plane, dedicated) nodes, a priority class preempts other teams' pods
    **{
        key: ("scheduling", _any, f"{key} chooses nodes or priority, which the service config decides")
        for key in SCHEDULING
    },
    # the kubelet (env) and the controller (parameters) read ConfigMaps with their own rights
    "configMapKeyRef": ("volumes", _any, "ConfigMaps of the namespace are not a job's to read"),
    "configMapRef": ("volumes", _any, "ConfigMaps of the namespace are not a job's to read"),
}


def _walk(value: Any, path: Path) -> Iterator[tuple[Path, str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, str(key)), str(key), item
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index))


def fence_problems(template: dict[str, Any], allowed: frozenset[str] = frozenset()) -> list[Refusal]:
    """What ``template`` (one raw Argo template, as written) may not do, in document order;
    refusals whose exception is in ``allowed`` are left out."""
    refusals: list[Refusal] = []
    for path, key, value in _walk(template, ()):
        rule = KEYS.get(key)
        if rule is not None:
            exception, refused, why = rule
            if refused(value) and exception not in allowed:
                refusals.append(Refusal(path, exception, why))
        if key == "volumes" and isinstance(value, list) and "volumes" not in allowed:
            for index, volume in enumerate(value):
                kinds = sorted(set(volume) - ALLOWED_VOLUME_KINDS) if isinstance(volume, dict) else []
                if kinds and kinds != ["hostPath"]:  # hostPath has its own rule
                    refusals.append(
                        Refusal(
                            (*path, index),
                            "volumes",
                            f"{kinds[0]} volumes are not allowed (only emptyDir and granted Secrets)",
                        )
                    )
        if key in ("artifacts", "archiveLocation") and "artifactLocations" not in allowed:
            refusals.extend(_artifact_refusals(key, value, path))
        if key == "annotations" and isinstance(value, dict) and "securityProfiles" not in allowed:
            for name in value:
                if str(name).startswith((APPARMOR_ANNOTATION, SECCOMP_ANNOTATION)):
                    refusals.append(
                        Refusal(
                            (*path, str(name)), "securityProfiles", f"{name}: security profile annotations"
                        )
                    )
    return refusals


def _artifact_refusals(key: str, value: Any, path: Path) -> Iterator[Refusal]:
    """An artifact (``inputs``/``outputs``/``arguments`` ``artifacts``) or ``archiveLocation``
    with a location other than a key in the run's own place of the operator's repository."""
    places = [(path, value)] if key == "archiveLocation" else []
    if key == "artifacts" and isinstance(value, list):
        places = [((*path, index), item) for index, item in enumerate(value)]
    for where, artifact in places:
        if not isinstance(artifact, dict):
            continue
        for kind in sorted(set(map(str, artifact)) & ARTIFACT_LOCATIONS):
            problem = _location_problem(kind, artifact[kind])
            if problem:
                yield Refusal((*where, kind), "artifactLocations", problem)


def _location_problem(kind: str, location: Any) -> str:
    field = KEY_ONLY.get(kind)
    if field is None:
        return f"{kind} artifacts reach a place of their own; use the artifact repository (a key only)"
    if not isinstance(location, dict) or set(map(str, location)) != {field}:
        return (
            f"{kind} artifacts may give only their {field} (the service's artifact repository), "
            "not a bucket, endpoint or credentials of their own"
        )
    name = location[field]
    if not isinstance(name, str) or not OWN_PREFIX.match(name) or ".." in name.split("/"):
        return f"an artifact {field} must start with {{{{workflow.name}}}}/ (the run's own files)"
    return ""
