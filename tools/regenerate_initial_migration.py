"""Regenerate migration 0001 from service/store/models.py.

Until forgeflow's first release the schema has one migration; after changing the models run
``.venv/bin/python tools/regenerate_initial_migration.py`` and commit the result. After the first
release, add new revisions with Alembic instead.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from service.store.db import MIGRATIONS

TARGET = MIGRATIONS / "versions" / "0001_initial_schema.py"


def main() -> None:
    TARGET.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'empty.sqlite'}")
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.revision(config, message="initial schema", autogenerate=True, rev_id="0001")
        engine.dispose()
    text = TARGET.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("Create Date:")]
    TARGET.write_text("\n".join(lines) + "\n", encoding="utf-8")
    subprocess.run([".venv/bin/ruff", "format", "-q", str(TARGET)], check=False)
    subprocess.run([".venv/bin/ruff", "check", "-q", "--fix", str(TARGET)], check=False)
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
