"""The short table a run ends with: mean accuracy per camera and overall, with and without retraining."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table


def summary_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Per-camera means of window accuracy with retraining and without, plus an 'overall' row."""
    per = df.groupby("stream", sort=True)[["accuracy", "noretrain_accuracy"]].mean()
    per.loc["overall"] = df[["accuracy", "noretrain_accuracy"]].mean()
    per["gain"] = per["accuracy"] - per["noretrain_accuracy"]
    return per


def print_summary(df: pd.DataFrame, title: str, console: Console | None = None) -> pd.DataFrame:
    """Print the summary table and return it."""
    s = summary_frame(df)
    table = Table(title=title)
    for col in ("camera", "with retraining", "without retraining", "gain (points)"):
        table.add_column(col, justify="left" if col == "camera" else "right")
    for cam, row in s.iterrows():
        table.add_row(str(cam), f"{row.accuracy:.3f}", f"{row.noretrain_accuracy:.3f}", f"{100 * row.gain:+.1f}",
                      style="bold" if cam == "overall" else None)
    (console or Console()).print(table)
    return s
