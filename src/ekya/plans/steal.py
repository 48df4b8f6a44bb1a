"""The resource-stealing loop of the paper's Algorithm 1, over per-stream value tables.

Jobs are (stream, kind) pairs, kind 0 = inference, 1 = training, each holding an integer number of
quanta (<= U, one accelerator). For every thief job and every victim job in order, quanta move
from the victim to the thief while that raises the summed value; passes repeat until a whole pass
improves nothing. Two step rules:

* ``"single"``: the paper's rule: move one quantum at a time and stop at the first move that does
  not improve.
* ``"sweep"``: the original code's rule: try every amount 1..max for the pair and keep the best
  amount if it improves; it may top the amount up from the pool of unowned quanta. It escapes
  the plateaus of the single-step rule (a training job is worth nothing until it gets enough
  share to finish in the window).

Because values decompose per stream, a move changes two table entries; gains for all victims of
a thief are computed at once with numpy.
"""

from __future__ import annotations

import numpy as np

IMPROVE = 1e-12  # a move must raise the summed value by more than this (no cycling on ties)
RULES = ("single", "sweep")


class _StealState:
    """One stealing run: the quanta every job holds, the pool, and what each victim would lose.

    Job n is ``jobs[n]``; ``job_stream[n]`` and ``job_kind[n]`` are its stream and kind, ``index`` maps
    (stream, kind) back to n.
    ``losses[n, k - 1]`` is the value change of job n's stream if n gave up k quanta (-inf if it
    cannot); it is computed at the start of a pass and refreshed for the streams a move changes.
    """

    def __init__(self, values: np.ndarray, units: np.ndarray, jobs: list[tuple[int, int]], cap: int, rule: str,
                 free: int) -> None:
        self.values, self.cap, self.rule = values, cap, rule
        self.units = units.copy()
        self.pool = int(free)
        self.job_stream = np.array([j[0] for j in jobs])
        self.job_kind = np.array([j[1] for j in jobs])
        self.n_jobs = len(jobs)
        self.amounts = np.arange(1, cap + 1)
        self.index = {(int(s), int(k)): n for n, (s, k) in enumerate(jobs)}
        # a stream's other job: a move between the two changes one table entry, not two
        self.partner = {n: self.index[(s, 1 - k)] for n, (s, k) in enumerate(jobs) if (s, 1 - k) in self.index}
        self.losses = np.empty((0, cap))

    def run(self, max_passes: int) -> None:
        """Passes over every job as a thief until a whole pass improves nothing (or max_passes)."""
        for stream in sorted(set(self.job_stream.tolist())):
            self.trim(stream)
        every = np.arange(self.n_jobs)
        for _ in range(max_passes):
            self.losses = self.victim_loss(every)
            improved = False
            for thief in range(self.n_jobs):
                improved = self.rob(thief) or improved
            if not improved:
                break

    def trim(self, stream: int) -> None:
        """Give back to the pool every quantum of the stream's jobs that adds no value."""
        for kind in (1, 0):
            if (stream, kind) not in self.index:
                continue
            while self.units[stream, kind] > 0:
                i, r = int(self.units[stream, 0]), int(self.units[stream, 1])
                fewer_i, fewer_r = (i - 1, r) if kind == 0 else (i, r - 1)
                if float(self.values[stream, fewer_i, fewer_r]) >= float(self.values[stream, i, r]) - 1e-15:
                    self.units[stream, kind] -= 1
                    self.pool += 1
                else:
                    break

    def victim_loss(self, rows: np.ndarray) -> np.ndarray:
        """loss[n, k - 1] = value change of job rows[n]'s stream when it gives up k quanta (-inf if it cannot)."""
        stream, kind = self.job_stream[rows], self.job_kind[rows]
        i = self.units[stream, 0][:, None]
        r = self.units[stream, 1][:, None]
        left_i = np.where(kind[:, None] == 0, i - self.amounts[None, :], i)
        left_r = np.where(kind[:, None] == 1, r - self.amounts[None, :], r)
        possible = (left_i >= 0) & (left_r >= 0)
        after = self.values[stream[:, None], np.maximum(left_i, 0), np.maximum(left_r, 0)]
        now = self.values[stream, self.units[stream, 0], self.units[stream, 1]][:, None]
        return np.where(possible, after - now, -np.inf)

    def rob(self, thief: int) -> bool:
        """Let one job take quanta, from the pool or from the victims after the last one robbed, while it pays."""
        improved = False
        first_victim = 0
        while True:
            room = self.cap - int(self.units[self.job_stream[thief], self.job_kind[thief]])
            if room <= 0:
                break
            gain = self.thief_gain(thief, room)
            if self.take_from_pool(thief, gain, room):
                improved = True
                continue
            if first_victim >= self.n_jobs:
                break
            victim = self.take_from_victim(thief, gain, room, first_victim)
            if victim is None:
                break
            improved = True
            first_victim = victim + 1
        return improved

    def thief_gain(self, thief: int, room: int) -> np.ndarray:
        """gain[j] = value change of the thief's stream from j more quanta, j = 0..room."""
        stream, kind = int(self.job_stream[thief]), int(self.job_kind[thief])
        i, r = int(self.units[stream, 0]), int(self.units[stream, 1])
        more = np.arange(room + 1)
        with_i = i + more if kind == 0 else np.full(room + 1, i)
        with_r = r + more if kind == 1 else np.full(room + 1, r)
        return self.values[stream, with_i, with_r] - self.values[stream, i, r]

    def take_from_pool(self, thief: int, gain: np.ndarray, room: int) -> bool:
        """Move quanta from the pool alone to the thief if that improves; return whether it did."""
        reach = min(self.pool, room)
        if reach <= 0:
            return False
        if self.rule == "single":
            amount = 0
            while amount < reach and gain[amount + 1] > gain[amount] + IMPROVE:
                amount += 1
        else:
            amount = int(np.argmax(gain[: reach + 1]))
        if not gain[amount] > IMPROVE:
            return False
        stream, kind = int(self.job_stream[thief]), int(self.job_kind[thief])
        self.units[stream, kind] += amount
        self.pool -= amount
        self.trim(stream)
        self._refresh_losses(stream)
        return True

    def take_from_victim(self, thief: int, gain: np.ndarray, room: int, first_victim: int) -> int | None:
        """Move quanta from the first victim (jobs first_victim..) whose move improves; return it, or None.

        Under the sweep rule the thief may top the amount up from the pool.
        """
        stream, kind = int(self.job_stream[thief]), int(self.job_kind[thief])
        gains = self.losses[first_victim:, :room] + self._gain_topped_up(gain, room)[None, :]
        if thief >= first_victim:
            gains[thief - first_victim, :] = -np.inf
        partner = self.partner.get(thief)
        if partner is not None and partner >= first_victim:
            gains[partner - first_victim, :] = self._gain_from_partner(stream, kind, room)
        picked = self._pick(gains, room)
        if picked is None:
            return None
        victim, amount = first_victim + picked[0], picked[1]
        victim_stream, victim_kind = int(self.job_stream[victim]), int(self.job_kind[victim])
        extra = 0
        if self.rule == "sweep" and self.pool > 0 and victim_stream != stream:
            extra = int(np.argmax(gain[amount : min(amount + self.pool, room) + 1]))
        self.units[victim_stream, victim_kind] -= amount
        self.units[stream, kind] += amount + extra
        self.pool -= extra
        self.trim(stream)
        self.trim(victim_stream)
        self._refresh_losses(stream, victim_stream)
        return victim

    def _gain_topped_up(self, gain: np.ndarray, room: int) -> np.ndarray:
        """Per amount k = 1..room taken from a victim: the thief's gain, with the best top-up from the pool (sweep)."""
        if self.rule == "sweep" and self.pool > 0:
            return np.array([gain[k : min(k + self.pool, room) + 1].max() for k in range(1, room + 1)])
        return gain[1:]

    def _gain_from_partner(self, stream: int, kind: int, room: int) -> np.ndarray:
        """Value change when the thief takes k = 1..room quanta from its own stream's other job."""
        i, r = int(self.units[stream, 0]), int(self.units[stream, 1])
        amounts = self.amounts[:room]
        moved_i = i + amounts if kind == 0 else i - amounts
        moved_r = r + amounts if kind == 1 else r - amounts
        possible = (moved_i >= 0) & (moved_r >= 0)
        after = self.values[stream, np.maximum(moved_i, 0), np.maximum(moved_r, 0)]
        return np.where(possible, after - self.values[stream, i, r], -np.inf)

    def _pick(self, gains: np.ndarray, room: int) -> tuple[int, int] | None:
        """(victim row, amount) of the first victim whose best move improves, by the step rule; None if none."""
        if self.rule == "single":
            hits = np.flatnonzero(gains[:, 0] > IMPROVE)
            if hits.size == 0:
                return None
            row = gains[hits[0]]
            amount = 1
            while amount < room and row[amount] > row[amount - 1] + IMPROVE:
                amount += 1
        else:
            hits = np.flatnonzero(gains.max(axis=1) > IMPROVE)
            if hits.size == 0:
                return None
            amount = int(np.argmax(gains[hits[0]])) + 1
        return int(hits[0]), amount

    def _refresh_losses(self, *streams: int) -> None:
        """Recompute the victim losses of every job of these streams (a move changed their quanta)."""
        changed = np.flatnonzero(np.isin(self.job_stream, streams))
        self.losses[changed] = self.victim_loss(changed)


def steal(
    values: np.ndarray,
    units: np.ndarray,
    jobs: list[tuple[int, int]],
    cap: int,
    rule: str = "sweep",
    max_passes: int = 100,
    free: int = 0,
) -> tuple[np.ndarray, int]:
    """Run the stealing loop on a copy of ``units[s, kind]``; return (units, quanta left in the pool).

    The pool holds quanta nobody owns: ``free`` at the start, plus every quantum a job holds
    without gaining anything from it (a training job too small to finish, inference above
    saturation), which is reclaimed at no loss. A thief may take from the pool alone, or from the
    pool together with one victim; that lets a training job grow past a worthless plateau.
    """
    if rule not in RULES:
        raise ValueError(f"unknown steal rule {rule!r}; use one of {list(RULES)}")
    if not jobs:
        return units.copy(), int(free)
    state = _StealState(values, units, jobs, cap, rule, free)
    state.run(max_passes)
    return state.units, state.pool


def total_value(values: np.ndarray, units: np.ndarray) -> float:
    """Summed value of all streams at the given quanta."""
    s = np.arange(units.shape[0])
    return float(values[s, units[:, 0], units[:, 1]].sum())
