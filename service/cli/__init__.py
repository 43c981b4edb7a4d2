"""The ``forgeflow`` command and what only it uses: the processes' start-up (``processes``),
job-file tools (``jobfile``), previews of an event on a checkout (``preview``, ``checkout``),
webhook files and replays (``event_files``, ``replay``) and the demo repository (``demo``)."""

from service.cli.main import main

__all__ = ["main"]
