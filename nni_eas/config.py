"""Configuration as data: YAML files validated by pydantic models, with errors a person can act on.

Every config in nni-eas (space presets, training recipes, experiment settings) goes through
:func:`validate`, so a bad file always fails the same way: the file, the dotted field path, what
was given and what is allowed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["ConfigError", "StrictModel", "load_yaml", "validate", "atomic_write_text"]

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """Invalid configuration or input. The message names the field and the allowed values."""


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def load_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file with the safe loader; errors name the file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names allowed at ``loc`` (walks nested models), for 'unknown key' messages."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return None
        ann = field.annotation
        current = _first_model(ann)
    if current is None or not hasattr(current, "model_fields"):
        return None
    return sorted(current.model_fields)


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def format_validation_error(err: ValidationError, model: type[BaseModel], source: str) -> str:
    """One line per problem: ``source: field.path: message (got X)``."""
    lines = []
    for e in err.errors():
        loc = tuple(e.get("loc", ()))
        path = ".".join(str(p) for p in loc) or "<root>"
        if e.get("type") == "extra_forbidden":
            allowed = _allowed_keys(model, loc)
            hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
            lines.append(f"{source}: unknown key {path!r}{hint}")
        else:
            got = e.get("input")
            got_s = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
            lines.append(f"{source}: {path}: {e.get('msg')}{got_s}")
    return "\n".join(lines)


def validate(model: type[M], data: Mapping[str, Any] | Any, source: str = "config") -> M:
    """Validate ``data`` against ``model``; raise :class:`ConfigError` with readable messages."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
    try:
        return model.model_validate(dict(data))
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, model, source)) from None


def load_preset(model: type[M], value: Any, find: Any, what: str, **overrides: Any) -> M:
    """A config of type ``model`` from an instance, a mapping, a ``.yml`` path or a preset name.

    ``find(name) -> Path`` resolves preset names (raising :class:`ConfigError` with the
    available ones); ``overrides`` replace top-level keys. One loader for every kind of preset
    (search spaces, RepNAS spaces), so they all accept the same forms and fail the same way.
    """
    if isinstance(value, model):
        if not overrides:
            return value
        data, source = value.model_dump(), f"preset {getattr(value, 'name', what)!r}"
    elif isinstance(value, Mapping):
        data, source = dict(value), what
    else:
        text = os.fspath(value)
        path = Path(text) if (text.endswith((".yml", ".yaml")) or os.sep in text) else find(text)
        data, source = load_yaml(path), str(path)
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a {what} preset must be a mapping of keys to values")
    return validate(model, {**data, **overrides}, source)


_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)\s*$")
_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def size_value(text: Any) -> float | None:
    """``150M`` -> 1.5e8, ``1.2G``, ``3e8``, ``500k`` (decimal suffixes K, M, G, T); ``None``
    when ``text`` is not a size. Callers word their own error (command line, config field)."""
    m = _SIZE.match(str(text))
    return None if m is None else float(m.group(1)) * _SUFFIX[m.group(2).lower()]


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` so that a reader (or a kill) never sees a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
