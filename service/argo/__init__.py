"""Argo Workflows manifests: strict validation before forgeflow submits them.

The validation (``service.argo.validation``, over hera's models) is loaded when first asked
for, so the light parts (``names``: Argo's name rules and node ids) serve the web tier
without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.argo.validation import (
        API_VERSION,
        SUPPORTED_KINDS,
        InvalidManifest,
        manifest_errors,
        template_errors,
        validate_manifest,
        validate_templates,
    )

__all__ = [
    "API_VERSION",
    "SUPPORTED_KINDS",
    "InvalidManifest",
    "manifest_errors",
    "template_errors",
    "validate_manifest",
    "validate_templates",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from service.argo import validation

        return getattr(validation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
