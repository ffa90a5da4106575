"""Load and validate the configuration file."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pydantic
import yaml

from lib.config.schema import CrmConfig
from lib.errors import ConfigError

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config" / "crm.yaml"
CONFIG_ENV = "CRM_CONFIG"


def _format_location(location: tuple[object, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def parse_config(text: str, origin: str = "<string>") -> CrmConfig:
    """Parse YAML text into a validated configuration.

    Raises:
        ConfigError: the YAML is malformed or a value is invalid; the message
            names the key path, the value and the allowed values.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level, found {type(data).__name__}")
    try:
        return CrmConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _format_location(error["loc"])
            shown = error.get("input")
            value = "" if isinstance(shown, (dict, list)) else f" (found {shown!r})"
            problems.append(f"{where}: {error['msg']}{value}")
        raise ConfigError(f"{origin}: invalid configuration:\n  " + "\n  ".join(problems)) from exc


def load_config(path: str | os.PathLike[str] | None = None) -> CrmConfig:
    """Read the configuration from ``path``, ``$CRM_CONFIG`` or the sample file.

    Raises:
        ConfigError: the file is missing or invalid.
    """
    chosen = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_PATH)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {str(chosen)!r}: {exc.strerror}; set {CONFIG_ENV}") from exc
    return parse_config(text, origin=str(chosen))


@functools.lru_cache(maxsize=4)
def cached_config(path: str | None = None) -> CrmConfig:
    """Load the configuration once per process (functions reuse warm instances)."""
    return load_config(path)
