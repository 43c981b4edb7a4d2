"""Where the shared third-party fixtures are: ``../shared/fixtures`` beside the repository.

``FORGEFLOW_SHARED_FIXTURES`` names another folder; otherwise the repository's parent folders
are searched for ``shared/fixtures``, so a clone anywhere under the workplace finds them; a
clone made elsewhere from a local repository (``git clone /work/main /tmp/x``) looks beside
the repository it was cloned from.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_fixtures() -> Path:
    given = os.environ.get("FORGEFLOW_SHARED_FIXTURES")
    if given:
        return Path(given)
    for root in (REPO_ROOT, _local_origin()):
        for parent in root.parents if root else ():
            candidate = parent / "shared" / "fixtures"
            if candidate.is_dir():
                return candidate
    return REPO_ROOT.parent / "shared" / "fixtures"


def _local_origin() -> Path | None:
    """The repository this one was cloned from, when that is a folder on this machine."""
    try:
        url = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(url.removeprefix("file://"))
    return path.resolve() if url and path.is_absolute() and path.is_dir() else None
