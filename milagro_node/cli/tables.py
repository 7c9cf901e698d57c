"""Human-readable renderings of API results for the terminal."""

from __future__ import annotations

from typing import Any


def render_status(status: dict[str, Any]) -> str:
    memory = status.get("secret_memory", {})
    lines = [
        f"milagro-node {status['version']}  name={status['name']}  roles={','.join(status['roles'])}",
        f"pid {status['pid']}  up {status['uptime_s']:.0f}s  data {status['data_dir']}  "
        f"secret memory {memory.get('mlock', '?')}",
        "",
    ]
    rows = [("ACTOR", "STATE", "RESTARTS", "PENDING", "LAST ERROR")]
    for actor in status["actors"]:
        rows.append((actor["name"], actor["state"], str(actor["restarts"]), str(actor["pending"]),
                     actor["last_error"] or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return "\n".join(lines)
