"""Server settings (filled from the CLI / INNGEST_* environment variables)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8288
    sdk_urls: list[str] = field(default_factory=list)
    discovery: bool = False
    poll: bool = True
    poll_interval: float = 5.0
    retry_interval: float = 0.0  # 0 = the real backoff table; N = fixed N seconds
    database_url: str | None = None
    in_memory: bool = False
    signing_key: str | None = None
    event_keys: list[str] = field(default_factory=list)
    queue_workers: int = 100
    ui: bool = True  # the dashboard (/) and /mcp; refused on a public address without a key

    @property
    def server_kind(self) -> str:
        return "cloud" if self.signing_key else "dev"
