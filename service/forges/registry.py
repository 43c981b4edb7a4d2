"""Which forge implementation serves an event: chosen by forge kind and configured instance."""

from __future__ import annotations

import importlib
import logging
import threading
from typing import TYPE_CHECKING

from service.forges.base import Forge, ForgeError
from service.forges.local import LocalForge
from service.forges.notes import NoteLedger
from service.forges.permissions import PermissionCache
from service.forges.ratelimits import RateLimits
from service.settings import ForgeInstance, Settings, local_webhook_secret
from service.store.db import Database

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from service.forges.ogr_forge import OgrForge

# forge kind -> the class that speaks to an instance of it ("module:Class"). Imported when first
# used: ogr and the forges' client libraries are heavy, and the web tier never needs them.
FORGE_CLASSES: dict[str, str] = {
    "github": "service.forges.github:GithubForge",
    "gitlab": "service.forges.gitlab:GitlabForge",
    "forgejo": "service.forges.forgejo:ForgejoForge",
    "pagure": "service.forges.pagure:PagureForge",
}


def forge_class(kind: str) -> type[OgrForge]:
    module, _, name = FORGE_CLASSES[kind].partition(":")
    cls: type[OgrForge] = getattr(importlib.import_module(module), name)
    return cls


class ForgeRegistry:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.instances = settings.forge_instances()
        self.local = LocalForge(settings.repos_dir, db)
        self.notes = NoteLedger(db)
        self.permissions = PermissionCache()
        self.limits = RateLimits(db)
        self.db = db
        self._forges: dict[str, OgrForge] = {}
        self._lock = threading.Lock()

    def webhook_secrets(self, kind: str) -> list[tuple[str, str]]:
        """(instance name, secret) pairs a delivery of ``kind`` may be signed with."""
        if kind == "local":
            return [("local", local_webhook_secret(self.settings))]
        return [(i.name, i.webhook_secret) for i in self.instances if i.kind == kind and i.webhook_secret]

    def instance(self, kind: str, name: str) -> ForgeInstance:
        candidates = [i for i in self.instances if i.kind == kind]
        for candidate in candidates:
            if candidate.name == name:
                return candidate
        if len(candidates) == 1 and not name:
            return candidates[0]
        raise ForgeError(f"no {kind} instance named {name!r} is configured")

    def get(self, kind: str, name: str = "") -> Forge:
        if kind == "local":
            return self.local
        instance = self.instance(kind, name)
        key = f"{kind}:{instance.name}"
        with self._lock:
            if key not in self._forges:
                self._forges[key] = forge_class(instance.kind)(
                    instance, notes=self.notes, limits=self.limits, db=self.db
                )
            return self._forges[key]

    def warm_up(self) -> None:
        """Build every configured forge's client now (imports included)."""
        for instance in self.instances:
            try:
                self.get(instance.kind, instance.name)
            except Exception as exc:
                log.warning("the %s forge %r is not ready yet: %s", instance.kind, instance.name, exc)

    def choose_instance(self, kind: str, verified: list[str], payload_instance: str) -> str:
        """Of the instances whose secret verified a delivery, the one its payload names."""
        if len(verified) == 1:
            return verified[0]
        host = payload_instance.split("://", 1)[-1].split("/", 1)[0].lower()
        for name in verified:
            for instance in self.instances:
                if instance.kind == kind and instance.name == name and instance.host == host:
                    return name
        return verified[0]
