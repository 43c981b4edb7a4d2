"""Name rules of Kubernetes and Argo: object names, label keys and values, template names.

Each check returns None for a good name, or a short sentence saying what is wrong.
"""

import re

# Argo's own limits on object names (workflow/validate): a Workflow's name ends up in label
# values (63 characters at most); a CronWorkflow's gets "-<unix time>" appended to it.
OBJECT_NAME_LIMITS = {
    "Workflow": 63,
    "WorkflowTemplate": 63,
    "ClusterWorkflowTemplate": 63,
    "CronWorkflow": 52,
}
FIELD_NAME_LIMIT = 128

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_FIELD_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")


def is_templated(value: str) -> bool:
    """True for a value holding an Argo ``{{...}}`` expression: resolved later, not checked."""
    return "{{" in value


def dns_subdomain_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS-1123 subdomain (a Kubernetes object name), or None."""
    if len(name) > 253:
        return "must be at most 253 characters"
    if not _DNS1123_SUBDOMAIN.match(name):
        return (
            "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.',"
            " starting and ending with a letter or digit"
        )
    return None


def object_name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` cannot name an Argo object of ``kind``, or None."""
    limit = OBJECT_NAME_LIMITS.get(kind, 253)
    if len(name) > limit:
        return f"must be at most {limit} characters for a {kind} (it has {len(name)})"
    return dns_subdomain_problem(name)


def generate_name_problem(prefix: str) -> str | None:
    """Why ``prefix`` is not a usable ``generateName`` (it may end with '-'), or None."""
    masked = prefix[:-1] + "a" if prefix.endswith("-") else prefix
    return dns_subdomain_problem(masked)


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes label or annotation key ([prefix/]name), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or dns_subdomain_problem(prefix)):
        return "the prefix before '/' must be a DNS-1123 subdomain"
    if len(name) > 63:
        return "the name part must be at most 63 characters"
    if not _QUALIFIED_NAME.match(name):
        return (
            "the name part must consist of letters, digits, '-', '_' or '.',"
            " starting and ending with a letter or digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a Kubernetes label value, or None ("" is a valid value)."""
    if len(value) > 63:
        return f"must be at most 63 characters (it has {len(value)})"
    if value and not _QUALIFIED_NAME.match(value):
        return "must consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    return None


def field_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an Argo template, step or task, or None."""
    if len(name) > FIELD_NAME_LIMIT:
        return f"must be at most {FIELD_NAME_LIMIT} characters"
    if not _FIELD_NAME.match(name):
        return "must consist of letters, digits and '-', starting with a letter or digit"
    return None


def fnv32a(text: str) -> int:
    """The 32-bit FNV-1a hash of ``text`` (UTF-8), as Go's ``hash/fnv`` computes it."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def node_id(workflow_name: str, node_name: str) -> str:
    """Argo's id for the node named ``node_name`` in workflow ``workflow_name``: the workflow's
    own node is the workflow's name; any other is ``<workflow>-<fnv32a(node name)>``."""
    if node_name == workflow_name:
        return workflow_name
    return f"{workflow_name}-{fnv32a(node_name)}"
