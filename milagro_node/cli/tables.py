"""Human-readable renderings of API results for the terminal."""

from __future__ import annotations

from typing import Any

# Keys every actor row has; anything else is a fact the actor reported (url, hsm state...).
_ROW_KEYS = {"name", "state", "restarts", "pending", "last_error", "since"}


def render_status(status: dict[str, Any]) -> str:
    memory = status.get("secret_memory", {})
    lines = [
        f"milagro-node {status['version']}  name={status['name']}  roles={','.join(status['roles'])}",
        f"pid {status['pid']}  up {status['uptime_s']:.0f}s  data {status['data_dir']}  "
        f"secret memory {memory.get('mlock', '?')}",
        "",
    ]
    rows = [("ACTOR", "STATE", "RESTARTS", "PENDING", "DETAIL")]
    for actor in status["actors"]:
        facts = " ".join(f"{k}={v}" for k, v in actor.items() if k not in _ROW_KEYS and v is not None)
        detail = f"error: {actor['last_error']}" if actor["last_error"] and actor["state"] != "running" else facts
        rows.append((actor["name"], actor["state"], str(actor["restarts"]), str(actor["pending"]), detail or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return "\n".join(lines)
