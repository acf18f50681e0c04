"""Rate limits: per-client counters (memory, or Redis shared by every instance)."""
