"""The ``mlprov`` command line: a thin layer over the public API (not a stable API)."""
