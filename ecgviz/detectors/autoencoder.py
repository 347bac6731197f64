"""The recurrent autoencoder as a detector: trains on normal beats, scores by reconstruction error.

It owns what its scores depend on: the network (``model_``), the normalisation of the training beats
(``normalisation_``) and the error measure the threshold is expressed in (the parameter ``error``, see
:attr:`LSTMAutoencoder.measure`). Loaded from a checkpoint
through :meth:`LSTMAutoencoder.from_weights`; written back with :meth:`LSTMAutoencoder.checkpoint_fields`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from ecgviz.detectors.base import Detector, as_beats
from ecgviz.detectors.config import DEFAULT_ERROR, ERRORS, ModelConfig, TrainConfig
from ecgviz.errors import UserError


class TrainingCancelled(Exception):
    """Raised by a fit whose stop event was set (unless the event carries ``keep = True``)."""


class LSTMAutoencoder(Detector):
    """An LSTM encoder squeezes a beat into one vector, a decoder rebuilds it; a beat it cannot rebuild is abnormal."""

    kind = "lstm_ae"
    learned_reconstruction = True
    slow_to_score = True

    def __init__(self, model_config: ModelConfig | None = None, train_config: TrainConfig | None = None,
                 error: str | None = None, val_fraction: float = 0.08):
        if error is not None and error not in ERRORS:
            raise UserError(f"unknown error measure {error!r}: use one of {ERRORS}")
        if not 0.0 < val_fraction < 1.0:
            raise UserError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        self.model_config = model_config
        self.train_config = train_config
        self.error = error  # None: L1 training is scored by DEFAULT_ERROR, MSE training by MSE
        self.val_fraction = float(val_fraction)

    @property
    def description(self) -> str:
        """Short human name."""
        return f"LSTM autoencoder (embedding {(self.model_config or ModelConfig()).embedding_dim})"

    @property
    def short_name(self) -> str:
        """The name on a narrow tile."""
        return "LSTM AE"

    @property
    def measure(self) -> str:
        """The error measure of the scores: one of ERRORS."""
        loss = (self.train_config or TrainConfig()).loss
        return self.error or (DEFAULT_ERROR if loss == "l1" else loss)

    def fit(self, X, y=None, *, val_beats=None, on_epoch: Callable | None = None,
            stop: threading.Event | None = None, resume=None) -> LSTMAutoencoder:
        """Train on normal beats X; without `val_beats` a seeded `val_fraction` of them decides early stopping.

        `on_epoch` returning True or a set `stop` ends training early; a set `stop` discards the run
        (TrainingCancelled) unless it carries `keep = True`. `resume` (detectors.train.Resume) continues an
        earlier run. The training beats' in-sample errors become `decision_scores_`: the model barely overfits
        its normals (train and validation loss differ by ~2 % on ECG5000).
        """
        from ecgviz.detectors.train import train

        X = as_beats(X)
        config = self.train_config or TrainConfig()
        if val_beats is None:
            if len(X) < 3:
                raise UserError(f"the autoencoder needs at least 3 normal beats, got {len(X)}")
            perm = np.random.default_rng(config.seed).permutation(len(X))
            n_val = max(1, round(self.val_fraction * len(X)))
            X, val_beats = X[np.sort(perm[n_val:])], X[np.sort(perm[:n_val])]
        result = train(X, as_beats(val_beats), self.model_config, config, on_epoch=on_epoch, stop=stop,
                       resume=resume)
        if stop is not None and stop.is_set() and not getattr(stop, "keep", False):
            # whoever set the event discards the result: do not spend seconds scoring it
            raise TrainingCancelled("training was cancelled")
        self.result_ = result
        self.model_, self.normalisation_ = result.model, tuple(result.normalisation)
        self.decision_scores_ = self.decision_function(X)
        return self

    @classmethod
    def from_weights(cls, config: ModelConfig, state_dict: dict, normalisation: tuple[float, float],
                     error: str) -> LSTMAutoencoder:
        """A fitted detector from stored weights (already checked against `config`)."""
        from ecgviz.detectors.lstm import RecurrentAutoencoder

        det = cls(model_config=config, error=error)
        model = RecurrentAutoencoder(config)
        model.load_state_dict(state_dict, strict=True)
        det.model_, det.normalisation_ = model.eval(), (float(normalisation[0]), float(normalisation[1]))
        return det

    def _run(self, X, reconstructions: bool, device: str = "cpu"):
        from ecgviz.detectors.reconstruction import measure

        self.check_fitted()
        return measure(self.model_, as_beats(X), error=self.measure, normalisation=self.normalisation_,
                       device=device, reconstructions=reconstructions)

    def decision_function(self, X, device: str = "cpu") -> np.ndarray:
        """Reconstruction error (n,) in normalised units, in the measure `measure`."""
        return self._run(X, reconstructions=False, device=device)[0]

    def reconstruct(self, X, device: str = "cpu") -> np.ndarray:
        """Reconstructed beats (n, T) in the data's units."""
        return self._run(X, reconstructions=True, device=device)[1]

    def training_record(self) -> dict:
        """The training settings and how the run went (device, best epoch, why it ended, threads)."""
        r = self.result_
        return {**(self.train_config or TrainConfig()).to_dict(), "device_used": r.device,
                "best_epoch": r.best_epoch, "cancelled": r.cancelled, "elapsed_s": r.elapsed_s,
                "ended_by": r.ended_by, "epoch_cap": r.epoch_cap, "patience_used": r.patience,
                "still_improving": r.still_improving, "torch_threads": r.threads}

    def fit_history(self) -> tuple[dict, ...]:
        """Train and validation loss of every epoch."""
        return tuple(self.result_.history)

    def resume_state(self) -> dict:
        """Adam's state at the end of the run, for a later resume."""
        return {"optimizer": self.result_.optimizer_state} if self.result_.optimizer_state else {}

    def checkpoint_fields(self) -> dict:
        """Format 1, which every version reads: the weights, the model's shape, normalisation and error."""
        self.check_fitted()
        return {"format_version": 1,
                "state_dict": {k: v.detach().cpu() for k, v in self.model_.state_dict().items()},
                "model_config": self.model_.config.to_dict(),
                "normalisation": [float(self.normalisation_[0]), float(self.normalisation_[1])],
                "loss": self.measure}
