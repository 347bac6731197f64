"""Label-free analysis of one recording: R-peaks (rpeaks), timing (rhythm), shape (shape), the flags (analyze),
their comparison with reference annotations (evaluate) and the files written for them (report)."""
