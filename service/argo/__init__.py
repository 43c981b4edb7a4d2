"""Argo Workflows manifests: strict validation before forgeflow submits them."""

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
