"""The resource-stealing loop of the paper's Algorithm 1, over per-stream value tables.

Jobs are (stream, kind) pairs, kind 0 = inference, 1 = training, each holding an integer number of
quanta (<= U, one accelerator). For every thief job and every victim job in order, quanta move
from the victim to the thief while that raises the summed value; passes repeat until a whole pass
improves nothing. Two step rules:

* ``"single"``: the paper's rule: move one quantum at a time and stop at the first move that does
  not improve.
* ``"sweep"``: the original code's rule: try every amount 1..max for the pair and keep the best
  amount if it improves. It escapes the plateaus of the single-step rule (a training job is worth
  nothing until it gets enough share to finish in the window).

Because values decompose per stream, a move changes two table entries; gains for all victims of
a thief are computed at once with numpy.
"""

from __future__ import annotations

import numpy as np

IMPROVE = 1e-12  # a move must raise the summed value by more than this (no cycling on ties)


def steal(
    values: np.ndarray,
    units: np.ndarray,
    jobs: list[tuple[int, int]],
    cap: int,
    rule: str = "sweep",
    max_passes: int = 100,
) -> np.ndarray:
    """Run the stealing loop; ``units[s, kind]`` is updated in a copy that is returned."""
    if rule not in ("single", "sweep"):
        raise ValueError(f"unknown steal rule {rule!r}")
    u = units.copy()
    if len(jobs) < 2:
        return u
    js = np.array([j[0] for j in jobs])
    jk = np.array([j[1] for j in jobs])
    J = len(jobs)
    ks = np.arange(1, cap + 1)
    other = {}  # job index -> index of the other job of the same stream, if it is in the job list
    pos = {j: n for n, j in enumerate(jobs)}
    for n, (s, k) in enumerate(jobs):
        if (s, 1 - k) in pos:
            other[n] = pos[(s, 1 - k)]

    def victim_loss(rows: np.ndarray) -> np.ndarray:
        """loss[j, k-1] = value change of job j's stream when j gives up k quanta (-inf if it cannot)."""
        s, kind = js[rows], jk[rows]
        i = u[s, 0][:, None]
        r = u[s, 1][:, None]
        ni = np.where(kind[:, None] == 0, i - ks[None, :], i)
        nr = np.where(kind[:, None] == 1, r - ks[None, :], r)
        ok = (ni >= 0) & (nr >= 0)
        new = values[s[:, None], np.maximum(ni, 0), np.maximum(nr, 0)]
        cur = values[s, u[s, 0], u[s, 1]][:, None]
        return np.where(ok, new - cur, -np.inf)

    every = np.arange(J)

    for _ in range(max_passes):
        improved = False
        vl = victim_loss(every)
        for t in range(J):
            st, kt = int(js[t]), int(jk[t])
            v = 0
            while v < J:
                room = cap - int(u[st, kt])
                if room <= 0:
                    break
                i, r = int(u[st, 0]), int(u[st, 1])
                kk = ks[:room]
                ti = i + kk if kt == 0 else np.full(room, i)
                tr = r + kk if kt == 1 else np.full(room, r)
                cur_t = values[st, i, r]
                tg = values[st, ti, tr] - cur_t
                gains = vl[v:, :room] + tg[None, :]
                if t >= v:
                    gains[t - v, :] = -np.inf
                o = other.get(t)
                if o is not None and o >= v:
                    # same stream: both ends of the move change one table entry together
                    si = i + kk if kt == 0 else i - kk
                    sr = r + kk if kt == 1 else r - kk
                    okm = (si >= 0) & (sr >= 0)
                    gains[o - v, :] = np.where(okm, values[st, np.maximum(si, 0), np.maximum(sr, 0)] - cur_t, -np.inf)
                if rule == "single":
                    first = gains[:, 0]
                    hits = np.flatnonzero(first > IMPROVE)
                    if hits.size == 0:
                        break
                    row = gains[hits[0]]
                    k = 1
                    while k < room and row[k] > row[k - 1] + IMPROVE:
                        k += 1
                else:
                    best = gains.max(axis=1)
                    hits = np.flatnonzero(best > IMPROVE)
                    if hits.size == 0:
                        break
                    row = gains[hits[0]]
                    k = int(np.argmax(row)) + 1
                vic = v + int(hits[0])
                sv, kv = int(js[vic]), int(jk[vic])
                u[sv, kv] -= k
                u[st, kt] += k
                improved = True
                changed = np.flatnonzero((js == st) | (js == sv))
                vl[changed] = victim_loss(changed)
                v = vic + 1
        if not improved:
            break
    return u


def total_value(values: np.ndarray, units: np.ndarray) -> float:
    """Summed value of all streams at the given quanta."""
    s = np.arange(units.shape[0])
    return float(values[s, units[:, 0], units[:, 1]].sum())
