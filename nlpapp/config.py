"""User-level settings read from the environment, in one place."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "NLPAPP_HOME"


def home() -> Path:
    """nlpapp's cache folder: ``$NLPAPP_HOME``, else ``$XDG_CACHE_HOME/nlpapp``, else ``~/.cache/nlpapp``."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nlpapp"


def models_dir() -> Path:
    return home() / "models"
