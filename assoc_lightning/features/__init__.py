"""Features of frozen encoders, computed once: resumable memory-mapped embedding caches."""
