"""Bounds on what a checkpoint may ask for, and the memory a model of a given shape needs to run.

A checkpoint is data from anyone: its configuration decides how much memory building and running the model
takes, so every field is bounded and the memory is estimated from shapes alone before anything is allocated.
"""

from __future__ import annotations

import math

import torch

from ecgviz.detectors.config import ModelConfig
from ecgviz.detectors.lstm import RecurrentAutoencoder
from ecgviz.errors import UserError

MIB = 2**20
MAX_EMBEDDING = 4096  # the shipped model uses 32; the memory limit below is the real bound
MAX_CHUNK = 1024  # samples per LSTM step; more than a beat's length only pads
MAX_SEQ_LEN = 100_000  # samples per beat: minutes of ECG, far beyond any heartbeat
MAX_MODEL_BYTES = 512 * MIB  # weights twice (built model + loaded state) plus one beat's activations
SCORE_BUDGET_BYTES = 256 * MIB  # activations of one scoring batch


def weight_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every weight's shape for `config`, computed on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in RecurrentAutoencoder(config).state_dict().items()}


def activation_bytes(config: ModelConfig, seq_len: int) -> int:
    """Bytes one beat of `seq_len` samples takes in a forward pass (float32; an upper estimate).

    Each LSTM layer of width H keeps its gate inputs (4H) and outputs (H) for every step; the padded beat is
    copied a few times on its way in and out.
    """
    steps = math.ceil(seq_len / config.chunk)
    padded = steps * config.chunk * config.n_features
    e = config.embedding_dim
    lstm_widths = (2 * e, e, e, 2 * e)  # encoder rnn1, rnn2, decoder rnn1, rnn2
    return 4 * (4 * padded + steps * sum(5 * h for h in lstm_widths) + steps * config.chunk * config.n_features)


def model_bytes(config: ModelConfig, seq_len: int) -> int:
    """Bytes to build a model, load its weights and run one beat through it."""
    params = sum(math.prod(s) for s in weight_shapes(config).values())
    return 2 * 4 * params + activation_bytes(config, seq_len)


def scoring_batch(config: ModelConfig, seq_len: int, requested: int) -> int:
    """Beats per forward pass: `requested`, fewer when their activations would pass SCORE_BUDGET_BYTES."""
    return max(1, min(int(requested), SCORE_BUDGET_BYTES // max(1, activation_bytes(config, seq_len))))


def check_bounds(config: ModelConfig, seq_len: int) -> None:
    """Raise ValueError when a configuration field or the beat length is out of bounds."""
    bounds = (("embedding_dim", config.embedding_dim, 1, MAX_EMBEDDING), ("n_features", config.n_features, 1, 1),
              ("chunk", config.chunk, 1, MAX_CHUNK), ("seq_len", seq_len, 3, MAX_SEQ_LEN))
    for name, value, lo, hi in bounds:
        if not (lo <= value <= hi):
            what = "must be 1 (beats are single-lead)" if name == "n_features" else f"must be in [{lo}, {hi:,}]"
            raise UserError(f"{name} {value:,} {what}")


def check_memory(config: ModelConfig, seq_len: int) -> None:
    """Raise ValueError when building and running the model would take more than MAX_MODEL_BYTES."""
    need = model_bytes(config, seq_len)
    if need > MAX_MODEL_BYTES:
        raise UserError(f"the model would need about {need / MIB:,.0f} MiB (embedding {config.embedding_dim}, "
                         f"chunk {config.chunk}, {seq_len:,} samples per beat); at most "
                         f"{MAX_MODEL_BYTES // MIB} MiB is allowed")
