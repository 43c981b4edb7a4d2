"""A run's whole life, and the only code that writes run and job states.

One event makes one run (one Argo Workflow). This package records it, plans it (through the one
recipe, :mod:`service.runs.recipe`), submits it, holds it for approval, releases it when
approved, stops it when superseded or cancelled, follows its Workflow's progress, fails it when
something gives up, and sweeps what was left behind. Other packages ask; only this one writes.
"""
