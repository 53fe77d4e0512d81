"""``harness explore``: seeded search of the fault space around a base scenario, shrinking of each
failure to a minimal scenario file, and what a person reads of it (docs/explore.md)."""
