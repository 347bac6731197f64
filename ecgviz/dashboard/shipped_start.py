"""Write the shipped model's start-up file (its card, and its scores on the bundled beats), which a fresh install's
dashboard draws its first page from: `python -m ecgviz.dashboard.shipped_start`, after replacing either."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ecgviz.checkpoint.card import card_to_json
from ecgviz.checkpoint.files import SHIPPED_CHECKPOINT
from ecgviz.dashboard import disk_cache, session
from ecgviz.dashboard.disk_cache import SHIPPED_START
from ecgviz.pipeline.protocol import score_beats


def write_shipped_start(path: Path = SHIPPED_START) -> Path:
    """Write the shipped model's card and its scores on the bundled data (run after replacing either)."""
    model = session.model_from_path(SHIPPED_CHECKPOINT, source="shipped")
    data = session.builtin_data()
    scores = score_beats(model.ckpt, data.data.X)
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, checkpoint=np.array(model.sha256), data=np.array(data.fingerprint),
             card=np.frombuffer(card_to_json(model.card), dtype=np.uint8), scores=scores)
    path.write_bytes(buf.getvalue())
    disk_cache.forget_shipped_start()
    return path


if __name__ == "__main__":
    print(write_shipped_start())
