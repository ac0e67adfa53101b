"""The client's small config file: which warehouse, and how to sign in (a token from `login`, or an API
key). `~/.config/kho-so-hoa/client.json` (or `$XDG_CONFIG_HOME`, or `--config`, or
`$KHO_CLIENT_CONFIG`); readable by its owner only, since it holds a credential."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class ClientConfig:
    host: str = ""
    login: str = ""
    token: str = ""
    api_key: str = ""

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"X-API-Key": self.api_key}
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        return {}


def config_path(given: str | None = None) -> Path:
    if given or os.environ.get("KHO_CLIENT_CONFIG"):
        return Path(given or os.environ["KHO_CLIENT_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "kho-so-hoa" / "client.json"


def load(path: Path) -> ClientConfig:
    if not path.exists():
        return ClientConfig()
    data = json.loads(path.read_text(encoding="utf-8"))
    return ClientConfig(**{k: str(v) for k, v in data.items() if k in ClientConfig.__dataclass_fields__})


def save(path: Path, config: ClientConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(config), f, indent=2)
    os.chmod(path, 0o600)
