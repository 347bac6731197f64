"""ecgviz: find abnormal heartbeats with an LSTM autoencoder and pick a threshold you can defend."""

__version__ = "0.1.0"
