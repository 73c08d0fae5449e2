"""Analysis: sharing, weight identity, effective trainability and provenance of a rebuilt graph (never reads a file)."""
