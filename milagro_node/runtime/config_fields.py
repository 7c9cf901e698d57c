"""Reading one config value: ConfigError, TOML file reading, type conversion of TOML
and environment values, and the generic checks (choices, ranges, text, paths).

Node layer (runtime).  Nothing here knows node.toml's sections: the schema in
``runtime.config_schema`` is built from ``Key`` and the checks below,
``runtime.config`` (the node.toml loader) converts values with ``from_toml`` /
``from_env``, and ``runtime.federation`` (the peers.toml loader) uses
``read_toml``, ``reject_unknown`` and ``toml_type`` for its own hand-written checks.

A check takes the already type-converted value and returns the value to keep, or
raises ``_Invalid`` with the problem text; the loaders turn that into a
``ConfigError`` naming the file (or environment variable) and the dotted key.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "ConfigError",
    "Key",
    "check_env_name",
    "check_path",
    "checked",
    "did_you_mean",
    "from_env",
    "from_toml",
    "in_range",
    "one_of",
    "printable_text",
    "read_toml",
    "reject_unknown",
    "toml_type",
]


class ConfigError(Exception):
    """A config problem: ``file`` (path as given, or env variable), ``key`` (dotted,
    or None for whole-file problems such as bad TOML) and ``problem``."""

    def __init__(self, file: str | os.PathLike[str], key: str | None, problem: str) -> None:
        super().__init__(str(file), key, problem)
        self.file = str(file)
        self.key = key
        self.problem = problem

    def __str__(self) -> str:
        if self.key is None:
            return f"{self.file}: {self.problem}"
        return f"{self.file}: {self.key}: {self.problem}"


class _Invalid(ValueError):
    """A value's problem, before the caller knows which file and key it came from.
    Package-internal: the config and federation loaders catch it."""


# --------------------------------------------------------------------------- TOML files


def read_toml(path: Path) -> dict[str, Any]:
    """Read and parse a TOML file; every failure is a ConfigError naming ``path``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, None, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, None, "is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"invalid TOML: {exc}") from None


def toml_type(value: object) -> str:
    """TOML's name for the type of a parsed value."""
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)  # datetime, date, time


def did_you_mean(word: str, options: Iterable[str], fmt: str = '"{}"') -> str:
    """The suffix '; did you mean "x"?' for the closest of ``options``, or "" if none is close."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {fmt.format(close[0])}?" if close else ""


def reject_unknown(table: Mapping[str, Any], known: Iterable[str], file: object, prefix: str) -> None:
    """ConfigError for the first key of ``table`` not in ``known``, with a suggestion."""
    known = list(known)
    for key in table:
        if key not in known:
            dotted = f"{prefix}.{key}" if prefix else key
            raise ConfigError(file, dotted, f"unknown key{did_you_mean(key, known)} (known: {', '.join(known)})")


# --------------------------------------------------------------------------- one key


@attrs.frozen
class Key:
    """One key of a config section: its type, default, documentation and check."""

    kind: str  # str | opt_str | bool | int | float | list | path | opt_path
    default: Any  # as it would be written in TOML; None = unset
    doc: str
    check: Callable[[Any], Any] | None = None
    env: bool = True  # may be set by MILAGRO_<SECTION>_<KEY>
    active: bool = True  # written uncommented by render_default_config
    example: Any = None  # shown for keys rendered commented out
    secret: bool = False  # never echo the value in an error


_EXPECTED = {
    "str": "a string", "opt_str": "a string", "path": "a path string", "opt_path": "a path string",
    "bool": "a boolean", "int": "an integer", "float": "a number", "list": "an array of strings",
}


def from_toml(spec: Key, value: Any) -> Any:
    """Type-convert a TOML value for ``spec``; raise _Invalid naming expected/found."""

    def wrong(found: Any) -> _Invalid:
        shown = json.dumps(found) if isinstance(found, str) else repr(found)
        shown = "" if spec.secret else f" {shown}"
        return _Invalid(f"expected {_EXPECTED[spec.kind]}, found {toml_type(found)}{shown}")

    kind = spec.kind
    if kind in ("str", "path", "opt_str", "opt_path"):
        if not isinstance(value, str):
            raise wrong(value)
        # TOML has no null, so "" is how a file unsets an optional key
        return None if kind.startswith("opt_") and value == "" else value
    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong(value)
        return value
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):  # bool is an int subclass
            raise wrong(value)
        return value
    if kind == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise wrong(value)
        if not math.isfinite(value):
            raise _Invalid(f"expected a finite number, found {value!r}")
        return float(value)
    if kind == "list":
        if not isinstance(value, list):
            raise wrong(value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise _Invalid(f"expected an array of strings, found {toml_type(item)} {item!r} at index {index}")
        return tuple(value)
    raise AssertionError(kind)


def from_env(spec: Key, text: str) -> Any:
    """Parse an environment override's text for ``spec``."""
    kind = spec.kind
    if kind in ("str", "path"):
        return text
    if kind in ("opt_str", "opt_path"):
        return text or None
    if kind == "bool":
        word = text.strip().lower()
        if word in ("true", "1", "yes", "on"):
            return True
        if word in ("false", "0", "no", "off"):
            return False
        raise _Invalid(f"expected a boolean (true/false), got {json.dumps(text)}")
    if kind == "int":
        if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):
            raise _Invalid(f"expected an integer, got {json.dumps(text)}")
        return int(text)
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            raise _Invalid(f"expected a number, got {json.dumps(text)}") from None
        if not math.isfinite(number):
            raise _Invalid(f"expected a finite number, got {json.dumps(text)}")
        return number
    if kind == "list":  # comma-separated; multiaddrs and roles contain no commas
        return tuple(item.strip() for item in text.split(",") if item.strip())
    raise AssertionError(kind)


def checked(spec: Key, value: Any) -> Any:
    """Run ``spec``'s check on a converted value; unset (None) is never checked."""
    if spec.check is None or value is None:
        return value
    return spec.check(value)


# --------------------------------------------------------------------------- generic checks


def one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            hint = did_you_mean(value, choices)
            raise _Invalid(f"{json.dumps(value)} is not one of {', '.join(choices)}{hint}")
        return value

    return check


def in_range(low: float, high: float, *, above: bool = False) -> Callable[[Any], Any]:
    """low <= value <= high (low < value when ``above``)."""

    def check(value: Any) -> Any:
        if value < low or (above and value == low) or value > high:
            bound = "above" if above else "at least"
            raise _Invalid(f"{value!r} is out of range: must be {bound} {low!r} and at most {high!r}")
        return value

    return check


def printable_text(max_len: int) -> Callable[[str], str]:
    """Non-blank, at most ``max_len`` UTF-8 bytes, no control characters (names and
    labels end up in log lines and PKCS#11 fields)."""

    def check(value: str) -> str:
        if not value.strip():
            raise _Invalid("must not be empty")
        if len(value.encode()) > max_len:
            raise _Invalid(f"longer than {max_len} bytes")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise _Invalid("contains control characters")
        return value

    return check


def check_path(value: str) -> str:
    if not value.strip():
        raise _Invalid("must not be empty")
    if "\0" in value:
        raise _Invalid("contains a NUL character")
    return value


def check_env_name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise _Invalid(f"{json.dumps(value)} is not an environment variable name")
    return value
