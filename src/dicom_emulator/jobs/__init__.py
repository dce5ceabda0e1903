"""Background work: an in-process runner over job rows, plus periodic sweeps."""
