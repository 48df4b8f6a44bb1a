"""Labels: the teachers ("golden models") that label a stream's samples, and loading their checkpoints."""
