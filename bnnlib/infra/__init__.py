"""Plumbing every layer may use: the cache, executors, interrupts, publishing, exported files, provenance, tracking."""
