"""Drawing the synthetic cameras' frames: a fixed scene per camera, one object per frame, and drift.

Each camera watches a fixed scene (its own sky, buildings, road) where objects of the 6 classes
(person, car, truck, bus, bicycle, motorcycle) pass by, one per frame. Objects vary in shape,
size, aspect, pose (facing left or right), position and colour. Over the stream's time each camera
drifts by its own amount (``CameraDrift.strength``; the paper measured a 22 % accuracy drop from
drift on real video, section 2.3):

- illumination: day -> dusk/night (darker, bluer) along a per-camera day curve;
- weather: a fog episode (contrast loss) and a rain episode (streaks, sensor noise, blur);
- appearance: the object colour palette rotates in hue;
- class mix: the class frequencies move from one random mix to another.

With ``recur`` (``recurring_position``) the drift position runs there and back, so the scenes of
the stream's start return at its end.

Everything is drawn from the generator it is given, so the same generator state gives the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ekya.streams.classes import SIX_CLASSES


@dataclass(frozen=True)
class CameraDrift:
    """One camera's scene and drift parameters (written to meta.json, so tests can pick a drifting camera)."""

    camera: str
    strength: float
    night_cycles: float
    fog_center: float
    fog_width: float
    rain_center: float
    rain_width: float
    hue_shift: float
    mix_start: tuple[float, ...]
    mix_end: tuple[float, ...]


# ---------------------------------------------------------------------------------------------
# Drift as smooth functions of u = t / stream duration, so adjacent windows look alike (retraining
# on recent data helps) while far-apart windows differ (a stale model decays).


def recurring_position(u: np.ndarray) -> np.ndarray:
    """Stream positions folded to run 0 -> 1 -> 0: the scene drifts away, then every condition comes back."""
    return 1.0 - np.abs(2.0 * np.asarray(u, dtype=float) - 1.0)


def _bump(u: np.ndarray, center: float, width: float) -> np.ndarray:
    return np.exp(-(((u - center) / width) ** 2))


def _conditions(d: CameraDrift, u: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample drift amounts in [0, 1] at stream positions u."""
    s = d.strength
    # sin^2 starts at 0 (day) and reaches night at u = 1 / night_cycles.
    night = s * 0.75 * np.sin(0.5 * np.pi * np.minimum(u * d.night_cycles, 2.0)) ** 2
    fog = s * 0.45 * _bump(u, d.fog_center, d.fog_width)
    rain = s * _bump(u, d.rain_center, d.rain_width)
    return {"night": night, "fog": fog, "rain": rain, "hue": s * d.hue_shift * u}


def _class_probs(d: CameraDrift, u: np.ndarray) -> np.ndarray:
    """Class frequencies at u: the logits move from mix_start to mix_end, scaled by the drift strength."""
    a, b = np.asarray(d.mix_start), np.asarray(d.mix_end)
    logits = a[None, :] + d.strength * u[:, None] * (b - a)[None, :]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Vectorised drawing: every primitive is a boolean mask over (n, H, W), computed for all samples
# of one class at once from per-sample parameters of shape (n, 1, 1).


class _Painter:
    """Draws primitives in each sample's object frame (u, v in [0, 1] across its box; u mirrored when flipped)."""

    def __init__(self, size: int, box: np.ndarray, flip: np.ndarray) -> None:
        n, h, w = len(box), size, size
        # Paint layer ids into one small int map and look colours up once at the end: far fewer
        # passes over (n, H, W, 3) floats than painting colours primitive by primitive.
        self.layer = np.zeros((n, h, w), np.uint8)
        self.colours: list[np.ndarray] = []
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
        self.ox, self.oy = box[:, 0, None, None], box[:, 1, None, None]
        self.ow, self.oh = box[:, 2, None, None], box[:, 3, None, None]
        self.flip = flip[:, None, None]
        self.X, self.Y = xs[None], ys[None]
        u = (self.X - self.ox) / self.ow
        self.U = np.where(self.flip, 1.0 - u, u)
        self.V = (self.Y - self.oy) / self.oh

    def _px(self, cu: Any, cv: Any) -> tuple[np.ndarray, np.ndarray]:
        """Pixel position of an object-frame point."""
        cu = np.where(self.flip, 1.0 - np.asarray(cu), np.asarray(cu))
        return self.ox + cu * self.ow, self.oy + np.asarray(cv) * self.oh

    def rect(self, u0: Any, u1: Any, v0: Any, v1: Any) -> np.ndarray:
        return (self.U >= u0) & (self.U < u1) & (self.V >= v0) & (self.V < v1)

    def disc(self, cu: Any, cv: Any, r_px: Any, inner_px: Any = 0.0) -> np.ndarray:
        """A disc (or a ring when inner_px > 0) with radius in pixels, so wheels stay round."""
        px, py = self._px(cu, cv)
        d2 = (self.X - px) ** 2 + (self.Y - py) ** 2
        return (d2 <= np.asarray(r_px) ** 2) & (d2 >= np.asarray(inner_px) ** 2)

    def ellipse(self, cu: Any, cv: Any, ru: Any, rv: Any) -> np.ndarray:
        return ((self.U - cu) / ru) ** 2 + ((self.V - cv) / rv) ** 2 <= 1.0

    def segment(self, ua: Any, va: Any, ub: Any, vb: Any, t_px: float) -> np.ndarray:
        """A thick line between two object-frame points."""
        ax, ay = self._px(ua, va)
        bx, by = self._px(ub, vb)
        dx, dy = bx - ax, by - ay
        t = np.clip(((self.X - ax) * dx + (self.Y - ay) * dy) / (dx * dx + dy * dy + 1e-6), 0.0, 1.0)
        return (self.X - ax - t * dx) ** 2 + (self.Y - ay - t * dy) ** 2 <= t_px ** 2

    def paint(self, mask: np.ndarray, colour: np.ndarray) -> None:
        self.colours.append(colour.astype(np.float32))
        self.layer[mask] = len(self.colours)

    def composite(self, img: np.ndarray) -> np.ndarray:
        """The painted objects over ``img`` (n, H, W, 3)."""
        palette = np.stack([np.zeros_like(self.colours[0])] + self.colours, axis=1)
        painted = palette[np.arange(len(palette))[:, None, None], self.layer]
        return np.where((self.layer > 0)[..., None], painted, img)


def _hsv(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB in [0, 1]; returns (n, 3)."""
    h = np.mod(h, 1.0) * 6.0
    i = np.floor(h).astype(int) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack([np.stack(c, axis=-1) for c in
                      ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], axis=0)
    return table[i, np.arange(len(h))].astype(np.float32)


def _grey(n: int, level: Any) -> np.ndarray:
    return np.repeat(np.broadcast_to(np.asarray(level, np.float32), (n,))[:, None], 3, axis=1)


# Width/height ranges per class: the box's aspect is the first cue a detector crop keeps.
_ASPECT = {0: (0.35, 0.5), 1: (1.7, 2.3), 2: (1.5, 2.0), 3: (2.0, 2.6), 4: (1.35, 1.7), 5: (1.25, 1.6)}


def _draw_class(c: int, p: _Painter, rng: np.random.Generator, body: np.ndarray) -> None:
    """Draw class c's object for every sample in the painter (body: main colour per sample)."""
    n = body.shape[0]
    r = lambda lo, hi: rng.uniform(lo, hi, size=(n, 1, 1)).astype(np.float32)  # noqa: E731
    dark = _grey(n, rng.uniform(0.05, 0.2, size=n))
    glass = _hsv(rng.uniform(0.5, 0.62, n), rng.uniform(0.2, 0.5, n), rng.uniform(0.55, 0.9, n))
    oh = p.oh
    if c == 0:  # person: head, torso, two legs (stride varies), arms
        skin = _hsv(rng.uniform(0.03, 0.1, n), rng.uniform(0.3, 0.6, n), rng.uniform(0.45, 0.95, n))
        legs = _hsv(rng.uniform(0, 1, n), rng.uniform(0.1, 0.5, n), rng.uniform(0.1, 0.45, n))
        stride = r(0.0, 0.18)
        p.paint(p.rect(0.5 - 0.1 - stride, 0.5 - stride + 0.08, 0.58, 1.0), legs)
        p.paint(p.rect(0.5 + stride - 0.08, 0.5 + 0.1 + stride, 0.58, 1.0), legs)
        p.paint(p.rect(0.18, 0.82, 0.2, 0.62), body)
        p.paint(p.segment(0.2, 0.24, 0.05 - stride * 0.5, 0.55, 0.045 * oh)
                | p.segment(0.8, 0.24, 0.95, 0.52, 0.045 * oh), body)
        p.paint(p.ellipse(0.5, 0.1, 0.3, 0.1), skin)
    elif c == 1:  # car: low body, narrower cabin with a window, two wheels
        cab0, cab1 = r(0.2, 0.32), r(0.6, 0.75)
        p.paint(p.rect(cab0, cab1, 0.1, 0.5), body)
        p.paint(p.rect(cab0 + 0.05, cab1 - 0.05, 0.17, 0.45), glass)
        p.paint(p.rect(0.0, 1.0, 0.42, 0.82), body)
        p.paint(p.rect(0.92, 1.0, 0.5, 0.6), _grey(n, 0.95))  # headlight
        p.paint(p.disc(0.22, 0.82, 0.19 * oh), dark)
        p.paint(p.disc(0.78, 0.82, 0.19 * oh), dark)
    elif c == 2:  # truck: tall cargo box, separate cab with a window, three wheels
        cargo = _hsv(rng.uniform(0, 1, n), rng.uniform(0.0, 0.4, n), rng.uniform(0.5, 0.95, n))
        split = r(0.6, 0.7)
        p.paint(p.rect(0.0, split, 0.0, 0.8), cargo)
        p.paint(p.rect(split + 0.03, 1.0, 0.3, 0.8), body)
        p.paint(p.rect(split + 0.1, 0.95, 0.36, 0.55), glass)
        for cu in (0.14, 0.45, 0.86):
            p.paint(p.disc(cu, 0.85, 0.15 * oh), dark)
    elif c == 3:  # bus: long tall body, a row of windows, two wheels
        nwin = rng.integers(3, 6, size=(n, 1, 1)).astype(np.float32)
        p.paint(p.rect(0.0, 1.0, 0.0, 0.86), body)
        win = p.rect(0.04, 0.96, 0.14, 0.46) & (np.mod((p.U - 0.04) / 0.92 * nwin, 1.0) < 0.72)
        p.paint(win, glass)
        p.paint(p.rect(0.0, 1.0, 0.6, 0.66), _grey(n, 0.9))
        p.paint(p.disc(0.2, 0.87, 0.13 * oh), dark)
        p.paint(p.disc(0.8, 0.87, 0.13 * oh), dark)
    elif c == 4:  # bicycle: two thin rings, a thin frame, handlebar
        rad = r(0.27, 0.33) * oh
        t = np.maximum(1.2, 0.06 * oh)
        wheels = p.disc(0.24, 0.68, rad, rad - t) | p.disc(0.76, 0.68, rad, rad - t)
        frame = (p.segment(0.24, 0.68, 0.45, 0.3, 0.7) | p.segment(0.45, 0.3, 0.76, 0.68, 0.7)
                 | p.segment(0.45, 0.3, 0.72, 0.25, 0.7) | p.segment(0.72, 0.25, 0.76, 0.68, 0.7)
                 | p.segment(0.72, 0.25, 0.78, 0.08, 0.7))
        p.paint(wheels, dark)
        p.paint(frame, body)
    else:  # motorcycle: filled wheels with hubs, a solid body, a rider
        rider = _hsv(rng.uniform(0, 1, n), rng.uniform(0.2, 0.7, n), rng.uniform(0.2, 0.7, n))
        p.paint(p.disc(0.2, 0.75, 0.24 * oh) | p.disc(0.8, 0.75, 0.24 * oh), dark)
        p.paint(p.disc(0.2, 0.75, 0.08 * oh) | p.disc(0.8, 0.75, 0.08 * oh), _grey(n, 0.7))
        p.paint(p.ellipse(0.5, 0.58, 0.3, 0.15), body)
        p.paint(p.rect(0.38, 0.56, 0.12, 0.48), rider)
        p.paint(p.ellipse(0.5, 0.1, 0.09, 0.1), rider * 0.6)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A camera's fixed scene: sky gradient, buildings on the horizon, ground and a road with lane marks."""
    img = np.zeros((size, size, 3), np.float32)
    ys = (np.arange(size, dtype=np.float32) + 0.5) / size
    horizon = rng.uniform(0.3, 0.5)
    sky_top, sky_low = _hsv(rng.uniform(0.5, 0.7, 2), rng.uniform(0.2, 0.6, 2), rng.uniform(0.7, 1.0, 2))
    g = np.clip(ys / horizon, 0, 1)[:, None, None]
    img[:] = (1 - g) * sky_top + g * sky_low
    for _ in range(rng.integers(2, 6)):  # buildings
        x0 = rng.uniform(-0.1, 0.9)
        w, top = rng.uniform(0.1, 0.3), rng.uniform(0.05, horizon)
        col = _hsv(rng.uniform(0, 1, 1), rng.uniform(0, 0.4, 1), rng.uniform(0.3, 0.8, 1))[0]
        xs = slice(max(0, int(x0 * size)), max(0, int((x0 + w) * size)))
        img[int(top * size):int(horizon * size) + 1, xs] = col
    ground = _hsv(rng.uniform(0.15, 0.35, 1), rng.uniform(0.2, 0.6, 1), rng.uniform(0.3, 0.6, 1))[0]
    img[int(horizon * size):] = ground
    road0 = int(rng.uniform(horizon + 0.1, 0.65) * size)
    img[road0:] = rng.uniform(0.25, 0.45)
    lane = road0 + (size - road0) // 2
    img[lane:lane + 1, (np.arange(size) // 4) % 2 == 0] = 0.9
    return img


def render_camera(d: CameraDrift, size: int, u: np.ndarray, rng: np.random.Generator,
                  scene: np.ndarray, base_hues: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one camera's ``size``-px frames at stream positions u.

    Returns (uint8 images (n, S, S, 3), labels, crop boxes (n, 4)).
    """
    n = len(u)
    probs = _class_probs(d, u)
    labels = (rng.random(n)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1).clip(0, len(SIX_CLASSES) - 1)
    cond = _conditions(d, u)

    # Object boxes: the longer side spans 55-90% of the frame, anywhere it fits.
    lo = np.array([_ASPECT[c][0] for c in labels])
    hi = np.array([_ASPECT[c][1] for c in labels])
    aspect = rng.uniform(lo, hi)
    major = rng.uniform(0.55, 0.9, n) * size
    ow = np.where(aspect >= 1, major, major * aspect)
    oh = np.where(aspect >= 1, major / aspect, major)
    ox = rng.uniform(0, 1, n) * (size - ow)
    oy = rng.uniform(0, 1, n) * (size - oh)
    box = np.stack([ox, oy, ow, oh], axis=1).astype(np.float32)
    flip = rng.random(n) < 0.5

    # Main colour: a per-camera hue per class (rotated by the appearance drift), often, else any hue.
    hue = np.where(rng.random(n) < 0.7, base_hues[labels] + rng.normal(0, 0.05, n), rng.random(n)) + cond["hue"]
    body = _hsv(hue, rng.uniform(0.45, 0.95, n), rng.uniform(0.45, 0.95, n))

    img = np.broadcast_to(scene, (n, size, size, 3)).copy()
    img *= rng.uniform(0.92, 1.08, size=(n, 1, 1, 1)).astype(np.float32)
    for c in range(len(SIX_CLASSES)):
        sel = np.nonzero(labels == c)[0]
        if len(sel):
            sub = _Painter(size, box[sel], flip[sel])
            _draw_class(c, sub, rng, body[sel])
            img[sel] = sub.composite(img[sel])

    # Drift: night (darker, bluer), fog (towards grey), rain (streaks, noise, blur). float32 throughout.
    night = cond["night"].astype(np.float32)[:, None, None, None]
    img *= (1 - night) + night * (0.45 * np.array([0.75, 0.85, 1.15], np.float32))
    fog = cond["fog"].astype(np.float32)[:, None, None, None]
    img *= 1 - fog
    img += fog * np.float32(0.72)
    rain = cond["rain"].astype(np.float32)
    wet = np.nonzero(rain > 0.02)[0]  # the rain pass only touches frames where it rains
    if len(wet):
        r, w = rain[wet], img[wet]
        ys, xs = np.mgrid[0:size, 0:size]
        phase = rng.integers(0, 7, size=(len(wet), 1, 1))
        streak = (((xs[None] + 2 * ys[None] // 3 + phase) % 7 == 0)
                  & (rng.random((len(wet), size, size)) < 0.2 * r[:, None, None]))
        w = np.where(streak[..., None], w * 0.5 + 0.45, w)
        blurred = w.copy()
        blurred[:, 1:-1, 1:-1] = sum(w[:, 1 + dy:size - 1 + dy, 1 + dx:size - 1 + dx]
                                     for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0
        b = (0.5 * r)[:, None, None, None]
        img[wet] = (1 - b) * w + b * blurred
    sigma = (0.02 + 0.03 * rain)[:, None, None, None]
    img += rng.standard_normal(size=img.shape, dtype=np.float32) * sigma
    img *= 255
    pixels = np.clip(np.round(img), 0, 255).astype(np.uint8)

    # The crop box a detector would give: the object's bounds plus a small margin, inside the frame.
    margin = rng.uniform(0, 2, size=(n, 4))
    crop = np.stack([np.floor(ox - margin[:, 0]), np.floor(oy - margin[:, 1]),
                     np.ceil(ox + ow + margin[:, 2]), np.ceil(oy + oh + margin[:, 3])], axis=1)
    crop = np.clip(crop, 0, size).astype(np.int64)
    return pixels, labels.astype(np.int64), crop
