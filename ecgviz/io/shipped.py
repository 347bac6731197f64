"""Where the shipped model and the bundled data are: the checkout's top-level folders, or the installed copies.

In a checkout they are `checkpoints/` and `data/` beside the package. `pip install` puts copies of them inside
the package, under `ecgviz/shipped/` (the mapping is in pyproject.toml), so an installed ecgviz finds them from
any working directory.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def shipped_folder(name: str) -> Path:
    """The folder `name` ('checkpoints' or 'data'): the checkout's when there is one, else the installed copy."""
    checkout = _PACKAGE.parent / name
    installed = _PACKAGE / "shipped" / name
    return installed if not checkout.is_dir() and installed.is_dir() else checkout
