"""mlprov internals: no stability promise; import from the public modules instead."""
