"""A checkpoint's card: what it says about itself, without its detector, read and written without torch.

The dashboard draws its first page from a card and the scores cached beside it, and loads the detector (and torch,
a second of start-up) only when a page needs it: a reconstruction, a new data set, a download.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ecgviz import __version__
from ecgviz.errors import CheckpointError
from ecgviz.evaluation.split import Split

CARD_FORMAT = "ecgviz-card-1"  # bumped whenever a field changes meaning: an older card is then not read
MAX_CARD_BYTES = 8 << 20  # a split of 250,000 beats as JSON is ~2 MB


@dataclass(frozen=True)
class CheckpointCard:
    """The facts of a checkpoint a page shows before its detector is needed; names as on Checkpoint."""

    kind: str  # 'lstm_ae', 'knn', 'pca', ...
    description: str  # the detector in a few words
    short_name: str  # its name on a narrow tile
    loss: str  # the error measure scores and threshold are in
    split: Split
    data_fingerprint: str
    seq_len: int
    threshold: float
    threshold_rule: str
    name: str = ""
    metrics: dict = field(default_factory=dict)
    class_names: dict = field(default_factory=dict)
    data_sources: tuple[str, ...] = ()

    def check_fits(self, length: int) -> None:
        """Refuse beats of another length than the model was trained on."""
        if length != self.seq_len:
            source = f" (it was trained on {', '.join(self.data_sources)})" if self.data_sources else ""
            raise CheckpointError(
                f"model '{self.name or 'checkpoint'}' was trained on beats of {self.seq_len} samples, "
                f"but the data has {length} samples per beat{source}"
            )


def card_of(ckpt) -> CheckpointCard:
    """The card of a loaded Checkpoint."""
    det = ckpt.detector
    return CheckpointCard(kind=det.kind, description=det.description, short_name=det.short_name, loss=det.measure,
                          split=ckpt.split, data_fingerprint=ckpt.data_fingerprint, seq_len=int(ckpt.seq_len),
                          threshold=float(ckpt.threshold), threshold_rule=ckpt.threshold_rule, name=ckpt.name,
                          metrics=dict(ckpt.metrics), class_names=dict(ckpt.class_names),
                          data_sources=tuple(ckpt.data_sources))


def card_to_json(card: CheckpointCard) -> bytes:
    """The card as JSON; TypeError when a field holds something JSON cannot say (the card is then not kept)."""
    d = {"format": CARD_FORMAT, "ecgviz": __version__, "kind": card.kind, "description": card.description,
         "short_name": card.short_name, "loss": card.loss, "split": card.split.to_dict(),
         "data_fingerprint": card.data_fingerprint, "seq_len": card.seq_len, "threshold": card.threshold,
         "threshold_rule": card.threshold_rule, "name": card.name, "metrics": card.metrics,
         "class_names": card.class_names, "data_sources": list(card.data_sources)}
    return json.dumps(d, allow_nan=True).encode()


def card_from_json(raw: bytes) -> CheckpointCard:
    """Inverse of card_to_json; CheckpointError naming the field when the text is not a card."""
    if len(raw) > MAX_CARD_BYTES:
        raise CheckpointError(f"card of {len(raw):,} bytes is over the {MAX_CARD_BYTES:,}-byte limit")
    try:
        d = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"card is not JSON ({exc})") from None
    if not isinstance(d, dict) or d.get("format") != CARD_FORMAT:
        raise CheckpointError(f"card has no '{CARD_FORMAT}' marker")
    if d.get("ecgviz") != __version__:  # another version may read (and check) checkpoints differently
        raise CheckpointError(f"card was written by ecgviz {str(d.get('ecgviz'))[:20]}, not {__version__}")
    texts = ("kind", "description", "short_name", "loss", "data_fingerprint", "threshold_rule", "name")
    for key in texts:
        if not isinstance(d.get(key), str):
            raise CheckpointError(f"card field '{key}' is not text")
    if type(d.get("seq_len")) is not int or d["seq_len"] < 1:
        raise CheckpointError("card field 'seq_len' is not a positive whole number")
    if type(d.get("threshold")) not in (int, float):
        raise CheckpointError("card field 'threshold' is not a number")
    for key, kind in (("metrics", dict), ("class_names", dict), ("data_sources", list), ("split", dict)):
        if not isinstance(d.get(key), kind):
            raise CheckpointError(f"card field '{key}' is not a {kind.__name__}")
    try:
        split = Split.from_dict(d["split"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"card field 'split' is damaged ({exc})") from None
    return CheckpointCard(**{k: d[k] for k in texts}, split=split, seq_len=d["seq_len"],
                          threshold=float(d["threshold"]), metrics=d["metrics"],
                          class_names={str(k): str(v) for k, v in d["class_names"].items()},
                          data_sources=tuple(str(s) for s in d["data_sources"]))
