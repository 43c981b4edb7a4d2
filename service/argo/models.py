"""The Argo Workflows v4.1 object model, built from hera 7.1's generated pydantic models.

hera 7.1's models describe an older Argo: they lack a few fields that argo-workflows v4.1
accepts, and they type some leaf values more narrowly than Argo reads them. This module
derives a parallel tree of subclasses that fixes both, without touching hera's own classes:

- ``FIELD_OVERRIDES`` adds the missing fields (shapes from argo-workflows v4.1 ``schema.json``)
  and retypes the few that hera types differently from it;
- ``REPLACED_TYPES`` swaps leaf types for validators that accept what Argo accepts: a
  Kubernetes quantity is a string *or* a number, an int-or-string is either, a timestamp may
  be a string, and a plugin template is a free-form object with one key (the plugin's name).

Every class whose fields reach a changed class is re-derived too, so the fix applies at any
depth (a quantity inside an inline template inside a DAG task, say). ``argo_models()`` builds
the tree once, on first use, and returns the root models by kind.
"""

from __future__ import annotations

import copy
import functools
import re
import types
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Annotated, Any, ForwardRef, Union, get_args, get_origin

from hera.shared._pydantic import APIBaseModel
from hera.workflows import models as m
from hera.workflows.models.io.k8s.apimachinery.pkg.api.resource import Quantity
from hera.workflows.models.io.k8s.apimachinery.pkg.apis.meta.v1 import MicroTime, Time
from hera.workflows.models.io.k8s.apimachinery.pkg.util.intstr import IntOrString
from pydantic import BaseModel, Field, PlainValidator
from pydantic_core import PydanticCustomError

# --- leaf types: what Argo's Go types accept when they read JSON -----------------------------

# Kubernetes resource.Quantity, e.g. "500m", "1Gi", "1e3", 2, 0.5.
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(\d+(\.\d*)?|\.\d+)))?$")


def _is_number(value: object) -> bool:
    """True for a JSON number (bool is not one, though Python says it is an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _quantity(value: object) -> object:
    """A Kubernetes quantity: a number, or a string like "250m"; "{{...}}" is not checked."""
    if _is_number(value):
        return value
    if isinstance(value, str) and ("{{" in value or _QUANTITY.match(value)):
        return value
    raise PydanticCustomError(
        "quantity", 'expected a Kubernetes quantity (a number or a string like "500m", "1Gi")'
    )


def _int_or_string(value: object) -> object:
    """Kubernetes IntOrString: an integer or a string."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise PydanticCustomError("int_or_string", "expected an integer or a string")


def _any_string(value: object) -> object:
    """Argo AnyString (parameter values): a string, or a number or boolean read as one."""
    if isinstance(value, str | bool) or _is_number(value):
        return value
    raise PydanticCustomError("any_string", "expected a string, number or boolean")


def _timestamp(value: object) -> object:
    """A Kubernetes timestamp: an RFC 3339 string, or the datetime YAML already parsed."""
    if isinstance(value, str | datetime | date):
        return value
    raise PydanticCustomError("timestamp", "expected a timestamp string")


def _plugin(value: object) -> object:
    """A plugin template: an object with exactly one key, the plugin's name; its body is free."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value)), str):
        return value
    raise PydanticCustomError("plugin", "expected an object with exactly one key, the plugin's name")


QuantityValue = Annotated[Any, PlainValidator(_quantity)]
IntOrStr = Annotated[Any, PlainValidator(_int_or_string)]
AnyString = Annotated[Any, PlainValidator(_any_string)]
Timestamp = Annotated[Any, PlainValidator(_timestamp)]
PluginBody = Annotated[Any, PlainValidator(_plugin)]

REPLACED_TYPES: Mapping[type, Any] = {
    Quantity: QuantityValue,
    IntOrString: IntOrStr,
    Time: Timestamp,
    MicroTime: Timestamp,
    m.Plugin: PluginBody,
}

# --- models argo-workflows v4.1 has and hera 7.1 lacks -------------------------------------


class PodResourceClaim(APIBaseModel):
    """core/v1 PodResourceClaim: one ResourceClaim a pod needs (spec/template resourceClaims)."""

    name: str
    resource_claim_name: Annotated[str | None, Field(alias="resourceClaimName")] = None
    resource_claim_template_name: Annotated[str | None, Field(alias="resourceClaimTemplateName")] = None


class FileKeySelector(APIBaseModel):
    """core/v1 FileKeySelector: an env var read from a key in a file on a volume."""

    key: str
    optional: bool | None = None
    path: str
    volume_name: Annotated[str, Field(alias="volumeName")]


class ContainerRestartRuleOnExitCodes(APIBaseModel):
    """core/v1 ContainerRestartRuleOnExitCodes: the exit codes a restart rule matches."""

    operator: str
    values: list[int] | None = None


class ContainerRestartRule(APIBaseModel):
    """core/v1 ContainerRestartRule: restart a container on matching exit codes."""

    action: str
    exit_codes: Annotated[ContainerRestartRuleOnExitCodes | None, Field(alias="exitCodes")] = None


class PodCertificateProjection(APIBaseModel):
    """core/v1 PodCertificateProjection: a projected volume source holding a pod certificate."""

    certificate_chain_path: Annotated[str | None, Field(alias="certificateChainPath")] = None
    credential_bundle_path: Annotated[str | None, Field(alias="credentialBundlePath")] = None
    key_path: Annotated[str | None, Field(alias="keyPath")] = None
    key_type: Annotated[str, Field(alias="keyType")]
    max_expiration_seconds: Annotated[int | None, Field(alias="maxExpirationSeconds")] = None
    signer_name: Annotated[str, Field(alias="signerName")]
    user_annotations: Annotated[dict[str, str] | None, Field(alias="userAnnotations")] = None


class ExecutorPluginSidecar(APIBaseModel):
    """The sidecar container of a workflow-level executor plugin."""

    automount_service_account_token: Annotated[bool | None, Field(alias="automountServiceAccountToken")] = (
        None
    )
    container: m.Container


class ExecutorPluginSpec(APIBaseModel):
    """The spec of a workflow-level executor plugin."""

    sidecar: ExecutorPluginSidecar


class ExecutorPlugin(APIBaseModel):
    """A workflow-level executor plugin (``spec.executorPlugins[]``)."""

    metadata: m.ObjectMeta
    spec: ExecutorPluginSpec


# A field as (annotation, pydantic FieldInfo); typed Any because pydantic's Field() claims to
# return its default value.
FieldSpec = tuple[Any, Any]


def _optional(annotation: Any, alias: str) -> FieldSpec:
    """An optional field spelt ``alias`` in YAML."""
    return (annotation | None, Field(default=None, alias=alias))


_POD_FIELDS = {
    "pod_resources": _optional(m.ResourceRequirements, "podResources"),
    "resource_claims": _optional(list[PodResourceClaim], "resourceClaims"),
}
_RESTART_RULES = {"restart_policy_rules": _optional(list[ContainerRestartRule], "restartPolicyRules")}
_ANY_STRING = {
    "default": (AnyString | None, Field(default=None)),
    "description": (AnyString | None, Field(default=None)),
    "enum": (list[AnyString] | None, Field(default=None)),
    "value": (AnyString | None, Field(default=None)),
}

FIELD_OVERRIDES: Mapping[type[BaseModel], Mapping[str, FieldSpec]] = {
    m.WorkflowSpec: {
        **_POD_FIELDS,
        "executor_plugins": _optional(list[ExecutorPlugin], "executorPlugins"),
    },
    m.Template: {**_POD_FIELDS, "pending_timeout": _optional(str, "pendingTimeout")},
    m.Container: _RESTART_RULES,
    m.ContainerNode: _RESTART_RULES,
    m.UserContainer: _RESTART_RULES,
    m.ScriptTemplate: _RESTART_RULES,
    m.EnvVarSource: {"file_key_ref": _optional(FileKeySelector, "fileKeyRef")},
    m.VolumeProjection: {"pod_certificate": _optional(PodCertificateProjection, "podCertificate")},
    m.HTTPArtifact: {"save_stream_via_file": _optional(bool, "saveStreamViaFile")},
    m.S3Artifact: {"addressing_style": _optional(str, "addressingStyle")},
    m.S3ArtifactRepository: {"addressing_style": _optional(str, "addressingStyle")},
    m.Parameter: _ANY_STRING,
    m.ValueFrom: {"default": _ANY_STRING["default"]},
    m.HTTPGetAction: {"port": (IntOrStr, Field())},
}

ROOTS: Mapping[str, type[BaseModel]] = {
    "Workflow": m.Workflow,
    "WorkflowTemplate": m.WorkflowTemplate,
    "ClusterWorkflowTemplate": m.ClusterWorkflowTemplate,
    "CronWorkflow": m.CronWorkflow,
    "Template": m.Template,
}

# --- deriving the tree -----------------------------------------------------------------------


def _fields(cls: type[BaseModel]) -> dict[str, FieldSpec]:
    """A model's fields as (annotation, FieldInfo), with its FIELD_OVERRIDES applied."""
    fields = {name: (info.annotation, info) for name, info in cls.model_fields.items()}
    fields.update(FIELD_OVERRIDES.get(cls, {}))
    return fields


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The model classes an annotation mentions (``list[X] | None`` mentions X)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in get_args(annotation):
        yield from _models_in(arg)


def _dependency_graph(roots: list[type[BaseModel]]) -> dict[type[BaseModel], set[type]]:
    """Every model reachable from ``roots``, mapped to the models its fields mention."""
    graph: dict[type[BaseModel], set[type]] = {}
    pending = list(roots)
    while pending:
        cls = pending.pop()
        if cls in graph or cls in REPLACED_TYPES:
            continue
        deps = {dep for ann, _ in _fields(cls).values() for dep in _models_in(ann)}
        graph[cls] = deps
        pending.extend(deps)
    return graph


def _classes_to_derive(graph: dict[type[BaseModel], set[type]]) -> list[type[BaseModel]]:
    """The models with overridden fields, or that reach (at any depth) a changed model or type."""
    changed = {cls for cls in graph if cls in FIELD_OVERRIDES}
    grew = True
    while grew:
        grew = False
        for cls, deps in graph.items():
            if cls not in changed and any(d in changed or d in REPLACED_TYPES for d in deps):
                changed.add(cls)
                grew = True
    return sorted(changed, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def _substitute(annotation: Any, mapping: Mapping[type, Any]) -> Any:
    """``annotation`` with every type in ``mapping`` replaced, at any nesting depth."""
    if isinstance(annotation, type) and annotation in mapping:
        return mapping[annotation]
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is None or not args:
        return annotation
    new_args = tuple(_substitute(arg, mapping) for arg in args)
    if all(new is old for new, old in zip(new_args, args, strict=True)):
        return annotation
    if origin is Union or origin is types.UnionType:
        return Union[new_args]  # noqa: UP007 -- ForwardRef does not support "|"
    if origin is Annotated:
        return Annotated[new_args]
    return origin[new_args]


def _derive(cls: type[BaseModel], mapping: Mapping[type, Any]) -> type[BaseModel]:
    """A subclass of ``cls`` whose changed fields use ``mapping``'s types (not yet built)."""
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": __name__, "__qualname__": cls.__qualname__}
    for name, (annotation, info) in _fields(cls).items():
        new_annotation = _substitute(annotation, mapping)
        if new_annotation is not annotation or name in FIELD_OVERRIDES.get(cls, {}):
            annotations[name] = new_annotation
            namespace[name] = copy.copy(info)
    namespace["__annotations__"] = annotations
    return type(cls.__name__, (cls,), namespace)


@functools.cache
def argo_models() -> Mapping[str, type[BaseModel]]:
    """The derived root models by kind ("Workflow", ..., and "Template"); built once."""
    graph = _dependency_graph(list(ROOTS.values()))
    to_derive = _classes_to_derive(graph)
    refs = {cls: f"_argo_model_{index}" for index, cls in enumerate(to_derive)}
    mapping: dict[type, Any] = dict(REPLACED_TYPES)
    mapping.update({cls: ForwardRef(ref) for cls, ref in refs.items()})
    derived = {cls: _derive(cls, mapping) for cls in to_derive}
    namespace = {refs[cls]: new for cls, new in derived.items()}
    for new in derived.values():
        new.model_rebuild(_types_namespace=namespace)
    return {kind: derived.get(cls, cls) for kind, cls in ROOTS.items()}
