"""The dashboard server's settings: where models are loaded from and saved to, the data folder, torch's threads.

Each can be overridden from the environment, so a deployment (or a test) can start from another model or save
elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from ecgviz.checkpoint.files import CHECKPOINT_DIR, SHIPPED_CHECKPOINT
from ecgviz.detectors import threads

CHECKPOINT_ENV = "ECGVIZ_CHECKPOINT"
CHECKPOINT_DIR_ENV = "ECGVIZ_CHECKPOINT_DIR"
TORCH_THREADS_ENV = threads.THREADS_ENV
# A folder on the server whose files any session may load by name: data too big to upload (a beat pack of a
# million beats is 560 MB) is put there once and read from disk, never through the browser.
DATA_DIR_ENV = "ECGVIZ_DATA_DIR"
DATA_SUFFIXES = (".npz", ".arff", ".tsv", ".csv", ".txt")


def default_checkpoint_path() -> Path:
    """The checkpoint the app starts with: $ECGVIZ_CHECKPOINT or the shipped one."""
    return Path(os.environ.get(CHECKPOINT_ENV) or SHIPPED_CHECKPOINT)


def checkpoint_dir() -> Path:
    """Where trained models are saved and listed: $ECGVIZ_CHECKPOINT_DIR or checkpoints/."""
    return Path(os.environ.get(CHECKPOINT_DIR_ENV) or CHECKPOINT_DIR)


def data_folder() -> Path | None:
    """The server's data folder ($ECGVIZ_DATA_DIR), or None when none is set or it is not a folder."""
    raw = os.environ.get(DATA_DIR_ENV)
    return Path(raw) if raw and Path(raw).is_dir() else None


def folder_files() -> list[str]:
    """Names of the data files directly in the server's data folder (links leading out of it are left out)."""
    folder = data_folder()
    if folder is None:
        return []
    root = folder.resolve()
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in DATA_SUFFIXES and p.is_file()
                  and p.resolve().parent == root)


def limit_torch_threads() -> int:
    """Torch threads of a dashboard server's own work: $ECGVIZ_TORCH_THREADS, else 1.

    Sessions already share the cores; torch's own threads on top of them oversubscribe the CPU and spin
    (training 3 epochs took 45 s instead of 5 s beside eight busy sessions on 2 cores). Training and scoring
    choose their own count per job (ecgviz.detectors.threads).
    """
    import torch

    n = threads.forced() or 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def available_devices() -> list[str]:
    """Devices training can use here: 'auto' first, then cpu and any accelerator torch can see."""
    import torch

    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices
