"""Where the shared third-party fixtures are: ``../shared/fixtures`` beside the repository.

``FORGEFLOW_SHARED_FIXTURES`` names another folder; otherwise the repository's parent folders
are searched for ``shared/fixtures``, so a clone anywhere under the workplace finds them.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_fixtures() -> Path:
    given = os.environ.get("FORGEFLOW_SHARED_FIXTURES")
    if given:
        return Path(given)
    for parent in REPO_ROOT.parents:
        candidate = parent / "shared" / "fixtures"
        if candidate.is_dir():
            return candidate
    return REPO_ROOT.parent / "shared" / "fixtures"
