"""What the pages share: state (session state, caches, errors, sidebar) and threshold_chart (the slider's figure)."""
