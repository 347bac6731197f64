"""What a running dashboard server costs: its process, resident memory, CPU time, and model cache lookups."""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path

from tests.browser_support import StreamlitServer

STARTUP_MODEL_CACHE = "pages.common.caches._load_file_model"  # the st.cache_resource that holds the start-up model


def server_pid(server: StreamlitServer) -> int | None:
    """The server's process id: its process handle, else the process listening with its port on the command line."""
    process = getattr(server, "process", None) or getattr(server, "_process", None)
    if getattr(process, "pid", None):
        return process.pid
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(args) and str(server.port).encode() in args:
            return int(entry.name)
    return None


def memory_mib(pid: int | None) -> dict:
    """{"rss": current, "hwm": peak} resident memory of a process in MiB (2^20 bytes; empty when unreadable)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, TypeError):
        try:
            import psutil

            return {"rss": psutil.Process(pid).memory_info().rss / 2**20}
        except Exception:
            return {}
    values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
    return {"rss": int(values["VmRSS"]) / 1024, "hwm": int(values["VmHWM"]) / 1024} if values else {}


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process has used so far (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def model_loads(url: str) -> dict | None:
    """Hits and misses of the start-up model's st.cache_resource, from the server's /_stcore/metrics; None if absent."""
    try:
        with urllib.request.urlopen(url + "_stcore/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    counts = {}
    for labels, value in re.findall(r"^cache_lookups_total\{([^}]*)\}\s+([0-9.]+)", text, re.M):
        if f'cache="{STARTUP_MODEL_CACHE}"' in labels:
            result = re.search(r'result="(\w+)"', labels)
            counts[result.group(1) + ("es" if result.group(1) == "miss" else "s")] = int(float(value))
    return counts if "misses" in counts else None
