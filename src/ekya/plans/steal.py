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
    if rule not in ("single", "sweep"):
        raise ValueError(f"unknown steal rule {rule!r}")
    u = units.copy()
    pool = int(free)
    if not jobs:
        return u, pool
    js = np.array([j[0] for j in jobs])
    jk = np.array([j[1] for j in jobs])
    J = len(jobs)
    ks = np.arange(1, cap + 1)
    pos = {j: n for n, j in enumerate(jobs)}
    other = {n: pos[(s, 1 - k)] for n, (s, k) in enumerate(jobs) if (s, 1 - k) in pos}

    def val(s: int, i: int, r: int) -> float:
        return float(values[s, i, r])

    def trim(stream: int) -> None:
        """Give back to the pool every quantum of the stream's jobs that adds no value."""
        nonlocal pool
        for kind in (1, 0):
            if (stream, kind) not in pos:
                continue
            while u[stream, kind] > 0:
                i, r = int(u[stream, 0]), int(u[stream, 1])
                ni, nr = (i - 1, r) if kind == 0 else (i, r - 1)
                if val(stream, ni, nr) >= val(stream, i, r) - 1e-15:
                    u[stream, kind] -= 1
                    pool += 1
                else:
                    break

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

    for s in sorted(set(js.tolist())):
        trim(s)
    every = np.arange(J)
    for _ in range(max_passes):
        improved = False
        vl = victim_loss(every)
        for t in range(J):
            st, kt = int(js[t]), int(jk[t])
            v = 0
            while True:
                room = cap - int(u[st, kt])
                if room <= 0:
                    break
                i, r = int(u[st, 0]), int(u[st, 1])
                jj = np.arange(room + 1)
                ti = i + jj if kt == 0 else np.full(room + 1, i)
                tr = r + jj if kt == 1 else np.full(room + 1, r)
                cur_t = values[st, i, r]
                tg = values[st, ti, tr] - cur_t  # tg[j]: thief's gain from j more quanta
                reach = min(pool, room)
                # 1) the pool alone
                if reach > 0:
                    if rule == "single":
                        j = 0
                        while j < reach and tg[j + 1] > tg[j] + IMPROVE:
                            j += 1
                    else:
                        j = int(np.argmax(tg[: reach + 1]))
                    if tg[j] > IMPROVE:
                        u[st, kt] += j
                        pool -= j
                        improved = True
                        trim(st)
                        changed = np.flatnonzero(js == st)
                        vl[changed] = victim_loss(changed)
                        continue
                if v >= J:
                    break
                # 2) one victim, topped up from the pool (sweep rule)
                if rule == "sweep" and pool > 0:
                    tgp = np.array([tg[k : min(k + pool, room) + 1].max() for k in range(1, room + 1)])
                else:
                    tgp = tg[1:]
                gains = vl[v:, :room] + tgp[None, :]
                if t >= v:
                    gains[t - v, :] = -np.inf
                o = other.get(t)
                if o is not None and o >= v:
                    # same stream: both ends of the move change one table entry together
                    kk = ks[:room]
                    si = i + kk if kt == 0 else i - kk
                    sr = r + kk if kt == 1 else r - kk
                    okm = (si >= 0) & (sr >= 0)
                    gains[o - v, :] = np.where(okm, values[st, np.maximum(si, 0), np.maximum(sr, 0)] - cur_t, -np.inf)
                if rule == "single":
                    hits = np.flatnonzero(gains[:, 0] > IMPROVE)
                    if hits.size == 0:
                        break
                    row = gains[hits[0]]
                    k = 1
                    while k < room and row[k] > row[k - 1] + IMPROVE:
                        k += 1
                else:
                    hits = np.flatnonzero(gains.max(axis=1) > IMPROVE)
                    if hits.size == 0:
                        break
                    row = gains[hits[0]]
                    k = int(np.argmax(row)) + 1
                vic = v + int(hits[0])
                sv, kv = int(js[vic]), int(jk[vic])
                extra = 0
                if rule == "sweep" and pool > 0 and sv != st:
                    extra = int(np.argmax(tg[k : min(k + pool, room) + 1]))
                u[sv, kv] -= k
                u[st, kt] += k + extra
                pool -= extra
                improved = True
                trim(st)
                trim(sv)
                changed = np.flatnonzero((js == st) | (js == sv))
                vl[changed] = victim_loss(changed)
                v = vic + 1
        if not improved:
            break
    return u, pool


def total_value(values: np.ndarray, units: np.ndarray) -> float:
    """Summed value of all streams at the given quanta."""
    s = np.arange(units.shape[0])
    return float(values[s, units[:, 0], units[:, 1]].sum())
