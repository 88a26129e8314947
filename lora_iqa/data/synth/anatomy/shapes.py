"""Geometry and painting for the SYNTHETIC anatomy: signed-distance shapes (ellipses, capsules, star-shaped
outlines), thicknesses around an outline, correlated texture fields and the canvas that paints them."""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as _fft


def _rotate(dx, dy, rot):
    if rot:
        c, s = math.cos(rot), math.sin(rot)
        dx, dy = c * dx + s * dy, c * dy - s * dx
    return dx, dy


def d_ellipse(X, Y, cx, cy, a, b, rot=0.0):
    """Approximate signed distance (mm) to an ellipse (exact on the boundary's normal direction)."""
    dx, dy = _rotate(X - cx, Y - cy, rot)
    ua, vb = dx / a, dy / b
    g = np.sqrt((ua / a) ** 2 + (vb / b) ** 2)
    return (ua * ua + vb * vb - 1.0) / (2.0 * g + 1e-9)


def d_capsule(X, Y, x0, y0, x1, y1, r0, r1=None):
    """Signed distance (mm) to a segment swept by a radius tapering from r0 to r1."""
    ex, ey = x1 - x0, y1 - y0
    t = np.clip(((X - x0) * ex + (Y - y0) * ey) / (ex * ex + ey * ey + 1e-12), 0.0, 1.0)
    d = np.hypot(X - x0 - t * ex, Y - y0 - t * ey)
    return d - (r0 if r1 is None else r0 + (r1 - r0) * t)


def harm(rng, kmax, amp, k0=2):
    """Random smooth radial perturbation: [(k, amplitude, phase)], amplitudes ~ amp / k."""
    return [(k, float(rng.uniform(0.3, 1.0) * amp * k0 / k), float(rng.uniform(0, 2 * math.pi))) for k in range(k0, kmax + 1)]


def smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


_TAB_N = 4096
_TAB_TH = np.linspace(-math.pi, math.pi, _TAB_N + 1)  # angle tables for large arrays (np.interp)


class _Angular:
    """A function of the angle: scalar arithmetic for a float, a table (np.interp) for large arrays."""

    _tab = None

    def __call__(self, th):
        if isinstance(th, float):
            return self._f1(th)
        if th.size > 2 * _TAB_N:
            if self._tab is None:
                self._tab = self._f(_TAB_TH)
            return np.interp(th, _TAB_TH, self._tab)
        return self._f(th)


class Star(_Angular):
    """A star-shaped outline: superellipse (separate anterior/posterior half-depth and exponent),
    rotated, with a smooth radial perturbation; calling it gives the radius at an angle. Distances are
    radial (exact enough for smooth shapes)."""

    def __init__(self, cx, cy, a, b, bp=None, p=2.0, pp=None, rot=0.0, harm=()):
        self.cx, self.cy, self.a, self.b = float(cx), float(cy), float(a), float(b)
        self.bp, self.p, self.pp = float(b if bp is None else bp), float(p), float(p if pp is None else pp)
        self.rot, self.harm = float(rot), list(harm)

    def _f1(self, th):
        c, s = abs(math.cos(th)), math.sin(th)
        b, p = (self.bp, self.pp) if s > 0 else (self.b, self.p)
        r = ((c / self.a) ** p + (abs(s) / b) ** p) ** (-1.0 / p)
        return r * (1.0 + sum(amp * math.cos(k * th + ph) for k, amp, ph in self.harm))

    def _f(self, th):
        c, s = np.abs(np.cos(th)), np.sin(th)
        b = np.where(s > 0, self.bp, self.b) if self.bp != self.b else self.b
        p = np.where(s > 0, self.pp, self.p) if self.pp != self.p else self.p
        r = ((c / self.a) ** p + (np.abs(s) / b) ** p) ** (-1.0 / p)
        if self.harm:
            m = 1.0
            for k, amp, ph in self.harm:
                m = m + amp * np.cos(k * th + ph)
            r = r * m
        return r

    def polar(self, X, Y):
        dx, dy = _rotate(X - self.cx, Y - self.cy, self.rot)
        return np.hypot(dx, dy), np.arctan2(dy, dx)

    def d(self, X, Y, inset=0.0):
        rho, th = self.polar(X, Y)
        return rho - (self(th) - (inset(th) if callable(inset) else inset))

    def d1(self, x, y, inset=0.0):
        """Radial signed distance of one point (scalar arithmetic)."""
        dx, dy = _rotate(x - self.cx, y - self.cy, self.rot)
        th = math.atan2(dy, dx)
        return math.hypot(dx, dy) - (self._f1(th) - (inset(th) if callable(inset) else inset))

    def contains(self, x, y, margin=0.0):
        return self.d1(x, y) < -margin

    def extent(self):
        return max(self.a, self.b, self.bp) * (1.0 + sum(abs(h[1]) for h in self.harm)) * 1.05

    def boundary(self, n=720):
        th = np.linspace(-math.pi, math.pi, n, endpoint=False)
        r = self(th)
        u, v = r * np.cos(th), r * np.sin(th)
        c, s = math.cos(self.rot), math.sin(self.rot)
        return np.stack([self.cx + c * u - s * v, self.cy + s * u + c * v], 1)


class Thick(_Angular):
    """A thickness around a body outline as a function of the body angle th (0 = patient left,
    pi/2 = posterior): t0 * (1 + ant * max(-sin, 0) + post * max(sin, 0) + lat * cos^2 + harmonics), plus
    paired anterior bumps (rect: rectus abdominis) and a posterior one (back: paraspinal muscles)."""

    def __init__(self, t0, ant=0.0, post=0.0, lat=0.0, harm=(), rect=0.0, rect_w=0.3, back=0.0, back_w=0.35):
        self.t0, self.ant, self.post, self.lat, self.harm = float(t0), float(ant), float(post), float(lat), list(harm)
        self.rect, self.rect_w = float(rect), float(rect_w)
        self.back, self.back_w = float(back), float(back_w)

    def _f1(self, th):
        s, c = math.sin(th), math.cos(th)
        m = 1.0 + self.ant * max(-s, 0.0) + self.post * max(s, 0.0) + self.lat * c * c
        if self.rect:
            m += self.rect * math.exp(-(((abs(math.atan2(c, -s)) - self.rect_w) / (0.8 * self.rect_w)) ** 2))
        if self.back:
            m += self.back * math.exp(-((abs(math.atan2(c, s)) / self.back_w) ** 2))
        m += sum(amp * math.cos(k * th + ph) for k, amp, ph in self.harm)
        return self.t0 * max(m, 0.15)

    def _f(self, th):
        s, c = np.sin(th), np.cos(th)
        m = 1.0 + self.ant * np.maximum(-s, 0) + self.post * np.maximum(s, 0) + self.lat * c * c
        if self.rect:  # angle from the anterior midline
            m = m + self.rect * np.exp(-(((np.abs(np.arctan2(c, -s)) - self.rect_w) / (0.8 * self.rect_w)) ** 2))
        if self.back:  # angle from the posterior midline
            m = m + self.back * np.exp(-((np.abs(np.arctan2(c, s)) / self.back_w) ** 2))
        for k, amp, ph in self.harm:
            m = m + amp * np.cos(k * th + ph)
        return self.t0 * np.maximum(m, 0.15)


def fields(rng, n, px):
    """Six unit-variance correlated Gaussian fields: fine (f1, f2), parenchymal (m1, m2), coarse (c1, c2)."""
    fr = np.fft.fftfreq(n, d=px).astype(np.float32)
    f2 = fr[:, None] ** 2 + fr[None, :] ** 2
    out = {}
    for name, lo, hi in (("f", 0.6, 0.8), ("m", 1.6, 2.4), ("c", 6.0, 9.0)):
        s = float(rng.uniform(lo, hi))
        w = rng.standard_normal((2, n, n), dtype=np.float32)
        h = np.exp(np.float32(-2 * math.pi**2 * s * s) * f2)
        spec = np.empty((n, n), np.complex64)
        spec.real = w[0] * h
        spec.imag = w[1] * h
        g = _fft.ifft2(spec, overwrite_x=True)
        norm = n * n / math.sqrt(float(np.sum(h.astype(np.float64) ** 2)))  # std of each part = sqrt(sum h^2) / n^2
        out[f"{name}1"] = g.real.astype(np.float64) * norm
        out[f"{name}2"] = g.imag.astype(np.float64) * norm
    return out


class Canvas:
    """The pixel grid in patient coordinates (mm), its texture fields and the HU / label maps being painted.
    A shape paints ``hu += coverage * (value - hu)``; a value is a number or a function of the bbox."""

    _queue = None

    def __init__(self, rng, size, px, center, tilt):
        self.n, self.px = int(size), float(px)
        self.c0 = self.n // 2
        self.cx, self.cy = float(center[0]), float(center[1])
        self.cos, self.sin = math.cos(tilt), math.sin(tilt)
        k = (np.arange(self.n) - self.c0) * self.px
        self.X = self.cx + self.cos * k[None, :] - self.sin * k[:, None]
        self.Y = self.cy + self.sin * k[None, :] + self.cos * k[:, None]
        self.hu = np.full((self.n, self.n), -1000.0)
        self.lab = np.zeros((self.n, self.n), np.int8)
        self.F = fields(rng, self.n, self.px)

    def bbox(self, x, y, r):
        """The pixel window holding a circle of radius r mm about (x, y), or None outside the grid."""
        dx, dy = x - self.cx, y - self.cy
        u, v = self.cos * dx + self.sin * dy, self.cos * dy - self.sin * dx
        col, row, h = u / self.px + self.c0, v / self.px + self.c0, r / self.px + 2.0
        r0, r1 = max(0, int(math.floor(row - h))), min(self.n, int(math.ceil(row + h)) + 1)
        c0, c1 = max(0, int(math.floor(col - h))), min(self.n, int(math.ceil(col + h)) + 1)
        return None if r0 >= r1 or c0 >= c1 else (slice(r0, r1), slice(c0, c1))

    def xy(self, bb):
        return self.X[bb], self.Y[bb]

    def cov(self, d, soft=1.0):
        """Coverage of a signed distance: a one-pixel linear ramp (partial volume)."""
        return np.clip(0.5 - d / (self.px * soft), 0.0, 1.0)

    def tex(self, mu, **amps):
        """A textured value: mu + sum(amp * field) on the bbox."""
        def val(bb):
            v = mu
            for k, a in amps.items():
                v = v + a * self.F[k][bb]
            return v

        return val

    def defer(self):
        """Queue the following paints (until :meth:`replay`): geometry decided now, painted on top later."""
        self._queue = []
        return self._queue

    def replay(self, queue):
        self._queue = None
        for args in queue:
            self.paint(*args)

    def paint(self, bb, cov, val, lab=None):
        if bb is None:
            return
        if self._queue is not None:
            self._queue.append((bb, cov, val, lab))
            return
        v = val(bb) if callable(val) else val
        h = self.hu[bb]
        h += cov * (v - h)
        if lab is not None:
            self.lab[bb][cov > 0.5] = lab

    def sdf(self, x, y, r, dist, val, lab=None, clip=None):
        """Paint the shape of signed distance ``dist(X, Y)`` within r mm of (x, y), clipped to a coverage."""
        bb = self.bbox(x, y, r)
        if bb is not None:
            c = self.cov(dist(*self.xy(bb)))
            self.paint(bb, c if clip is None else np.minimum(c, clip[bb]), val, lab)

    def ellipse(self, x, y, a, b, val, rot=0.0, lab=None, clip=None):
        self.sdf(x, y, max(a, b), lambda X, Y: d_ellipse(X, Y, x, y, a, b, rot), val, lab, clip)

    def star(self, st: Star, val, lab=None, clip=None, inset=0.0):
        self.sdf(st.cx, st.cy, st.extent(), lambda X, Y: st.d(X, Y, inset), val, lab, clip)

    def capsule(self, x0, y0, x1, y1, r0, val, r1=None, lab=None, clip=None):
        r = math.hypot(x1 - x0, y1 - y0) / 2 + max(r0, r0 if r1 is None else r1)
        self.sdf((x0 + x1) / 2, (y0 + y1) / 2, r, lambda X, Y: d_capsule(X, Y, x0, y0, x1, y1, r0, r1), val, lab, clip)

    def path(self, pts, r, val, lab=None, clip=None, r_end=None):
        """A tube along a polyline (list of (x, y)), radius r (tapering to r_end)."""
        n = len(pts) - 1
        for i in range(n):
            ra = r if r_end is None else r + (r_end - r) * i / n
            rb = r if r_end is None else r + (r_end - r) * (i + 1) / n
            self.capsule(pts[i][0], pts[i][1], pts[i + 1][0], pts[i + 1][1], ra, val, rb, lab, clip)

    def full_cov(self, st: Star, inset=0.0):
        """Full-size coverage of a star outline (for clipping organs to a cavity)."""
        out = np.zeros((self.n, self.n))
        bb = self.bbox(st.cx, st.cy, st.extent())
        if bb is not None:
            out[bb] = self.cov(st.d(*self.xy(bb), inset))
        return out


def arc(cx, cy, r, th0, th1, n=4, ry=None):
    """Points along an elliptical arc (angles in radians)."""
    ry = r if ry is None else ry
    return [(cx + r * math.cos(a), cy + ry * math.sin(a)) for a in np.linspace(th0, th1, n)]


def bezier(p0, p1, p2, n=6):
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, float) for p in (p0, p1, p2))
    return [tuple(map(float, p)) for p in (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t * t * p2]
