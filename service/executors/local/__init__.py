"""The ``local`` executor: the very manifest Argo would run, run on this machine.

``executor`` is the seam's implementation; ``runner`` is the per-Workflow "controller" process
(``python -m service.executors.local.runner``); ``manifest`` reads a manifest into what the runner
executes; ``state``/``nodes``/``status`` keep Argo's ``status.nodes`` shape; ``pod``, ``env``,
``fields``, ``git``, ``proc`` and ``values`` run one pod; ``store`` and ``watch`` keep Workflow
objects as files and list/watch them Kubernetes-style.
"""
