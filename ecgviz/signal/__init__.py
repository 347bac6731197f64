"""Recordings cut into beats. The default beat length lives here, free of numpy, so the command line's help shows it
without importing anything heavy."""

DEFAULT_LENGTH = 140  # the shipped ECG5000 model's beat length
