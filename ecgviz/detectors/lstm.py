"""The recurrent autoencoder: an LSTM encoder squeezes a beat into one vector, an LSTM decoder unrolls it."""

from __future__ import annotations

import torch
from torch import nn

from ecgviz.detectors.config import ModelConfig


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        e = config.embedding_dim
        # two stacked LSTMs: a wide one to read the waveform, a narrow one whose last state is the code
        self.rnn1 = nn.LSTM(config.n_features * config.chunk, 2 * e, batch_first=True)
        self.rnn2 = nn.LSTM(2 * e, e, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.rnn1(x)  # (B, T, 2E)
        _, (h, _) = self.rnn2(x)  # h: (1, B, E)
        return h[-1]  # (B, E)


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        e = config.embedding_dim
        self.rnn1 = nn.LSTM(e, e, batch_first=True)
        self.rnn2 = nn.LSTM(e, 2 * e, batch_first=True)
        self.out = nn.Linear(2 * e, config.n_features * config.chunk)

    def forward(self, z: torch.Tensor, seq_len: int) -> torch.Tensor:
        # the same code at every step: the decoder must rebuild the whole beat from it alone
        x = z.unsqueeze(1).expand(-1, seq_len, -1)  # (B, T, E)
        x, _ = self.rnn1(x)  # (B, T, E)
        x, _ = self.rnn2(x)  # (B, T, 2E)
        return self.out(x)  # (B, T, F * chunk)


class RecurrentAutoencoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, T, F) -> reconstruction (B, T, F)
        k = self.config.chunk
        if k == 1:
            return self.decoder(self.encoder(x), x.shape[1])
        b, t, f = x.shape
        pad = -t % k
        if pad:
            # repeating the last sample adds no new shape for the encoder to explain
            x = torch.cat([x, x[:, -1:].expand(-1, pad, -1)], dim=1)
        steps = x.shape[1] // k
        out = self.decoder(self.encoder(x.reshape(b, steps, k * f)), steps)  # (B, T / k, k * F)
        return out.reshape(b, steps * k, f)[:, :t]
