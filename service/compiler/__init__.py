"""Compile a :class:`WorkflowPlan` into an Argo ``Workflow`` manifest. Pure; golden-tested.

``from service.compiler import compile_workflow`` is the entry point; see :mod:`.workflow`.
"""

from service.compiler.escape import DRIVER
from service.compiler.pods import SOURCE_PATH
from service.compiler.workflow import (
    DEADLINE_SLACK_SECONDS,
    ENTRYPOINT,
    compile_workflow,
    critical_path_seconds,
)

__all__ = [
    "DEADLINE_SLACK_SECONDS",
    "DRIVER",
    "ENTRYPOINT",
    "SOURCE_PATH",
    "compile_workflow",
    "critical_path_seconds",
]
