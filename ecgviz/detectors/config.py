"""What a detector is asked to be: model shape, training settings, error measures and the threshold rule.

Plain dataclasses and constants with no torch import, so the command line can show its defaults (and refuse a
bad argument) in a fraction of the time torch takes to import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ecgviz.errors import UserError

# The stored threshold needs no anomaly labels: it passes this share of the training normals, so it sets a
# target false-alarm rate. Training normals (2,481 on ECG5000) give a far steadier percentile than the 219
# validation normals, and the model barely overfits them (train and validation losses differ by ~2 %).
DEFAULT_PERCENTILE = 98.0

ERRORS = ("l1", "l1_trim", "mse")
ERROR_NAMES = {"l1": "L1", "l1_trim": "L1 without the largest 2 % of residuals", "mse": "MSE"}
TRIM_FRACTION = 0.02
# The error a stored threshold is expressed in for a model trained with the L1 loss; one trained with MSE is
# scored by MSE.
DEFAULT_ERROR = "l1_trim"


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the autoencoder; the sequence length is free, so one model fits any T."""

    embedding_dim: int = 32  # size of the bottleneck; with chunk 10, AUROC > 0.99 on ECG5000 over six seeds
    n_features: int = 1  # values per time step (single-lead ECG)
    # samples read and written per LSTM step: 10 cuts the sequential steps, the cost of a beat, ten-fold
    # (140 -> 14 steps: ~50k beats/s on 2 CPU cores); 1 is the classic sample-per-step shape
    chunk: int = 10

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or self.n_features < 1 or self.chunk < 1:
            raise UserError(f"embedding_dim, n_features and chunk must be positive, got {self}")

    def to_dict(self) -> dict:
        """JSON-safe form for checkpoints."""
        return asdict(self)


LOSSES = ("l1", "mse")
PRECISIONS = ("fp32", "bf16")
# The automatic epoch cap gives every data set the optimizer steps the defaults were tuned with: 40 epochs of
# ECG5000's 2,481 training normals at batch 32 (78 steps each). A set of 100 normals then gets ~780 epochs,
# where a fixed 40 left it with 160 steps and undertrained; ECG5000 itself keeps exactly its 40.
AUTO_STEPS = 3120
AUTO_MIN_EPOCHS, AUTO_MAX_EPOCHS = 40, 2000
# A run cut off by its cap or time budget counts as still improving when its best validation loss fell by more
# than this share over the last quarter of its epochs (the shipped ECG5000 run: 3.6 %, then flat)
STILL_FALLING = 0.05
RESUME_LR_FACTOR = 0.5  # a new cosine cycle for a resumed run starts at half the previous cycle's learning rate
# why a run ended
BY_PATIENCE, BY_CAP, BY_TIME, BY_USER = "patience", "epoch cap", "time budget", "user"


@dataclass(frozen=True)
class TrainConfig:
    """How to train; every field has a default that reaches AUROC > 0.99 on ECG5000 on a laptop CPU."""

    epochs: int | None = None  # the cap; None: scaled to the data (AUTO_STEPS optimizer steps, 40..2000 epochs)
    batch_size: int = 32  # small enough for many updates per epoch, large enough to use the CPU's vector units
    lr: float = 3e-3  # Adam; higher than the classic 1e-3 because batches average the gradient
    patience: int | None = None  # epochs without a better validation loss before stopping; None: cap / 10, >= 10
    min_delta: float = 0.0  # an improvement must beat the best loss by this much to count
    # ... and by this share of it to reset the patience: the last drops of a cosine schedule do not hold a run open
    rel_delta: float = 1e-3
    lr_schedule: str = "cosine"  # anneal to zero by the last epoch: settles the noisy late epochs; or "constant"
    grad_clip: float = 1.0  # LSTMs occasionally spike; clipping keeps one bad batch from undoing an epoch
    loss: str = "l1"  # "l1": absolute error summed over the beat (the classic recipe); "mse": mean squared error
    seed: int = 0
    device: str = "auto"  # "auto" tries cuda, then mps, then cpu
    precision: str = "fp32"  # "bf16": autocast on a CUDA GPU (ignored elsewhere); weights and Adam stay fp32
    max_seconds: float | None = None  # time budget: the run ends after the epoch that passes it

    def to_dict(self) -> dict:
        """JSON-safe form for checkpoints."""
        return asdict(self)

    def plan(self, n_train: int) -> tuple[int, int]:
        """(epoch cap, patience) for `n_train` training beats: the given values, or ones scaled to the data."""
        steps_per_epoch = max(-(-int(n_train) // max(int(self.batch_size), 1)), 1)
        cap = self.epochs if self.epochs is not None else min(
            max(-(-AUTO_STEPS // steps_per_epoch), AUTO_MIN_EPOCHS), AUTO_MAX_EPOCHS)
        patience = self.patience if self.patience is not None else max(10, cap // 10)
        if cap < 1 or patience < 1:
            raise UserError("epochs and patience must be at least 1")
        return int(cap), int(patience)


