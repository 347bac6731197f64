"""The container's health check: ``python -m ecgviz.service.healthcheck`` exits 0 when the dashboard or the service
answers its health URL, else 1 (one line on stderr saying what did not answer).

The image runs either the dashboard (port 8501) or ``python -m ecgviz serve`` (port 8000), so both are asked;
$ECGVIZ_HEALTH_URLS (space-separated) replaces the list, e.g. for other ports.
"""

from __future__ import annotations

import os
import sys
import urllib.request

URLS_ENV = "ECGVIZ_HEALTH_URLS"
DEFAULT_URLS = ("http://127.0.0.1:8501/_stcore/health", "http://127.0.0.1:8000/health")
TIMEOUT_S = 3.0


def healthy(urls: tuple[str, ...] | list[str], timeout: float = TIMEOUT_S) -> str | None:
    """None when one of `urls` answers 200, else what each said."""
    said = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                if response.status == 200:
                    return None
                said.append(f"{url}: HTTP {response.status}")
        except OSError as exc:
            said.append(f"{url}: {getattr(exc, 'reason', exc)}")
    return "; ".join(said) or "no health URL given"


def main() -> int:
    """Exit status for HEALTHCHECK: 0 healthy, 1 not."""
    urls = os.environ.get(URLS_ENV, "").split() or list(DEFAULT_URLS)
    why = healthy(urls)
    if why is not None:
        print(f"unhealthy: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
