"""The commented node.toml that ``milagro-node init`` writes.

Node layer (runtime).  ``runtime.datadir.initialise`` calls ``render_default_config``
(re-exported by ``runtime.config``) when a data directory has no config yet.  The
text is generated from ``runtime.config_schema.SCHEMA``, so every key appears with
the same default and documentation the loader uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config_schema import SCHEMA, SECTION_DOCS

__all__ = ["render_default_config"]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(type(value))


def render_default_config(data_dir: Path, values: dict[tuple[str, str], Any] | None = None) -> str:
    """The commented node.toml that ``milagro-node init`` writes into ``data_dir``.

    Active lines carry the defaults; optional keys are shown commented out.  Loading
    the result gives the same NodeConfig as no file at all (tests check this).
    ``values`` sets chosen keys, {(section, key): value}, instead of their defaults
    (``milagro-node devnet`` gives each node its own ports).
    """
    values = values or {}
    unknown = [f"{s}.{k}" for s, k in values if k not in SCHEMA.get(s, {})]
    if unknown:
        raise KeyError(f"no such config keys: {', '.join(unknown)}")
    lines = [
        "# Milagro Node configuration, written by `milagro-node init`.",
        f"# Data directory: {json.dumps(str(data_dir), ensure_ascii=False)}",
        "#",
        "# Every key below is shown with its default.  Any key can be overridden by an",
        "# environment variable MILAGRO_<SECTION>_<KEY>, e.g. MILAGRO_API_LISTEN=127.0.0.1:0",
        "# or MILAGRO_NODE_ROLES=dta,mfa (lists are comma-separated).  MILAGRO_DATA_DIR sets",
        "# the data directory; MILAGRO_HSM_PIN and MILAGRO_ADMIN_TOKEN are secrets, not",
        "# overrides.  Relative paths resolve against this file's directory, except",
        "# hsm.pin_file, which resolves against the data directory.",
    ]
    for section, keys in SCHEMA.items():
        lines += ["", f"# {SECTION_DOCS[section]}", f"[{section}]"]
        for key, spec in keys.items():
            lines += [f"# {line}" for line in spec.doc.splitlines()]
            if (section, key) in values:
                lines.append(f"{key} = {_toml_value(values[section, key])}")
            elif spec.active:
                lines.append(f"{key} = {_toml_value(spec.default)}")
            else:
                # data_dir's useful example is the directory init is writing into
                shown = str(data_dir) if key == "data_dir" else spec.example if spec.example is not None else spec.default
                lines.append(f"# {key} = {_toml_value(shown)}")
    return "\n".join(lines) + "\n"
