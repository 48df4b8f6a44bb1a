"""Results: per-stream, per-window records, MLflow tracking and the terminal summary."""
