"""The Alembic config for Nerve's one migration history, independent of the working directory."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from service_kit.db import normalize_url

SCRIPT_LOCATION = str(Path(__file__).parent / "alembic")


def alembic_config(url: str) -> Config:
    """An Alembic `Config` pointing at our scripts and at `url`."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    rendered = normalize_url(url).render_as_string(hide_password=False)
    # ConfigParser interpolates '%': escape it (URL-encoded passwords contain it).
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config
