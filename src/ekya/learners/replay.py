"""The replay buffer of one camera's model: a bounded, seeded sample of the rows it has trained on.

The buffer is a small table of sample rows (what ``CropCache.images`` needs plus the teacher
label and the sample's time), so it costs no image memory and travels with the model through
deep copies, checkpoints and resumes. After each retraining job it takes in the rows of the pool
that job trained on; rows no later than the newest row it was offered before (the history part of
a pool) are not offered again, so every sample of the stream is offered once, in stream order.

- ``reservoir``: Algorithm R over every sample offered, a uniform sample of the stream so far.
- ``class_balanced``: ``memory`` split evenly over every class seen so far (remainder to the lowest
  class ids), one reservoir each, so a class that vanished from the stream keeps its share.

Pure: an update returns a new buffer and draws only on the generator its seed makes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Buffer kinds ``learner.replay.buffer`` accepts ("none" turns replay off).
BUFFERS = ("none", "reservoir", "class_balanced")
#: What a stored row keeps: the crop's address, the training target and the sample's place in time.
ROW_COLUMNS = ("camera", "idx", "timestamp", "path", "x0", "y0", "x1", "y1", "teacher_label")


@dataclass
class ReplayBuffer:
    """Stored rows (at most ``memory``), samples offered per reservoir so far, and the newest time offered."""

    kind: str
    memory: int
    rows: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({c: [] for c in ROW_COLUMNS}))
    #: samples offered so far per reservoir: key -1 for the one reservoir, else the class id
    seen: dict[int, int] = field(default_factory=dict)
    horizon: float = float("-inf")

    def __len__(self) -> int:
        return len(self.rows)


def _reservoir(slots: list[int], seen: int, capacity: int, new: list[int],
               rng: np.random.Generator) -> tuple[list[int], int]:
    """Algorithm R: offer ``new`` (in order) to a reservoir of ``capacity``; (slots, samples offered so far)."""
    slots = list(slots)
    for item in new:
        if seen < capacity:
            slots.append(item)
        else:
            r = int(rng.integers(0, seen + 1))
            if r < capacity:
                slots[r] = item
        seen += 1
    return slots, seen


def _capacities(classes: list[int], memory: int) -> dict[int, int]:
    """``memory`` split evenly over ``classes`` (sorted), the remainder to the first ones."""
    q, r = divmod(memory, len(classes)) if classes else (0, 0)
    return {c: q + (1 if i < r else 0) for i, c in enumerate(sorted(classes))}


def update_buffer(buffer: ReplayBuffer, pool: pd.DataFrame, seed: int) -> ReplayBuffer:
    """The buffer after offering it the pool's labelled rows newer than its horizon, in stream order."""
    pool = pool[pool["teacher_label"].to_numpy() >= 0]
    fresh = pool[pool["timestamp"].to_numpy() > buffer.horizon].sort_values(["timestamp", "idx"], kind="stable")
    if fresh.empty:
        return buffer
    rng = np.random.default_rng(int(seed))
    # Candidates: the stored rows first (positions 0..n-1), then the fresh ones.
    stored = len(buffer.rows)
    parts = [buffer.rows, fresh[list(ROW_COLUMNS)]] if stored else [fresh[list(ROW_COLUMNS)]]
    table = pd.concat(parts, ignore_index=True)
    fresh_ids = list(range(stored, len(table)))
    seen = dict(buffer.seen)
    if buffer.kind == "reservoir":
        keep, seen[-1] = _reservoir(list(range(stored)), seen.get(-1, 0), buffer.memory, fresh_ids, rng)
    else:
        labels = table["teacher_label"].to_numpy()
        classes = sorted(set(seen) | {int(c) for c in labels[stored:]})
        caps = _capacities(classes, buffer.memory)
        keep = []
        for c in classes:
            slots = [i for i in range(stored) if labels[i] == c]
            if len(slots) > caps[c]:
                # A new class took a share: a uniform subset of a uniform sample stays uniform.
                slots = sorted(rng.choice(slots, size=caps[c], replace=False).tolist())
            new = [i for i in fresh_ids if labels[i] == c]
            slots, seen[c] = _reservoir(slots, seen.get(c, 0), caps[c], new, rng)
            keep += slots
    rows = table.iloc[keep].reset_index(drop=True)
    return ReplayBuffer(buffer.kind, buffer.memory, rows, seen, float(fresh["timestamp"].max()))


def buffer_state(buffer: ReplayBuffer) -> dict[str, Any]:
    """The buffer as plain Python values (loadable with ``torch.load(weights_only=True)``)."""
    return {"kind": buffer.kind, "memory": int(buffer.memory), "horizon": float(buffer.horizon),
            "seen": [[int(k), int(v)] for k, v in sorted(buffer.seen.items())],
            "rows": {c: buffer.rows[c].tolist() for c in ROW_COLUMNS}}


def buffer_from_state(state: dict[str, Any]) -> ReplayBuffer:
    """The buffer a ``buffer_state`` dict describes."""
    rows = pd.DataFrame({c: state["rows"][c] for c in ROW_COLUMNS})
    return ReplayBuffer(str(state["kind"]), int(state["memory"]), rows,
                        {int(k): int(v) for k, v in state["seen"]}, float(state["horizon"]))
