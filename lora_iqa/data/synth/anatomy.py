"""SYNTHETIC CT anatomy: procedural, field-of-view-filling axial slices (HU maps) with texture and lesions.

Everything made here is SYNTHETIC: procedurally drawn anatomy, not derived from any patient or real
image. It exists so that a model trained on simulated noise and streaks sees them on anatomy that
looks like real CT (tissue filling the field, textured organs, bone, gas, fat), not on flat
ellipses in an empty field.

API
    ``anatomy_slice(rng, size, spacing_mm, region=None) -> (base_hu, lesion_map, info)``.
    ``base_hu`` (float64, HU) and ``lesion_map`` (float64, unit-contrast lesion masks in [-1, 1]
    with smooth edges) are ``size x size``; ``base_hu + c * lesion_map`` shows the lesions at
    contrast ``c`` HU (each lesion's sign, +1 hyper- or -1 hypodense, is in the map). Outside the
    reconstruction circle (radius ``size // 2`` px about pixel ``size // 2``, the test of
    ``ct_physics._circle``) ``base_hu`` is exactly -1000 and ``lesion_map`` exactly 0. ``info`` is
    JSON-serialisable: region, level, phase, body size, field (fov, centre, zoom, roi, tilt),
    fill fractions and the lesions (organ, centre, diameter, sign). The same rng state gives the
    same output. Cost (2-core development machine, spacing 0.4-1.2 mm, medians over the four regions):
    ~16 ms per 128 px, ~40 ms per 256 px (max ~65 ms) and ~0.11 s per 512 px slice (max ~0.19 s);
    vectorised numpy/scipy, with Python loops over shapes and vessel segments only, never over pixels.

Geometry
    Anatomy is defined in millimetres in patient coordinates (x to the image right = patient
    left, y down = posterior, anterior at the top, the usual radiological display) and sampled on
    the pixel grid: the field is a circle of diameter ``size * spacing_mm`` mm centred on a point of
    the patient, with a small in-plane tilt (body ±4 deg, head ±8 deg). Masks are signed distance
    functions turned into coverage with a one-pixel linear ramp (partial volume, anti-aliased
    edges). Layers are painted in anatomical order (body, fat, muscle, cavity, organs, vessels,
    bone), each ``hu += coverage * (value - hu)``.

Field of view and zoom
    Body widths: abdomen 250-420 mm, chest 260-440 mm, pelvis 280-450 mm, head 140-190 mm (length
    1.12-1.3 x width). As in clinical practice the reconstruction field is matched to the patient:
    when the field can hold the whole body, the body width is drawn so that it fills the field
    (width = fov / U(1.0, 1.12), head length = fov / U(1.02, 1.15)) within the ranges above; a
    field smaller than the smallest body shows the central part of a body drawn from the range.
    With probability 0.3 the slice is a targeted (zoomed) reconstruction centred on a region of
    interest (abdomen: liver, spine, kidney, pancreas; chest: heart, spine, a lung, mediastinum;
    pelvis: bladder, a hip, sacrum; head: ventricles, a hemisphere, the posterior brain) with the
    whole field inside the body, so tissue fills the circle (if the body cannot hold the field the
    slice falls back to a centred field). ``info["zoom"]`` is true whenever the whole field lies
    inside the body outline; ``info["roi"]`` names the targeted region (or "center").

Regions and HU values (native phase; "contrast" phase, p = 0.5 for the trunk, enhances blood,
kidney cortex, liver, spleen, myocardium)
    abdomen  body outline (superellipse, flatter back) with skin (20-50 HU), subcutaneous fat
             (-110..-80, thickness grows with body width), a muscle wall (40-60) with fat planes
             between the oblique muscles, visceral fat with mesenteric vessel dots; liver (55-65;
             contrast 95-115) with a portal and hepatic vessel tree (blood 35-45 unenhanced:
             darker tubes; 150-190 enhanced: bright tubes), gallbladder (0-20); spleen (45;
             contrast 105-125); kidneys with cortex and medulla (30-35; cortex 150-200 enhanced),
             renal sinus fat and pelvis; aorta (40; 160-250) with optional wall calcification, IVC;
             pancreas with fatty lobulation; stomach with rugal wall, gas and contents; small-bowel
             and colon loops (wall, fluid 5-30 HU, feces mottled with gas bubbles, air-fluid levels,
             optional positive oral contrast); vertebral body (cortical shell 800-1200, trabecular
             interior 150-350 from thresholded correlated noise), spinal canal, laminae, transverse
             and spinous processes; psoas, quadratus lumborum and paraspinal muscles; rib sections
             and costal cartilage at the edges. A level parameter (upper/mid/lower abdomen) sets
             which organs appear and how large.
    chest    lungs (-870..-780: gravity-dependent gradient, fine parenchymal texture) with branching
             vessel trees from the hila, vessel cross-sections that shrink towards the periphery,
             bronchi with walls, optional fissures; mediastinal fat; heart with pericardial fat,
             chambers and myocardium (contrast) and coronary dots/calcifications, or (upper level)
             aortic arch, trachea and SVC; descending aorta, esophagus, azygos; spine, ribs with
             cortex and marrow, costal cartilage, sternum, scapulae; chest-wall muscles and fat;
             optional breasts with fibroglandular tissue.
    head     scalp (skin, thin fat, galea), skull with outer/inner tables (900-1300 HU) and
             diploe (350-700, textured); thin CSF space; gray matter (38-42) cortex with sulci
             (CSF 0-10) and white matter (26-32) with gyral fingers; lateral ventricles (CSF 5),
             third ventricle, septum; basal ganglia and thalami (gray), internal capsules (white);
             falx (60-100, sometimes calcified) in the interhemispheric fissure; Sylvian fissures.
             Atrophy (age) widens sulci and ventricles.
    pelvis   wide body with thick subcutaneous fat and gluteal muscles; iliac level: iliac wings and
             sacrum (cortex + trabecular texture, sacroiliac joints, sacral canal and foramina),
             iliacus/psoas, iliac vessels, bowel loops and sigmoid colon; acetabular level: femoral
             heads in the acetabula, bladder (urine 0-15, wall), rectum, prostate or uterus,
             obturator internus, femoral vessels.

Texture
    Six unit-variance correlated Gaussian fields per slice (FFT-filtered white noise: fine
    sigma 0.6-0.8 mm, parenchymal 1.6-2.4 mm, coarse 6-9 mm) drive all texture: parenchyma and muscle
    mottling of a few HU (std inside an organ ~3-10 HU), fat lobules with thin septa (ridges of a
    field), trabecular bone (a thresholded fine field), lung parenchyma, fibroglandular breast
    tissue, bowel contents with gas bubbles, pancreatic lobulation. Vessels are tapered capsule
    segments from random branching trees (liver, lungs), partly leaving the slice plane.

Lesions
    1-4 round/oval lesions, diameter 4-15 mm, each wholly inside one organ (abdomen: liver, spleen,
    kidney, pancreas, muscle; chest: heart, chest-wall muscle, breast; head: brain parenchyma;
    pelvis: bladder, prostate/uterus, muscle), a margin of 1.5 mm from the organ edge and from one
    another, each with sign +1 or -1 and an edge ramp of 0.7-1.5 px. None is placed where no
    eligible organ is in the field (then ``info["lesions"]`` is shorter).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as _fft

from lora_iqa.errors import LoraIqaError

REGIONS = ("abdomen", "chest", "head", "pelvis")
_REGION_P = (0.35, 0.25, 0.2, 0.2)
ZOOM_P = 0.3
_WIDTH = {"abdomen": (250.0, 420.0), "chest": (260.0, 440.0), "pelvis": (280.0, 450.0), "head": (140.0, 190.0)}

# lesion-eligible labels
_LIVER, _SPLEEN, _KIDNEY, _PANCREAS, _MUSCLE, _BRAIN, _HEART, _BLADDER, _GLAND, _BREAST = range(1, 11)
_LABEL_NAMES = {_LIVER: "liver", _SPLEEN: "spleen", _KIDNEY: "kidney", _PANCREAS: "pancreas", _MUSCLE: "muscle",
                _BRAIN: "brain", _HEART: "heart", _BLADDER: "bladder", _GLAND: "prostate_uterus", _BREAST: "breast"}


# --- geometry -------------------------------------------------------------------------------------


def _d_ellipse(X, Y, cx, cy, a, b, rot=0.0):
    """Approximate signed distance (mm) to an ellipse (exact on the boundary's normal direction)."""
    dx, dy = X - cx, Y - cy
    if rot:
        c, s = math.cos(rot), math.sin(rot)
        dx, dy = c * dx + s * dy, c * dy - s * dx
    ua, vb = dx / a, dy / b
    g = np.sqrt((ua / a) ** 2 + (vb / b) ** 2)
    return (ua * ua + vb * vb - 1.0) / (2.0 * g + 1e-9)


def _d_capsule(X, Y, x0, y0, x1, y1, r0, r1=None):
    """Signed distance (mm) to a segment swept by a radius tapering from r0 to r1."""
    ex, ey = x1 - x0, y1 - y0
    t = np.clip(((X - x0) * ex + (Y - y0) * ey) / (ex * ex + ey * ey + 1e-12), 0.0, 1.0)
    d = np.hypot(X - x0 - t * ex, Y - y0 - t * ey)
    return d - (r0 if r1 is None else r0 + (r1 - r0) * t)


def _harm(rng, kmax, amp, k0=2):
    """Random smooth radial perturbation: [(k, amplitude, phase)], amplitudes ~ amp / k."""
    return [(k, float(rng.uniform(0.3, 1.0) * amp * k0 / k), float(rng.uniform(0, 2 * math.pi))) for k in range(k0, kmax + 1)]


_TAB_N = 4096
_TAB_TH = np.linspace(-math.pi, math.pi, _TAB_N + 1)  # angle tables for large arrays (np.interp)


class _Star:
    """A star-shaped outline: superellipse (separate anterior/posterior half-depth and exponent),
    rotated, with a smooth radial perturbation. Distances are radial (exact enough for smooth shapes)."""

    def __init__(self, cx, cy, a, b, bp=None, p=2.0, pp=None, rot=0.0, harm=()):
        self.cx, self.cy, self.a, self.b = float(cx), float(cy), float(a), float(b)
        self.bp = float(b if bp is None else bp)
        self.p = float(p)
        self.pp = float(p if pp is None else pp)
        self.rot, self.harm = float(rot), list(harm)
        self._tab = None

    def radius(self, th):
        if isinstance(th, float):
            return self._radius1(th)
        if th.size > 2 * _TAB_N:
            if self._tab is None:
                self._tab = self._radius(_TAB_TH)
            return np.interp(th, _TAB_TH, self._tab)
        return self._radius(th)

    def _radius1(self, th):
        c, s = abs(math.cos(th)), math.sin(th)
        b, p = (self.bp, self.pp) if s > 0 else (self.b, self.p)
        r = ((c / self.a) ** p + (abs(s) / b) ** p) ** (-1.0 / p)
        return r * (1.0 + sum(amp * math.cos(k * th + ph) for k, amp, ph in self.harm))

    def _radius(self, th):
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
        dx, dy = X - self.cx, Y - self.cy
        if self.rot:
            c, s = math.cos(self.rot), math.sin(self.rot)
            dx, dy = c * dx + s * dy, c * dy - s * dx
        return np.hypot(dx, dy), np.arctan2(dy, dx)

    def d(self, X, Y, inset=0.0):
        rho, th = self.polar(X, Y)
        r = self.radius(th)
        return rho - (r - (inset(th) if callable(inset) else inset))

    def extent(self):
        m = 1.0 + sum(abs(h[1]) for h in self.harm)
        return max(self.a, self.b, self.bp) * m * 1.05

    def boundary(self, n=720):
        th = np.linspace(-math.pi, math.pi, n, endpoint=False)
        r = self.radius(th)
        u, v = r * np.cos(th), r * np.sin(th)
        c, s = math.cos(self.rot), math.sin(self.rot)
        return np.stack([self.cx + c * u - s * v, self.cy + s * u + c * v], 1)

    def contains(self, x, y, margin=0.0):
        return self.d1(x, y) < -margin

    def d1(self, x, y, inset=0.0):
        """Radial signed distance of one point (scalar arithmetic)."""
        dx, dy = x - self.cx, y - self.cy
        if self.rot:
            c, s = math.cos(self.rot), math.sin(self.rot)
            dx, dy = c * dx + s * dy, c * dy - s * dx
        th = math.atan2(dy, dx)
        return math.hypot(dx, dy) - (self._radius1(th) - (inset(th) if callable(inset) else inset))


class _Thick:
    """A thickness around a body outline as a function of the body angle th (0 = patient left,
    pi/2 = posterior): t0 * (1 + ant * max(-sin, 0) + post * max(sin, 0) + lat * cos^2 + harmonics)."""

    def __init__(self, t0, ant=0.0, post=0.0, lat=0.0, harm=(), rect=0.0, rect_w=0.3, back=0.0, back_w=0.35):
        self.t0, self.ant, self.post, self.lat, self.harm = float(t0), float(ant), float(post), float(lat), list(harm)
        self.rect, self.rect_w = float(rect), float(rect_w)
        self.back, self.back_w = float(back), float(back_w)
        self._tab = None

    def __call__(self, th):
        if isinstance(th, float):
            return self._f1(th)
        if th.size > 2 * _TAB_N:
            if self._tab is None:
                self._tab = self._f(_TAB_TH)
            return np.interp(th, _TAB_TH, self._tab)
        return self._f(th)

    def _f1(self, th):
        s, c = math.sin(th), math.cos(th)
        m = 1.0 + self.ant * max(-s, 0.0) + self.post * max(s, 0.0) + self.lat * c * c
        if self.rect:
            da = abs(math.atan2(c, -s))
            m += self.rect * math.exp(-(((da - self.rect_w) / (0.8 * self.rect_w)) ** 2))
        if self.back:
            db = abs(math.atan2(c, s))
            m += self.back * math.exp(-((db / self.back_w) ** 2))
        m += sum(amp * math.cos(k * th + ph) for k, amp, ph in self.harm)
        return self.t0 * max(m, 0.15)

    def _f(self, th):
        s, c = np.sin(th), np.cos(th)
        m = 1.0 + self.ant * np.maximum(-s, 0) + self.post * np.maximum(s, 0) + self.lat * c * c
        if self.rect:  # paired anterior muscles (rectus abdominis) either side of the midline
            da = np.abs(np.arctan2(c, -s))  # angle from the anterior midline
            m = m + self.rect * np.exp(-(((da - self.rect_w) / (0.8 * self.rect_w)) ** 2))
        if self.back:  # the paraspinal muscles behind the rib cage (chest)
            db = np.abs(np.arctan2(c, s))  # angle from the posterior midline
            m = m + self.back * np.exp(-((db / self.back_w) ** 2))
        for k, amp, ph in self.harm:
            m = m + amp * np.cos(k * th + ph)
        return self.t0 * np.maximum(m, 0.15)


# --- texture fields ---------------------------------------------------------------------------------


def _fields(rng, n, px):
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


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# --- the canvas -------------------------------------------------------------------------------------


class _Canvas:
    """The pixel grid in patient coordinates (mm) and the HU / label maps being painted."""

    def __init__(self, rng, size, px, center, tilt):
        self.rng, self.n, self.px = rng, int(size), float(px)
        self.c0 = self.n // 2
        self.cx, self.cy = float(center[0]), float(center[1])
        self.cos, self.sin = math.cos(tilt), math.sin(tilt)
        k = (np.arange(self.n) - self.c0) * self.px
        self.X = self.cx + self.cos * k[None, :] - self.sin * k[:, None]
        self.Y = self.cy + self.sin * k[None, :] + self.cos * k[:, None]
        self.hu = np.full((self.n, self.n), -1000.0)
        self.lab = np.zeros((self.n, self.n), np.int8)
        self.F = _fields(rng, self.n, self.px)
        self.full = (slice(0, self.n), slice(0, self.n))

    # coordinates
    def bbox(self, x, y, r):
        dx, dy = x - self.cx, y - self.cy
        u, v = self.cos * dx + self.sin * dy, self.cos * dy - self.sin * dx
        col, row, h = u / self.px + self.c0, v / self.px + self.c0, r / self.px + 2.0
        r0, r1 = max(0, int(math.floor(row - h))), min(self.n, int(math.ceil(row + h)) + 1)
        c0, c1 = max(0, int(math.floor(col - h))), min(self.n, int(math.ceil(col + h)) + 1)
        if r0 >= r1 or c0 >= c1:
            return None
        return (slice(r0, r1), slice(c0, c1))

    def xy(self, bb):
        return self.X[bb], self.Y[bb]

    def cov(self, d, soft=1.0):
        return np.clip(0.5 - d / (self.px * soft), 0.0, 1.0)

    def tex(self, mu, **amps):
        """A textured value: mu + sum(amp * field) on the bbox."""
        F = self.F

        def val(bb):
            v = mu
            for k, a in amps.items():
                v = v + a * F[k][bb]
            return v

        return val

    # painting
    def defer(self):
        """Queue the following paints (until :meth:`replay`): geometry decided now, painted on top later."""
        self._queue = []
        return self._queue

    def replay(self, queue):
        self._queue = None
        for args in queue:
            self.paint(*args)

    _queue = None

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

    def shape(self, bb, d, val, lab=None, clip=None, soft=1.0):
        if bb is None:
            return None
        c = self.cov(d, soft)
        if clip is not None:
            c = np.minimum(c, clip[bb])
        self.paint(bb, c, val, lab)
        return c

    def ellipse(self, x, y, a, b, val, rot=0.0, lab=None, clip=None):
        bb = self.bbox(x, y, max(a, b))
        if bb is None:
            return None, None
        X, Y = self.xy(bb)
        return bb, self.shape(bb, _d_ellipse(X, Y, x, y, a, b, rot), val, lab, clip)

    def star(self, st: _Star, val, lab=None, clip=None, inset=0.0):
        bb = self.bbox(st.cx, st.cy, st.extent())
        if bb is None:
            return None, None
        X, Y = self.xy(bb)
        return bb, self.shape(bb, st.d(X, Y, inset), val, lab, clip)

    def capsule(self, x0, y0, x1, y1, r0, val, r1=None, lab=None, clip=None):
        rr = max(r0, r0 if r1 is None else r1)
        bb = self.bbox((x0 + x1) / 2, (y0 + y1) / 2, math.hypot(x1 - x0, y1 - y0) / 2 + rr)
        if bb is None:
            return None, None
        X, Y = self.xy(bb)
        return bb, self.shape(bb, _d_capsule(X, Y, x0, y0, x1, y1, r0, r1), val, lab, clip)

    def path(self, pts, r, val, lab=None, clip=None, r_end=None):
        """A tube along a polyline (list of (x, y)), radius r (tapering to r_end)."""
        n = len(pts) - 1
        for i in range(n):
            ra = r if r_end is None else r + (r_end - r) * i / n
            rb = r if r_end is None else r + (r_end - r) * (i + 1) / n
            self.capsule(pts[i][0], pts[i][1], pts[i + 1][0], pts[i + 1][1], ra, val, rb, lab, clip)

    def full_cov(self, st: _Star, inset=0.0):
        """Full-size coverage of a star outline (for clipping organs to a cavity)."""
        out = np.zeros((self.n, self.n))
        bb = self.bbox(st.cx, st.cy, st.extent())
        if bb is not None:
            X, Y = self.xy(bb)
            out[bb] = self.cov(st.d(X, Y, inset))
        return out


def _arc(cx, cy, r, th0, th1, n=4, ry=None):
    """Points along an elliptical arc (angles in radians)."""
    ry = r if ry is None else ry
    t = np.linspace(th0, th1, n)
    return [(cx + r * math.cos(a), cy + ry * math.sin(a)) for a in t]


def _bezier(p0, p1, p2, n=6):
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, float) for p in (p0, p1, p2))
    pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t * t * p2
    return [tuple(map(float, p)) for p in pts]


# --- shared tissue values -----------------------------------------------------------------------------


class _Tissue:
    """Per-slice tissue values (drawn once) and their textures."""

    def __init__(self, cv: _Canvas, rng, contrast: bool):
        u = rng.uniform
        F = cv.F
        self.contrast = contrast
        self.fat = float(u(-110, -85))
        self.muscle = float(u(42, 58))
        self.skin = float(u(20, 50))
        self.blood = float(u(160, 250)) if contrast else float(u(36, 46))
        self.vein = float(u(140, 190)) if contrast else self.blood
        self.cortex = float(u(800, 1200))
        self.marrow = float(u(30, 110))
        self.trab = float(u(380, 620))
        self.septa = float(u(15, 40))
        # fat septa: sparse thin ridges of a coarse field
        self._septa = np.exp(-(F["c2"] * u(9.0, 14.0)) ** 2)
        self._trab_thr = float(u(0.0, 0.5))
        self.F = F

    def fat_tex(self, amp=1.0, mu=None, vessels=False):
        """Fat with lobules (thin septa); with vessels, small bright dots (mesenteric vessels)."""
        F, s = self.F, self._septa
        m = self.fat if mu is None else mu
        sep = self.septa * amp
        dot = (self.blood if self.contrast else 40.0) - m

        def val(bb):
            v = m + 4.0 * F["c1"][bb] + 1.5 * F["f2"][bb] + sep * s[bb]
            if vessels:
                v = v + dot * _smoothstep((F["f2"][bb] + 0.3 * F["c2"][bb] - 2.7) * 3.0)
            return v

        return val

    def muscle_tex(self, mu=None, fatty=0.0):
        F = self.F
        m = self.muscle if mu is None else mu

        def val(bb):
            v = m + 3.0 * F["m2"][bb] + 2.0 * F["c2"][bb] + 1.5 * F["f1"][bb]
            if fatty:
                v = v - fatty * _smoothstep(F["m1"][bb] - 1.2)
            return v

        return val

    def bone_tex(self, marrow=None, trab=None):
        """Trabecular bone: thresholded fine field, trabeculae over marrow."""
        F, thr = self.F, self._trab_thr
        mo = self.marrow if marrow is None else marrow
        tb = self.trab if trab is None else trab

        def val(bb):
            t = _smoothstep((F["f1"][bb] + 0.35 * F["m2"][bb] - thr) * 1.2 + 0.5)
            return mo + (tb - mo) * t + 15.0 * F["c1"][bb]

        return val


# --- the field of view ---------------------------------------------------------------------------------


def _fits(body: _Star, bnd, x, y, rad):
    x, y = float(x), float(y)
    if not body.contains(x, y, rad):
        return False
    return float(np.min(np.hypot(bnd[:, 0] - x, bnd[:, 1] - y))) >= rad


def _place_field(rng, body: _Star, fov, rois: dict, zoom: bool):
    """(centre, roi name, inside) of the field: on a region of interest moved towards the body centre
    until the whole field fits inside the body (zoom), or near the body centre."""
    rad = fov / 2 + 3.0
    bnd = body.boundary()
    if zoom and rois:
        names = sorted(rois)
        name = names[int(rng.integers(len(names)))]
        tx, ty = rois[name]
        tx, ty = tx + rng.uniform(-8, 8), ty + rng.uniform(-8, 8)
        for t in np.linspace(0.0, 1.0, 21):
            x, y = (1 - t) * tx + t * body.cx, (1 - t) * ty + t * body.cy
            if _fits(body, bnd, x, y, rad):
                return (float(x), float(y)), name, True
    # centred field, small offsets (patient not exactly at the isocentre)
    span_x = max(0.0, body.a - fov / 2)
    x = body.cx + rng.uniform(-0.03, 0.03) * body.a * 2 + rng.uniform(-0.3, 0.3) * span_x
    y = body.cy + rng.uniform(-0.05, 0.05) * (body.b + body.bp)
    return (float(x), float(y)), "center", _fits(body, bnd, x, y, rad)


_ZOOM_NEED = {"abdomen": 1.5, "chest": 1.55, "pelvis": 1.6, "head": 1.15}  # body width / fov for a field inside


def _fit_width(rng, region, fov, zoom):
    """Body width (mm): for a zoomed field, wide enough for the field to fit inside when possible; else
    matched to the field as clinical reconstructions are (width = fov / U(1.0, 1.12)) within the range."""
    lo, hi = _WIDTH[region]
    need = fov * _ZOOM_NEED[region]
    if zoom and need <= hi:
        return float(rng.uniform(max(lo, need), hi))
    w = fov / rng.uniform(1.0, 1.12)
    if w < lo:
        return float(rng.uniform(lo, lo + 0.4 * (hi - lo)))
    if w > hi:
        return float(rng.uniform(0.85 * hi, hi))
    return float(w)


# --- shared structures -----------------------------------------------------------------------------


class _Torso:
    """Body outline with skin, subcutaneous fat, a muscle wall (with fat planes) and the cavity."""

    def __init__(self, cv: _Canvas, T: _Tissue, body: _Star, t_skin, t_sc: _Thick, t_m: _Thick, planes=0.0,
                 cavity_val=None, linea=0.0, fascia=0.5, n_planes=2):
        self.body, self.t_skin, self.t_sc, self.t_m = body, float(t_skin), t_sc, t_m
        n = cv.n
        self.body_cov = np.zeros((n, n))
        self.cav_cov = np.zeros((n, n))
        self.muscle_in = np.zeros((n, n))  # inside the outer muscle boundary
        bb = cv.bbox(body.cx, body.cy, body.extent())
        if bb is None:
            return
        X, Y = cv.xy(bb)
        rho, th = body.polar(X, Y)
        R = body.radius(th)
        sc = t_sc(th)
        m = t_m(th)
        c = cv.cov(rho - R)
        self.body_cov[bb] = c
        cv.paint(bb, c, T.skin, lab=0)
        cv.paint(bb, cv.cov(rho - (R - t_skin)), T.fat_tex())
        # superficial fascia: a faint line through the subcutaneous fat
        fl = np.clip(1.0 - np.abs(rho - (R - t_skin - fascia * sc)) / max(0.5, 0.8 * cv.px), 0, 1)
        cv.paint(bb, fl * 0.5 * _smoothstep(cv.F["c1"][bb] + 1.0), T.muscle)
        r_m = R - t_skin - sc
        c = cv.cov(rho - r_m)
        self.muscle_in[bb] = c
        cv.paint(bb, c, T.muscle_tex(), lab=_MUSCLE)
        if planes > 0:  # fat planes between the lateral wall muscles (obliques, transversus)
            lat = _smoothstep((np.abs(np.cos(th)) - 0.3) / 0.35) * planes
            for f in ((0.33, 0.66) if n_planes == 2 else (0.45,)):
                band = np.clip(1.0 - np.abs(rho - (r_m - f * m)) / max(0.6, 0.9 * cv.px), 0, 1) * lat
                cv.paint(bb, band, T.fat, lab=0)
        if linea:  # linea alba: a thin fat gap in the anterior midline
            dx = np.abs((X - body.cx) * math.cos(body.rot) + (Y - body.cy) * math.sin(body.rot))
            gap = cv.cov(dx - linea) * (rho > r_m - m - 1.0) * (rho < r_m) * (np.sin(th) < -0.5)
            cv.paint(bb, gap, T.fat_tex(), lab=0)
        c = cv.cov(rho - (r_m - m))
        self.cav_cov[bb] = c
        cv.paint(bb, c, T.fat_tex(vessels=True) if cavity_val is None else cavity_val, lab=0)

    def inset_point(self, th, depth):
        """A point at the given depth (mm) below the skin along body angle th."""
        r = float(self.body.radius(float(th))) - depth
        return self.body.cx + r * math.cos(th), self.body.cy + r * math.sin(th)

    def cav_radius(self, th):
        th = np.array(th)
        return float(self.body.radius(th) - self.t_skin - self.t_sc(th) - self.t_m(th))

    def wall_depth(self, th, f):
        """Depth (mm from the skin) of the fraction f through the muscle wall at angle th."""
        th = np.array(th)
        return float(self.t_skin + self.t_sc(th) + f * self.t_m(th))


def _table(cv, rng, body: _Star, body_cov):
    """The CT table under the body: a mattress pad, carbon-fibre skins and a foam core (outside the body)."""
    u = rng.uniform
    y0 = body.cy + body.bp + u(-2, 3)
    Rc, half = u(350, 900), u(200, 250)
    pad = u(8, 40) if rng.random() < 0.7 else 0.0
    top, sk = u(12, 25), u(1.0, 2.2)
    bb = cv.bbox(body.cx, y0 + 20, half + 10)
    if bb is None:
        return
    X, Y = cv.xy(bb)
    v = Y - (y0 - (X - body.cx) ** 2 / (2 * Rc))
    keep = cv.cov(np.abs(X - body.cx) - half) * (1.0 - body_cov[bb])

    def band(v0, v1):
        return np.minimum(cv.cov(v0 - v), cv.cov(v - v1)) * keep

    if pad:
        cv.paint(bb, band(0.0, pad), cv.tex(u(-850, -600), c1=15.0)(bb))
    skin = u(150, 500)
    cv.paint(bb, band(pad, pad + sk), skin)
    cv.paint(bb, band(pad + sk, pad + top - sk), u(-950, -850))
    cv.paint(bb, band(pad + top - sk, pad + top), skin)


def _vertebra(cv, T, rng, x, y_tip, s, lumbar=True, disc=False):
    """Vertebra from the spinous tip (y_tip) forward: body, pedicles, laminae, processes, canal.
    Returns (y_body, half-width, half-depth, y_canal)."""
    u = rng.uniform
    vw = (u(20, 25) if lumbar else u(14, 18)) * s
    vd = (u(14, 17) if lumbar else u(12, 15)) * s
    L_sp = (u(24, 32) if lumbar else u(20, 28)) * s
    ch = u(6.5, 8.5) * s
    cw = u(9, 12) * s
    y_lam = y_tip - L_sp
    y_can = y_lam - ch - 2
    y_b = y_can - ch - vd - 2
    cort, sh = T.cortex, u(1.0, 1.8)
    bone = T.bone_tex()
    # posterior elements: cortex tubes, then marrow inside
    tp = (u(20, 30) if lumbar else u(16, 24)) * s
    elems = [
        ([(x, y_lam), (x, y_tip)], u(3.5, 5.0) * s, u(2.5, 3.5) * s),
    ]
    for side in (-1, 1):
        elems += [
            ([(x + side * vw * 0.62, y_b + vd * 0.7), (x + side * cw * 0.95, y_can)], u(4.0, 5.0) * s, None),
            ([(x + side * cw * 0.95, y_can), (x + side * cw * 0.5, y_lam + 2), (x, y_lam)], u(3.2, 4.2) * s, None),
            ([(x + side * cw * 0.9, y_can + 1), (x + side * (vw + tp), y_can + u(-2, 6))], u(4.5, 6.0) * s, u(2.5, 3.5) * s),
        ]
    for pts, r, r_end in elems:
        cv.path(pts, r, cort, r_end=r_end, lab=0)
    for pts, r, r_end in elems:
        cv.path(pts, max(r - sh, 0.5), bone, r_end=None if r_end is None else max(r_end - sh, 0.5))
    body = _Star(x, y_b, vw, vd, vd * 0.9, p=u(2.2, 2.6), pp=u(3.0, 4.0), harm=_harm(rng, 4, 0.02))
    if disc:
        cv.star(body, cv.tex(u(80, 100), m1=3.0), lab=0)
        cv.ellipse(x, y_b, vw * 0.5, vd * 0.45, cv.tex(u(60, 80), m1=3.0))
    else:
        cv.star(body, cort, lab=0)
        cv.star(body, bone, inset=sh)
        if rng.random() < 0.5:  # basivertebral vein notch at the back of the body
            cv.ellipse(x, y_b + vd * 0.75, 2.5 * s, 3.0 * s, T.blood if T.contrast else 40.0)
    # canal: thecal sac with epidural fat at the back
    cv.ellipse(x, y_can + ch * 0.45, cw * 0.6, ch * 0.45, T.fat, lab=0)
    cv.ellipse(x, y_can - ch * 0.1, cw * 0.8, ch * 0.8, u(5, 20), lab=0)
    if not lumbar:
        cv.ellipse(x, y_can - ch * 0.1, cw * 0.45, ch * 0.5, u(28, 36))  # spinal cord
    return y_b, vw, vd, y_can


def _vessel_tree(rng, x, y, ang, length, rad, depth, spread, out):
    """Random branching tree as capsule segments (x0, y0, x1, y1, r0, r1)."""
    x1, y1 = x + length * math.cos(ang), y + length * math.sin(ang)
    r1 = rad * rng.uniform(0.8, 0.92)
    out.append((x, y, x1, y1, rad, r1))
    if depth <= 0:
        return
    k = 3 if rng.random() < 0.2 else 2
    for i in range(k):
        a2 = ang + (i - (k - 1) / 2) * spread * rng.uniform(0.7, 1.3) + rng.uniform(-0.25, 0.25)
        _vessel_tree(rng, x1, y1, a2, length * rng.uniform(0.6, 0.85), r1 * rng.uniform(0.65, 0.82), depth - 1,
                     spread * 0.9, out)


def _draw_tree(cv, segs, val, keep, clip, rng, r_min=0.35):
    """Draw segments (each kept with probability keep: the rest leave the slice plane)."""
    for x0, y0, x1, y1, r0, r1 in segs:
        if rng.random() > keep:
            if rng.random() < 0.35:  # a cross-section where the vessel crosses the plane
                cv.ellipse(x1, y1, max(r1, r_min) * 1.1, max(r1, r_min) * 1.1, val, clip=clip)
            continue
        cv.capsule(x0, y0, x1, y1, max(r0, r_min), val, max(r1, r_min), clip=clip)


def _bowel(cv, T, rng, x, y, a, b, rot, kind, wall=None, lab=0, tube=False):
    """A bowel loop, as a cross-section (star) or an in-plane curved tube: wall then contents (fluid,
    gas with an air-fluid level, feces mottled with gas, oral contrast, collapsed)."""
    u = rng.uniform
    F = cv.F
    w = u(1.3, 2.8) if wall is None else wall
    wall_val = cv.tex(u(35, 45) + (u(25, 50) if T.contrast else 0.0), m1=3.0)
    if tube:  # a curved tube of radius b, length ~ 2a
        pts, ang = [(x, y)], rot
        step = max(a, b) * u(0.6, 0.9)
        for _ in range(int(rng.integers(2, 5))):
            ang += u(-0.9, 0.9)
            pts.append((pts[-1][0] + step * math.cos(ang), pts[-1][1] + step * math.sin(ang)))
        cv.path(pts, b, wall_val, lab=lab)
        st = _Star(x, y, b, b)

        def paint_in(val):
            cv.path(pts, max(b - w, 0.5), val)
    else:
        st = _Star(x, y, a, b, rot=rot, harm=_harm(rng, 6, u(0.03, 0.08)))
        cv.star(st, wall_val, lab=lab)

        def paint_in(val):
            cv.star(st, val, inset=w)
    fluid = u(5, 30)
    if kind == "feces":
        thr = u(0.6, 1.2)
        base = u(10, 40)

        def val(bb):
            g = _smoothstep((F["f2"][bb] + 0.6 * F["m2"][bb] - thr) * 2.0 + 0.5)
            return base + 12.0 * F["m1"][bb] + (-990.0 - base) * g

    elif kind == "gas":
        yl = y + b * u(0.3, 1.2)  # air-fluid level (fluid posterior, dependent)

        def val(bb):
            t = _smoothstep((cv.Y[bb] - yl) / cv.px + 0.5)
            return -995.0 + (fluid + 995.0) * t

    elif kind == "oral":
        val = cv.tex(u(150, 350), m1=8.0)
    elif kind == "collapsed":
        val = cv.tex(u(25, 40), m1=4.0)
    else:
        yb = y - b * u(0.3, 0.9)  # a few small gas bubbles at the top of the fluid

        def val(bb):
            g = _smoothstep((F["f1"][bb] - 2.2) * 2.0) * (cv.Y[bb] < yb)
            return fluid + 3.0 * F["m1"][bb] + 2.0 * F["c1"][bb] + (-990.0 - fluid) * g

    paint_in(val)
    return st


def _place_loops(rng, n, inside, obstacles, r_range, tries=40):
    """Centres and radii of up to n loops: rejection-sampled with ``inside(x, y, r)`` true and clear of
    the obstacles (stars) and of each other (some overlap allowed: loops abut)."""
    out = []
    for _ in range(n):
        for _ in range(tries):
            x, y = inside.sample(rng)
            r = float(rng.uniform(*r_range))
            if not inside.ok(x, y, r * 0.6):
                continue
            if any(o.contains(x, y, -0.6 * r) for o in obstacles):
                continue
            if any(math.hypot(x - ox, y - oy) < 0.65 * (r + orr) for ox, oy, orr in out):
                continue
            out.append((x, y, r))
            break
    return out


class _Region:
    """Uniform sampling of points inside a star (the cavity), optionally limited to a box."""

    def __init__(self, star: _Star, inset, box=None):
        self.star, self.inset, self.box = star, inset, box

    def sample(self, rng):
        x0, x1, y0, y1 = self.box if self.box else (-self.star.a, self.star.a, -self.star.b, self.star.bp)
        return float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))

    def ok(self, x, y, margin):
        return self.star.d1(x, y, self.inset) < -margin


def _torso_frame(rng, region, fov, zoom, depth_ratio, p_range, sc_lean, sc_obese, tm0, tm_post, tm_lat, rect=0.0, back=0.0):
    u = rng.uniform
    W = _fit_width(rng, region, fov, zoom)
    lo, hi = _WIDTH[region]
    a = W / 2
    D = W * u(*depth_ratio)
    p = u(*p_range)
    body = _Star(0.0, 0.0, a, D / 2 * u(1.0, 1.08), D / 2 * u(0.9, 0.98), p, p + u(0.2, 0.9), 0.0, _harm(rng, 5, 0.015))
    obese = float(np.clip((W - lo) / (hi - lo), 0, 1)) * u(0.6, 1.2)
    t_skin = u(1.5, 2.5)
    t_sc = _Thick(u(*sc_lean) + obese * u(*sc_obese), ant=u(0, 0.6), post=u(-0.3, 0.3), lat=u(-0.3, 0.4), harm=_harm(rng, 4, 0.08))
    t_m = _Thick(u(*tm0), ant=u(-0.3, 0.0), post=u(*tm_post), lat=u(*tm_lat), harm=_harm(rng, 4, 0.06),
                 rect=rect * u(0.6, 1.2), rect_w=u(0.25, 0.4), back=back * u(0.8, 1.2), back_w=u(0.3, 0.4))
    return body, t_skin, t_sc, t_m


def _cavity_star(body, t_skin, t_sc, t_m):
    def inset(th):
        return t_skin + t_sc(th) + t_m(th)
    return inset


def _abdomen(rng, size, px, zoom):
    u = rng.uniform
    fov = size * px
    body, t_skin, t_sc, t_m = _torso_frame(rng, "abdomen", fov, zoom, (0.66, 0.82), (2.0, 2.35), (4, 10), (15, 45),
                                           (8, 12), (0.0, 0.3), (0.0, 0.4), rect=0.6)
    inset = _cavity_star(body, t_skin, t_sc, t_m)

    def cav_r(th):
        return float(body.radius(np.array(th)) - inset(np.array(th)))

    a_c = (cav_r(0.0) + cav_r(math.pi)) / 2
    b_c, bp_c = cav_r(-math.pi / 2), cav_r(math.pi / 2)
    s = float(np.clip(a_c / 125, 0.85, 1.15)) * u(0.92, 1.08)
    level = u(0, 1)
    contrast = bool(rng.random() < 0.5)
    y_tip = bp_c + float(t_m(np.array(math.pi / 2))) - u(2, 6)
    # approximate landmarks for the field placement (the drawing below uses the same numbers)
    y_v = y_tip - 68 * s
    k_x = 62 * s
    rois = {"spine": (0.0, y_v + 25 * s), "kidney_r": (-k_x - 15 * s, y_v), "kidney_l": (k_x + 15 * s, y_v)}
    if level < 0.7:
        rois["liver"] = (-0.45 * a_c, -0.05 * b_c)
    if 0.15 < level < 0.7:
        rois["pancreas"] = (0.05 * a_c, y_v - 45 * s)
    center, roi, inside = _place_field(rng, body, fov, rois, zoom)
    tilt = math.radians(u(-4, 4))
    cv = _Canvas(rng, size, px, center, tilt)
    T = _Tissue(cv, rng, contrast)
    torso = _Torso(cv, T, body, t_skin, t_sc, t_m, planes=u(0.5, 1.0), linea=u(1.0, 4.0), fascia=u(0.3, 0.6))
    if rng.random() < 0.75:
        _table(cv, rng, body, torso.body_cov)
    cav = torso.cav_cov
    cav_star = _Region(body, inset)

    # --- retroperitoneum: spine, paraspinal muscles, psoas, quadratus lumborum (painted after the organs)
    spine_ops = cv.defer()
    y_b, vw, vd, y_can = _spine_block(cv, T, rng, torso, y_tip, s, lumbar=True, psoas=(9 + 16 * level) * s)
    cv.replay([])
    r_ps = (9 + 16 * level) * s
    obstacles = [_Star(0.0, y_b + 15 * s, vw + 2 * r_ps + 10, 45 * s)]
    # --- great vessels
    r_ao = u(8.5, 12.5) * s
    x_ao, y_ao = u(4, 12) * s, y_b - vd - r_ao - u(1, 4)
    ivc = (-u(18, 28) * s, y_b - vd - u(6, 10) * s, u(9, 14) * s, u(6, 10) * s)
    obstacles.append(_Star(x_ao - 8, y_ao, r_ao + 22, r_ao + 12))
    # --- organs (level: 0 = upper abdomen, 1 = lower)
    kid_scale = 1.0 - abs(level - 0.45) * 1.4
    kid = []
    if kid_scale > 0.25:
        for side in (-1, 1):
            ks = kid_scale * u(0.75, 1.05) * s
            if ks < 0.3:
                continue
            kx = side * (vw + 2 * r_ps + u(14, 24) * s)
            ky = y_b + u(-2, 12) * s + (5 if side < 0 else 0)
            kid.append((side, kx, ky, ks))
            obstacles.append(_Star(kx, ky, 38 * ks + 10, 38 * ks + 10))
    liver = None
    if level < 0.8:
        sl = max(0.25, 1.15 - 0.95 * level)
        liver = _Star(-a_c * (0.42 + 0.1 * level), -b_c * (0.05 + 0.25 * level), a_c * (0.35 + 0.25 * sl),
                      (b_c + bp_c) / 2 * (0.3 + 0.5 * sl), rot=u(-0.15, 0.15), p=u(2.0, 2.6), harm=_harm(rng, 5, 0.05))
        obstacles.append(liver)
    spleen = None
    if level < 0.55:
        ss = (1.0 - 1.3 * level) * u(0.8, 1.15)
        if ss > 0.3:
            spleen = _Star(0.62 * a_c, 0.38 * bp_c, 0.16 * a_c * (0.6 + 0.4 * ss), 0.42 * bp_c * (0.5 + 0.5 * ss),
                           rot=u(-0.7, -0.4), harm=_harm(rng, 4, 0.05))
            obstacles.append(spleen)
    stomach = None
    if level < 0.45:
        stomach = _Star(0.3 * a_c, -0.35 * b_c, 0.26 * a_c * u(0.8, 1.2), 0.3 * b_c * u(0.8, 1.2), rot=u(-0.4, 0.4),
                        harm=_harm(rng, 5, 0.06))
        obstacles.append(stomach)
    panc = None
    if 0.15 < level < 0.7:
        yp = y_ao - r_ao - u(8, 14) * s
        panc = _bezier((-0.12 * a_c, yp + 8 * s), (0.15 * a_c, yp - 18 * s), (0.42 * a_c, y_b - 5 * s), 6)
        obstacles.append(_Star(0.15 * a_c, yp - 4, 0.32 * a_c, 22 * s))
    # --- bowel (drawn before the solid organs, which are painted over it)
    n_loops = int(round(4 + 18 * level * u(0.7, 1.2)))
    loops = _place_loops(rng, n_loops, cav_star, obstacles, (9 * s, 15 * s))
    colon = []
    if rng.random() < 0.85:
        colon.append((-0.8 * a_c, u(-0.1, 0.3) * bp_c, u(14, 24) * s))
    if rng.random() < 0.85:
        colon.append((0.82 * a_c, u(0.0, 0.4) * bp_c, u(12, 20) * s))
    if level < 0.55 and rng.random() < 0.7:
        colon.append((u(-0.3, 0.3) * a_c, -0.78 * b_c, u(14, 22) * s))
    for x, y, r in colon:
        if cav_star.ok(x, y, r * 0.3):
            kind = "feces" if rng.random() < 0.6 else "gas"
            _bowel(cv, T, rng, x, y, r * u(0.9, 1.2), r * u(0.8, 1.0), u(0, math.pi), kind)
    oral = rng.random() < 0.2
    for x, y, r in loops:
        q = rng.random()
        kind = "oral" if oral and q < 0.6 else ("gas" if q < 0.25 else ("collapsed" if q < 0.4 else "fluid"))
        _bowel(cv, T, rng, x, y, r * u(1.0, 1.8), r * u(0.7, 1.0), u(0, 2 * math.pi), kind, tube=rng.random() < 0.45)
    # --- solid organs
    liv_mu = u(95, 115) if contrast else u(55, 65)
    if liver is not None:
        lbb, lcov = cv.star(liver, cv.tex(liv_mu, m1=3.0, c1=2.5, c2=1.5), lab=_LIVER, clip=cav)
        if level < 0.4:  # left lobe across the midline
            cv.star(_Star(u(-0.05, 0.12) * a_c, -0.55 * b_c, 0.32 * a_c * u(0.8, 1.2), 0.22 * b_c, rot=u(-0.3, 0.1),
                          harm=_harm(rng, 4, 0.05)), cv.tex(liv_mu, m1=3.0, c1=2.5, c2=1.5), lab=_LIVER, clip=cav)
        liv_mask = (cv.lab == _LIVER).astype(float)
        segs = []
        hx, hy = liver.cx + liver.a * 0.55, liver.cy + u(-0.1, 0.2) * liver.b  # porta hepatis
        for ang in rng.uniform(math.pi * 0.75, math.pi * 1.25, int(rng.integers(2, 4))):
            _vessel_tree(rng, hx, hy, float(ang), liver.a * u(0.25, 0.4), u(3.0, 5.5) * s, 3, 0.6, segs)
        if level < 0.45:  # hepatic veins converging on the IVC
            for ang in rng.uniform(-math.pi * 0.95, -math.pi * 0.5, int(rng.integers(2, 4))):
                _vessel_tree(rng, ivc[0], ivc[1], float(ang), liver.a * u(0.3, 0.5), u(3.5, 6.0) * s, 2, 0.5, segs)
        vval = T.vein if contrast else u(34, 44)
        _draw_tree(cv, segs, vval, u(0.5, 0.85), liv_mask, rng)
        if 0.25 < level < 0.7 and rng.random() < 0.6:  # gallbladder
            gx, gy = liver.cx + liver.a * u(0.3, 0.6), liver.cy - liver.b * u(0.3, 0.55)
            ga, gb = u(12, 22) * s, u(9, 15) * s
            cv.ellipse(gx, gy, ga + 1.5, gb + 1.5, 40.0, rot=u(0, math.pi), lab=0, clip=cav)
            cv.ellipse(gx, gy, ga, gb, u(0, 20), clip=cav)
    if spleen is not None:
        cv.star(spleen, cv.tex(u(105, 125) if contrast else u(42, 48), m1=3.5, c1=3.0), lab=_SPLEEN, clip=cav)
    if stomach is not None:
        cv.star(stomach, cv.tex(u(40, 50) + (30 if contrast else 0), m1=4.0), lab=0, clip=cav)
        inner = _Star(stomach.cx, stomach.cy, stomach.a, stomach.b, rot=stomach.rot, harm=stomach.harm + _harm(rng, 12, 0.02, 8))
        kind = "gas" if rng.random() < 0.6 else "feces"
        yl = stomach.cy + stomach.b * u(-0.6, 0.4)
        food, F = u(10, 40), cv.F

        def sval(bb):
            t = _smoothstep((cv.Y[bb] - yl) / cv.px + 0.5)
            base = food + 8.0 * F["m1"][bb]
            if kind == "feces":
                base = base + (-990 - base) * _smoothstep((F["f2"][bb] + 0.5 * F["m2"][bb] - 1.3) * 2.0 + 0.5)
            return -995.0 + (base + 995.0) * t

        cv.star(inner, sval, clip=cav, inset=u(3, 6))
    if panc is not None:
        pm = u(90, 120) if contrast else u(35, 45)
        F = cv.F
        fat = T.fat

        def pval(bb):
            lob = _smoothstep((F["m1"][bb] - u_thr) * 1.5)
            return pm + 4.0 * F["m2"][bb] + (fat + 40 - pm) * lob

        u_thr = u(0.8, 1.8)
        cv.path(panc, u(9, 12) * s, pval, lab=_PANCREAS, r_end=u(6, 9) * s)
        cv.path([(p[0] + 2, p[1] + 9 * s) for p in panc[1:]], u(3, 5) * s, T.vein)  # splenic vein
    for side, kx, ky, ks in kid:
        _kidney(cv, T, rng, side, kx, ky, ks, contrast)
    cv.replay(spine_ops)
    # great vessels on top
    cv.ellipse(ivc[0], ivc[1], ivc[2], ivc[3], (T.vein * 0.7 + 30) if contrast else T.blood, rot=u(-0.3, 0.3), lab=0)
    cv.ellipse(x_ao, y_ao, r_ao + 1.2, r_ao + 1.2, 45.0, lab=0)
    cv.ellipse(x_ao, y_ao, r_ao, r_ao, T.blood)
    if rng.random() < 0.35:
        for _ in range(int(rng.integers(1, 4))):
            a0 = u(0, 2 * math.pi)
            cv.path(_arc(x_ao, y_ao, r_ao + 0.2, a0, a0 + u(0.3, 1.0)), u(0.6, 1.2), u(400, 900))
    if panc is not None:  # SMA and SMV in front of the aorta
        cv.ellipse(x_ao, y_ao - r_ao - u(8, 14) * s, 3.5 * s, 3.5 * s, T.blood)
        cv.ellipse(x_ao - u(10, 15) * s, y_ao - r_ao - u(8, 14) * s, 5 * s, 5 * s, T.vein)
    # --- ribs and costal cartilage at the edges
    n_rib = int(round((1.0 - level) * u(2, 6)))
    _ribs(cv, T, rng, torso, n_rib, [(-1.0, 0.9), (math.pi - 0.9, math.pi + 1.0)], (3.0, 4.5), s)
    if level < 0.4:
        _ribs(cv, T, rng, torso, int(rng.integers(0, 3)), [(-1.9, -1.2)], (3.0, 4.5), s, cartilage=True)
    lesion_organs = [(_LIVER, 0.55), (_SPLEEN, 0.15), (_KIDNEY, 0.15), (_PANCREAS, 0.1), (_MUSCLE, 0.05)]
    info = {"level": round(float(level), 3), "phase": "contrast" if contrast else "native"}
    return cv, body, torso.body_cov, lesion_organs, info, roi, inside


def _spine_block(cv, T, rng, torso, y_tip, s, lumbar=True, psoas=0.0, clip=None):
    """Paraspinal muscles, vertebra and (lumbar) psoas and quadratus lumborum."""
    u = rng.uniform
    clip = torso.muscle_in if clip is None else clip
    # paraspinal (erector spinae + multifidus) lateral to the spinous process
    pw, ph = u(20, 28) * s, u(22, 28) * s
    for side in (-1, 1):
        cv.ellipse(side * (pw * 0.75 + 4), y_tip - ph * 0.75, pw, ph, T.muscle_tex(fatty=u(10, 40)), rot=side * u(0.0, 0.25),
                   lab=_MUSCLE, clip=clip)
    cv.capsule(0.0, y_tip - 2 * ph, 0.0, y_tip + 3, 1.0, T.fat_tex(), lab=0)
    disc = rng.random() < 0.15
    y_b, vw, vd, y_can = _vertebra(cv, T, rng, 0.0, y_tip, s, lumbar=lumbar, disc=disc)
    if lumbar and psoas > 0:
        for side in (-1, 1):
            r = psoas * u(0.9, 1.1)
            cv.ellipse(side * (vw + r * 0.85), y_b - vd * 0.1, r, r * u(0.8, 1.0), T.muscle_tex(), rot=u(-0.3, 0.3), lab=_MUSCLE)
            cv.ellipse(side * (vw + 2 * r + u(10, 16) * s), y_can + u(-3, 5), u(14, 20) * s, u(8, 11) * s,
                       T.muscle_tex(), rot=side * u(0.2, 0.6), lab=_MUSCLE)
    return y_b, vw, vd, y_can


def _kidney(cv, T, rng, side, kx, ky, ks, contrast):
    u = rng.uniform
    rot = side * u(0.4, 0.8)
    a, b = u(26, 32) * ks, u(17, 22) * ks
    # perirenal fat, thicker posterolaterally
    cv.star(_Star(kx + side * u(1, 6), ky + u(1, 6), a + u(2, 9), b + u(2, 8), rot=rot, harm=_harm(rng, 4, 0.08)),
            T.fat_tex(0.5), lab=0)
    ctx = u(150, 200) if contrast else u(30, 36)
    med = (ctx if rng.random() < 0.5 else u(80, 120)) if contrast else ctx - u(0, 5)
    st = _Star(kx, ky, a, b, rot=rot, harm=_harm(rng, 4, 0.03))
    cv.star(st, cv.tex(ctx, m1=3.0), lab=_KIDNEY)
    c, s_ = math.cos(rot), math.sin(rot)
    # medullary pyramids
    for t in (-0.5, 0.0, 0.5):
        px, py = kx + c * t * a * 0.9 - s_ * (-0.15 * b), ky + s_ * t * a * 0.9 + c * (-0.15 * b)
        cv.ellipse(px, py, 0.22 * a, 0.3 * b, med, rot=rot + 0.5 * t)
    # renal sinus (fat) and pelvis at the medial end, opening anteriorly
    if rng.random() < 0.75:  # the hilum: sinus fat opening at the medial end, renal pelvis, vessels
        f = u(0.7, 0.95)
        mx, my = kx - side * c * a * f, ky - side * s_ * a * f
        cv.ellipse(mx, my - 2 * ks, u(0.3, 0.45) * a, u(0.35, 0.5) * b, T.fat_tex(0.3), rot=rot, lab=0)
        cv.ellipse(mx + side * c * 4 * ks, my - 1 * ks, u(0.12, 0.22) * a, u(0.15, 0.3) * b, u(0, 15), rot=rot, lab=0)
        cv.capsule(mx, my - 2 * ks, mx - side * u(15, 30) * ks, my - u(4, 12) * ks, u(2.5, 4.0) * ks, T.vein)


def _ribs(cv, T, rng, torso, n, ranges, r_range, s, cartilage=False, depth_f=0.5, length=(12, 32)):
    """Rib sections along the wall at body angles drawn from the given ranges (radians)."""
    u = rng.uniform
    for _ in range(n):
        lo, hi = ranges[int(rng.integers(len(ranges)))]
        th = u(lo, hi)
        r = u(*r_range) * s
        depth = torso.wall_depth(th, depth_f) + u(-2, 2)
        R = float(torso.body.radius(float(th))) - depth
        dth = u(*length) / max(R, 10.0) / 2
        pts = [torso.inset_point(t, depth + u(-1, 1)) for t in np.linspace(th - dth, th + dth, 4)]
        if cartilage:
            cv.path(pts, r, cv.tex(u(90, 180), m1=10.0), lab=0)
        else:
            cv.path(pts, r, T.cortex, lab=0)
            cv.path(pts, max(r - u(1.0, 1.6), 0.5), T.bone_tex())


# --- lesions and the public function -------------------------------------------------------------


def _circle(size: int) -> np.ndarray:
    """The reconstruction circle (the same test as ct_physics._circle)."""
    c = (np.arange(size) - size // 2) ** 2
    return c[:, None] + c[None, :] <= (size // 2) ** 2


def _lesions(cv: _Canvas, rng, organs, circle):
    """1-4 oval lesions inside eligible organs: (map, [info])."""
    u = rng.uniform
    lab = np.where(circle, cv.lab, 0)
    out = np.zeros((cv.n, cv.n))
    taken = np.zeros((cv.n, cv.n), bool)
    pix = {lid: np.flatnonzero(lab == lid) for lid, _ in organs}
    avail = [(lid, w) for lid, w in organs if len(pix[lid]) > 0]
    found = []
    if not avail:
        return out, found
    w = np.array([w for _, w in avail])
    w = w / w.sum()
    want = int(rng.integers(1, 5))
    for _ in range(want):
        for attempt in range(30):
            lid = avail[int(rng.choice(len(avail), p=w))][0]
            idx = pix[lid][int(rng.integers(len(pix[lid])))]
            r_, c_ = divmod(int(idx), cv.n)
            x, y = float(cv.X[r_, c_]), float(cv.Y[r_, c_])
            dia = u(4.0, 15.0) * (1.0 - attempt / 45)
            asp = u(1.0, 1.4)
            a, b, rot = dia / 2 * math.sqrt(asp), dia / 2 / math.sqrt(asp), u(0, math.pi)
            margin = 1.5 + cv.px
            bb = cv.bbox(x, y, max(a, b) + margin)
            X, Y = cv.xy(bb)
            ring = _d_ellipse(X, Y, x, y, a + margin, b + margin, rot) < 0
            if not np.all(lab[bb][ring] == lid) or np.any(taken[bb][ring]):
                continue
            sign = 1.0 if rng.random() < 0.5 else -1.0
            out[bb] += sign * cv.cov(_d_ellipse(X, Y, x, y, a, b, rot), u(0.7, 1.5))
            taken[bb] |= ring
            found.append({"organ": _LABEL_NAMES[lid], "center_mm": [round(x, 2), round(y, 2)],
                          "diameter_mm": round(2 * math.sqrt(a * b), 2), "sign": int(sign)})
            break
    return out, found


_BUILDERS = {}


def anatomy_slice(rng: np.random.Generator, size: int, spacing_mm: float, region: str | None = None
                  ) -> tuple[np.ndarray, np.ndarray, dict]:
    """A SYNTHETIC axial CT slice filling the reconstruction field: (base_hu, lesion_map, info).

    ``base_hu`` float64 (size, size) in HU; ``lesion_map`` float64 (size, size): unit-contrast lesion
    masks (0..1 with smooth edges, each lesion signed +1 or -1), so ``base_hu + c * lesion_map`` has
    lesions of contrast ``c`` HU. Both are exactly -1000 / 0 outside the reconstruction circle.
    ``info``: region, level, phase, body_width_mm, body_depth_mm, zoom (the whole field is inside the
    body), roi, center_mm (field centre in patient mm, body centre = 0), fov_mm, spacing_mm, tilt_deg,
    fill (fraction of the circle > -500 HU), body_fraction (fraction inside the body outline), lesions.
    See the module docstring for the anatomy."""
    if region is not None and region not in REGIONS:
        raise LoraIqaError(f"anatomy: region must be one of {', '.join(REGIONS)} (or None), got {region!r}")
    size = int(size)
    px = float(spacing_mm)
    if size < 16 or not (0.05 <= px <= 5.0):
        raise LoraIqaError(f"anatomy: size must be >= 16 px and spacing_mm in 0.05..5, got {size}, {spacing_mm}")
    if region is None:
        region = REGIONS[int(rng.choice(len(REGIONS), p=_REGION_P))]
    zoom = bool(rng.random() < ZOOM_P)
    cv, body, body_cov, organs, extra, roi, inside = _BUILDERS[region](rng, size, px, zoom)
    circle = _circle(size)
    les, found = _lesions(cv, rng, organs, circle)
    hu = np.where(circle, np.clip(cv.hu, -1000.0, 3000.0), -1000.0)
    les = np.where(circle, les, 0.0)
    nc = max(1, int(circle.sum()))
    info = {
        "region": region,
        **extra,
        "body_width_mm": round(2 * body.a, 2),
        "body_depth_mm": round(body.b + body.bp, 2),
        "zoom": bool(inside),
        "roi": roi,
        "center_mm": [round(cv.cx, 2), round(cv.cy, 2)],
        "fov_mm": round(size * px, 2),
        "spacing_mm": px,
        "tilt_deg": round(math.degrees(math.atan2(cv.sin, cv.cos)), 2),
        "fill": round(float(np.count_nonzero(hu[circle] > -500.0)) / nc, 4),
        "body_fraction": round(float(np.count_nonzero(body_cov[circle] > 0.5)) / nc, 4),
        "lesions": found,
    }
    return hu, les, info


_BUILDERS["abdomen"] = _abdomen


# --- chest --------------------------------------------------------------------------------------------

_LUNG = 20  # label of the lungs (lesion-eligible with a small weight: a field may show lung alone)
_LABEL_NAMES[_LUNG] = "lung"


def _chest(rng, size, px, zoom):
    u = rng.uniform
    fov = size * px
    body, t_skin, t_sc, t_m = _torso_frame(rng, "chest", fov, zoom, (0.6, 0.74), (2.0, 2.4), (3, 8), (8, 30),
                                           (13, 18), (0.1, 0.4), (-0.3, 0.1), rect=0.4, back=1.6)
    inset = _cavity_star(body, t_skin, t_sc, t_m)

    def cav_r(th):
        return float(body.radius(th) - inset(th))

    a_c = (cav_r(0.0) + cav_r(math.pi)) / 2
    b_c, bp_c = cav_r(-math.pi / 2), cav_r(math.pi / 2)
    s = float(np.clip(a_c / 120, 0.85, 1.15)) * u(0.92, 1.08)
    level = "upper" if rng.random() < 0.35 else "mid"
    contrast = bool(rng.random() < 0.5)
    y_tip = bp_c + float(t_m(math.pi / 2)) - u(3, 8)
    y_v = y_tip - 58 * s
    rois = {"spine": (0.0, y_v + 20 * s), "lung_r": (-0.5 * a_c, 0.0), "lung_l": (0.5 * a_c, 0.0),
            "mediastinum": (0.0, -0.3 * b_c)}
    if level == "mid":
        rois["heart"] = (0.15 * a_c, -0.2 * b_c)
    center, roi, inside = _place_field(rng, body, fov, rois, zoom)
    cv = _Canvas(rng, size, px, center, math.radians(u(-4, 4)))
    T = _Tissue(cv, rng, contrast)
    F = cv.F
    torso = _Torso(cv, T, body, t_skin, t_sc, t_m, planes=u(0.0, 0.6), fascia=u(0.3, 0.6))
    if rng.random() < 0.75:
        _table(cv, rng, body, torso.body_cov)
    if rng.random() < 0.4:
        _breasts(cv, T, rng, torso)
    lung_cav = cv.full_cov(body, inset=lambda th: inset(th) + 1.5)
    # --- lungs, with a gravity-dependent density gradient and fine texture
    mu, grad = u(-875, -840), u(30, 110)
    depth = b_c + bp_c
    lungs = []
    for side in (-1, 1):
        st = _Star(side * 0.5 * a_c * u(0.95, 1.05), 0.05 * bp_c, 0.54 * a_c, 0.5 * depth * u(0.98, 1.05),
                   p=u(2.0, 2.6), harm=_harm(rng, 4, 0.03))
        lungs.append(st)

        def lval(bb):
            return mu + grad * (cv.Y[bb] + b_c) / depth + 12.0 * F["f1"][bb] + 10.0 * F["m2"][bb] + 12.0 * F["c1"][bb]

        cv.star(st, lval, lab=_LUNG, clip=lung_cav)
    lmask = (cv.lab == _LUNG).astype(float)
    # --- spine and posterior mediastinum
    y_b, vw, vd, y_can = _spine_block(cv, T, rng, torso, y_tip, s, lumbar=False,
                                      clip=torso.muscle_in * (1.0 - torso.cav_cov))
    # costovertebral ribs: from the transverse processes along the back of the cavity
    for side in (-1, 1):
        if rng.random() < 0.7:
            th0 = math.pi / 2 - side * u(0.25, 0.4)
            pts = [(side * (vw + 8 * s), y_can)] + [torso.inset_point(t, torso.wall_depth(t, 0.8))
                                                     for t in np.linspace(th0, th0 - side * u(0.3, 0.6), 3)]
            cv.path(pts, u(3.5, 4.5) * s, T.cortex, lab=0)
            cv.path(pts, u(2.0, 3.0) * s, T.bone_tex())
    env_top, env_bot = -b_c * u(0.9, 1.0), y_b - vd - u(2, 8)
    env_w = (u(0.3, 0.4) if level == "mid" else u(0.18, 0.26)) * a_c
    cv.star(_Star(u(-0.02, 0.06) * a_c, (env_top + env_bot) / 2, env_w, (env_bot - env_top) / 2, p=u(1.8, 2.2),
                  harm=_harm(rng, 4, 0.05)), T.fat_tex(0.5), lab=0, clip=torso.cav_cov)
    r_ao = u(10, 14) * s
    dax, day = u(14, 24) * s, y_b - vd * u(0.0, 0.5)
    cv.ellipse(dax, day, r_ao + 6, r_ao + 4, T.fat_tex(0.3), lab=0)
    cv.ellipse(u(-4, 6), y_b - vd - 7 * s, 11 * s, 8 * s, T.fat_tex(0.3), lab=0)
    cv.ellipse(dax, day, r_ao, r_ao, T.blood, lab=0)
    if rng.random() < 0.35:
        a0 = u(0, 2 * math.pi)
        cv.path(_arc(dax, day, r_ao - 0.3, a0, a0 + u(0.3, 1.2)), u(0.6, 1.2), u(400, 900))
    ex, ey = u(-4, 6), y_b - vd - 7 * s
    cv.ellipse(ex, ey, u(6, 9) * s, u(5, 7) * s, cv.tex(u(35, 45), m1=2.0), lab=0)  # esophagus
    if rng.random() < 0.4:
        cv.ellipse(ex, ey, u(1.0, 3.0), u(1.0, 2.5), -990.0)
    cv.ellipse(-u(8, 14) * s, y_b - vd * u(0.2, 0.8), u(3, 5), u(3, 5), T.vein, lab=0)  # azygos
    # --- anterior and middle mediastinum
    organs = [(_MUSCLE, 0.3), (_BREAST, 0.3), (_LUNG, 0.03)]
    if level == "mid":
        _heart(cv, T, rng, a_c, b_c, bp_c, env_top, env_bot, contrast)
        organs.append((_HEART, 0.5))
    else:
        _great_vessels(cv, T, rng, a_c, b_c, env_top, env_bot, y_b - vd, dax, day, r_ao, s)
    # --- lung vessels, bronchi and fissures from the hila
    lmask = (cv.lab == _LUNG).astype(float)
    hy = env_top + (env_bot - env_top) * u(0.45, 0.65)
    vessel = T.blood if contrast else u(35, 45)
    for side, lung in zip((-1, 1), lungs):
        hx = side * (env_w * u(0.7, 1.0) + 3)
        if rng.random() < 0.5:  # major fissure
            f0 = (side * 0.1 * a_c + lung.cx * 0.3, bp_c * u(0.5, 0.8))
            f2 = (lung.cx + side * lung.a * u(0.5, 0.9), -b_c * u(0.0, 0.4))
            f1 = ((f0[0] + f2[0]) / 2 + side * u(5, 20), (f0[1] + f2[1]) / 2)
            cv.path(_bezier(f0, f1, f2, 6), u(0.25, 0.45), u(-500, -300), clip=lmask)
        segs = []
        for ang in np.linspace(-1.3, 1.3, int(rng.integers(4, 7))) + u(-0.2, 0.2):
            a = float(ang) if side > 0 else math.pi - float(ang)
            _vessel_tree(rng, hx, hy, a, u(14, 26) * s, u(2.5, 4.0) * s, 4, 0.55, segs)
        for x0, y0, x1, y1, r0, _ in segs[:: max(1, len(segs) // 4)][:4]:  # bronchi beside the first branches
            if r0 > 2.0 and rng.random() < 0.7:
                ox, oy = (y1 - y0), -(x1 - x0)
                n_ = math.hypot(ox, oy) + 1e-9
                off = (r0 + 2.5) / n_
                cv.capsule(x0 + ox * off, y0 + oy * off, x1 + ox * off, y1 + oy * off, r0 * 0.9 + 1.2, u(-50, 60), clip=lmask)
                cv.capsule(x0 + ox * off, y0 + oy * off, x1 + ox * off, y1 + oy * off, r0 * 0.9, -990.0, clip=lmask)
        _draw_tree(cv, segs, vessel, u(0.35, 0.6), lmask, rng, r_min=0.4)
    # vessel cross-sections: blobs of a fine field, larger near the hila
    lb = cv.bbox(0.0, 0.0, body.extent())
    if lb is not None:
        X, Y = cv.xy(lb)
        dist = np.minimum(np.hypot(X + env_w, Y - hy), np.hypot(X - env_w, Y - hy))
        near = np.exp(-dist / (40 * s))
        blob = np.maximum(_smoothstep((F["f2"][lb] - 2.3 + 0.6 * near) * 1.5),
                          near * _smoothstep((F["m1"][lb] - 2.0) * 1.5))
        cv.paint(lb, blob * lmask[lb], vessel)
    # --- chest wall bones: ribs, costal cartilage, sternum, scapulae
    s_r = [(-1.3, 1.2), (math.pi - 1.2, math.pi + 1.3)]
    _ribs(cv, T, rng, torso, int(rng.integers(8, 14)), s_r, (2.5, 3.8), s, depth_f=u(0.75, 0.9), length=(10, 30))
    _ribs(cv, T, rng, torso, int(rng.integers(1, 4)), [(-1.35, -1.05), (-2.1, -1.8)], (3.0, 4.0), s, cartilage=True,
          depth_f=0.8)
    sx, sy = torso.inset_point(-math.pi / 2, torso.wall_depth(-math.pi / 2, u(0.6, 0.8)))
    sw, sd = u(12, 20) * s, u(5, 8) * s
    cv.ellipse(sx, sy, sw, sd, T.cortex, lab=0)
    cv.ellipse(sx, sy, sw - 1.5, sd - 1.5, T.bone_tex())
    if rng.random() < 0.7:
        for side in (-1, 1):
            th0 = math.pi / 2 - side * u(0.6, 0.95)
            dep = torso.wall_depth(th0, u(0.2, 0.45))
            pts = [torso.inset_point(t, dep) for t in np.linspace(th0 - 0.3, th0 + 0.3, 5)]
            cv.path(pts, u(2.0, 3.2), T.cortex, lab=0, r_end=u(1.2, 2.0))
            cv.path(pts[:2], u(1.0, 1.8), T.bone_tex())
    info = {"level": level, "phase": "contrast" if contrast else "native"}
    return cv, body, torso.body_cov, organs, info, roi, inside


def _breasts(cv, T, rng, torso):
    u = rng.uniform
    r = u(30, 65)
    F = cv.F
    for side in (-1, 1):
        th = -math.pi / 2 + side * u(0.45, 0.75)
        bx, by = torso.inset_point(th, u(0.05, 0.25) * r)
        st = _Star(bx, by, r * u(1.0, 1.3), r * u(0.55, 0.75), rot=side * u(0.3, 0.7), harm=_harm(rng, 4, 0.04))
        keep = 1.0 - torso.muscle_in
        cv.star(st, T.skin, lab=0, clip=keep)
        cv.star(st, T.fat_tex(), clip=keep, inset=u(1.5, 2.5))
        thr = u(-0.5, 1.0)
        gland = u(20, 45)
        gx, gy = torso.inset_point(th, torso.wall_depth(th, 0.0) * 0.3 - 0.1 * r)

        def gval(bb, thr=thr, gland=gland):
            g = _smoothstep((F["c1"][bb] * 0.8 + F["m1"][bb] * 0.4 - thr) * 1.5 + 0.5)
            return T.fat + (gland - T.fat) * g + 3.0 * F["m2"][bb]

        cv.ellipse(gx, gy, r * 0.55, r * 0.4, gval, rot=st.rot, lab=_BREAST, clip=keep)


def _heart(cv, T, rng, a_c, b_c, bp_c, env_top, env_bot, contrast):
    u = rng.uniform
    hx, hy = u(0.1, 0.2) * a_c, env_top + (env_bot - env_top) * u(0.38, 0.5)
    ah, bh = u(0.3, 0.4) * a_c, (env_bot - env_top) * u(0.3, 0.38)
    rot = -u(0.3, 0.7)
    cv.star(_Star(hx, hy, ah + u(4, 12), bh + u(3, 9), rot=rot, harm=_harm(rng, 4, 0.05)), T.fat_tex(0.3), lab=0)
    heart = _Star(hx, hy, ah, bh, rot=rot, harm=_harm(rng, 4, 0.03))
    myo = u(100, 130) if contrast else u(40, 50)
    cv.star(heart, cv.tex(myo, m1=2.5), lab=_HEART)
    c, s_ = math.cos(rot), math.sin(rot)

    def at(fa, fb):
        return hx + c * fa * ah - s_ * fb * bh, hy + s_ * fa * ah + c * fb * bh

    blood = T.blood if contrast else u(36, 44)
    # atrioventricular and interventricular grooves: epicardial fat with coronary arteries
    for (fa, fb), rr in (((-0.05, -0.95), 4.0), ((-0.55, 0.6), 4.0), ((0.45, 0.75), 3.5)):
        x, y = at(fa, fb)
        cv.ellipse(x, y, rr + u(2, 5), rr + u(1, 3), T.fat, lab=0)
        calc = rng.random() < 0.2
        cv.ellipse(x, y, rr * 0.6, rr * 0.6, u(300, 800) if calc else blood, lab=0)
    if contrast:
        lx, ly = at(0.3, 0.15)
        cv.ellipse(lx, ly, 0.42 * ah, 0.42 * bh, blood * u(0.95, 1.1), rot=rot, lab=0)  # LV (wall = myocardium)
        rx, ry = at(-0.15, -0.45)
        cv.ellipse(rx, ry, 0.5 * ah, 0.28 * bh, blood * u(0.7, 1.0), rot=rot - 0.2, lab=0)  # RV
        ax, ay = at(-0.75, 0.25)
        cv.ellipse(ax, ay, 0.3 * ah, 0.4 * bh, blood * u(0.6, 0.9), rot=rot, lab=0)  # RA
        la_x, la_y = at(-0.1, 0.85)
        cv.ellipse(la_x, la_y, 0.35 * ah, 0.22 * bh, blood * u(0.95, 1.05), rot=rot, lab=0)  # LA


def _great_vessels(cv, T, rng, a_c, b_c, env_top, env_bot, y_vert, dax, day, r_ao, s):
    u = rng.uniform
    blood = T.blood
    y0 = env_top + (env_bot - env_top) * u(0.25, 0.4)
    if rng.random() < 0.5:  # aortic arch running back to the descending aorta
        pts = _bezier((u(-15, -5) * s, y0), (u(5, 15) * s, y0 + u(0, 10)), (dax, day), 6)
        cv.path(pts, r_ao + 6, T.fat_tex(0.3), lab=0)
        cv.path(pts, r_ao * u(1.0, 1.2), blood, lab=0)
    else:
        cv.ellipse(u(-12, -2) * s, y0, r_ao * 1.2 + 5, r_ao * 1.2 + 5, T.fat_tex(0.3), lab=0)
        cv.ellipse(u(-12, -2) * s, y0, r_ao * 1.25, r_ao * 1.25, blood, lab=0)  # ascending aorta
        px_, py_ = u(14, 24) * s, y0 + u(-4, 6)
        cv.path([(px_, py_), (px_ + u(10, 20) * s, py_ + u(15, 25) * s)], u(10, 14) * s, T.vein, lab=0)  # pulmonary artery
    cv.ellipse(-u(24, 34) * s, y0 + u(-5, 10), u(8, 11) * s, u(8, 11) * s, T.vein, lab=0)  # SVC
    tx, ty = u(-8, 2) * s, y_vert - u(12, 18) * s  # trachea
    tr = u(8, 11) * s
    cv.ellipse(tx, ty, tr + 1.8, tr + 1.5, cv.tex(u(60, 140), m1=8.0), lab=0)
    cv.ellipse(tx, ty, tr, tr * u(0.8, 0.95), -990.0, lab=0)
    if rng.random() < 0.6:  # thymic remnant in the anterior fat
        cv.ellipse(u(-5, 10), env_top + u(8, 15), u(10, 20), u(4, 8), cv.tex(u(-60, 20), m1=10.0), lab=0)


_BUILDERS["chest"] = _chest


# --- head ---------------------------------------------------------------------------------------------


def _head(rng, size, px, zoom):
    u = rng.uniform
    fov = size * px
    lo, hi = _WIDTH["head"]
    need = fov * _ZOOM_NEED["head"]
    if zoom and need <= hi:
        W = u(max(lo, need), hi)
        L = W * u(1.12, 1.3)
    else:
        L = float(np.clip(fov / u(1.02, 1.15), lo * 1.12, hi * 1.3))
        W = float(np.clip(L / u(1.12, 1.3), lo, hi))
    a = W / 2
    head = _Star(0.0, 0.0, a, L / 2 * u(0.95, 1.0), L / 2 * u(1.0, 1.05), u(1.9, 2.1), u(2.1, 2.4),
                 harm=_harm(rng, 5, 0.012))
    t_skin, t_fat = u(1.5, 2.2), u(1.0, 3.5)
    t_musc = _Thick(u(1.0, 2.0), lat=u(2.0, 5.0), harm=_harm(rng, 3, 0.1))  # galea, temporalis laterally
    t_skull = _Thick(u(5.0, 7.5), ant=u(0.0, 0.4), post=u(0.0, 0.4), lat=u(-0.3, 0.0), harm=_harm(rng, 4, 0.06))
    atrophy = u(0, 1) ** 1.5
    t_csf = u(0.6, 1.5) + 2.5 * atrophy
    level = ("high", "ventricular", "basal")[int(rng.choice(3, p=(0.25, 0.4, 0.35)))]

    def skull_in(th):
        return t_skin + t_fat + t_musc(th) + t_skull(th)

    s = (a - 12.0) / 70.0
    rois = {"ventricles": (0.0, 0.0), "left": (0.35 * a, 0.0), "right": (-0.35 * a, 0.0), "posterior": (0.0, 0.35 * L / 2)}
    center, roi, inside = _place_field(rng, head, fov, rois, zoom)
    cv = _Canvas(rng, size, px, center, math.radians(u(-8, 8)))
    T = _Tissue(cv, rng, False)
    F = cv.F
    body_cov = cv.full_cov(head)
    if not inside and rng.random() < 0.6:  # head holder behind the occiput
        th0 = math.pi / 2 + u(-0.2, 0.2)
        pts = [(math.cos(t) * (head._radius1(t) + g), math.sin(t) * (head._radius1(t) + g))
               for g in [u(2, 12)] for t in np.linspace(th0 - 1.0, th0 + 1.0, 9)]
        cv.path(pts, u(1.0, 2.5), u(100, 400))
    bb = cv.bbox(0.0, 0.0, head.extent())
    X, Y = cv.xy(bb)
    rho, th = head.polar(X, Y)
    R = head.radius(th)
    cv.paint(bb, body_cov[bb], T.skin)
    cv.paint(bb, cv.cov(rho - (R - t_skin)), T.fat_tex(0.3, mu=u(-90, -60)))
    cv.paint(bb, cv.cov(rho - (R - t_skin - t_fat)), T.muscle_tex())
    r_sk = R - t_skin - t_fat - t_musc(th)
    tsk = t_skull(th)
    cv.paint(bb, cv.cov(rho - r_sk), T.cortex)
    outer = u(0.25, 0.35)
    cv.paint(bb, cv.cov(rho - (r_sk - outer * tsk)), T.bone_tex(marrow=u(250, 400), trab=u(700, 1000)))
    cv.paint(bb, cv.cov(rho - (r_sk - u(0.7, 0.8) * tsk)), T.cortex)
    r_in = r_sk - tsk
    cv.paint(bb, cv.cov(rho - r_in), u(2, 10))  # CSF
    r_br = r_in - t_csf
    gray, white = u(37, 42), u(27, 32)
    white = min(white, gray - 7)
    brain = np.zeros((cv.n, cv.n))
    brain[bb] = cv.cov(rho - r_br)
    cv.paint(bb, brain[bb], cv.tex(gray, m1=1.5, c2=1.0)(bb), lab=_BRAIN)
    # white matter: the brain minus the cortex and a gyral depth modulated by a coarse field
    t_gm = u(2.5, 3.5)
    depth = u(6, 11)
    g = depth * (0.55 + 0.35 * F["c1"][bb] + 0.2 * F["m2"][bb])
    wm_r = r_br - t_gm - g
    if level == "high":
        wm_r = wm_r - u(0, 8)
    cv.paint(bb, cv.cov(rho - wm_r), cv.tex(white, m2=1.5, c1=0.8)(bb))
    # sulci: CSF clefts with a cortical cuff, from the surface inwards, curving and sometimes branching
    csf = u(2, 10)
    n_sulci = int(rng.integers(28, 48))
    gtex = cv.tex(gray, m1=1.5)
    for th_i in np.linspace(-math.pi, math.pi, n_sulci, endpoint=False) + u(0, 0.2):
        t0 = float(th_i + u(-0.08, 0.08))
        if abs(math.cos(t0)) < 0.12 and rng.random() < 0.9:
            continue  # the interhemispheric fissure is drawn below
        r0 = head._radius1(t0) - skull_in(t0) - t_csf
        ln = u(6, 22) * (1.0 if level != "high" else 1.3)
        wd = u(0.3, 0.8) + 1.2 * atrophy * u(0.3, 1.0)
        ang, rr = t0 + math.pi + u(-0.5, 0.5), r0 + 1.0
        x, y = rr * math.cos(t0), rr * math.sin(t0)
        pts = [(x, y)]
        for _ in range(3):
            ang += u(-0.6, 0.6)
            x, y = x + ln / 3 * math.cos(ang), y + ln / 3 * math.sin(ang)
            pts.append((x, y))
        branch = None
        if rng.random() < 0.4:
            bx, by = pts[1]
            ba = ang + rng.choice([-1, 1]) * u(0.6, 1.2)
            branch = [(bx, by), (bx + ln / 3 * math.cos(ba), by + ln / 3 * math.sin(ba))]
        for pp in ([pts] if branch is None else [pts, branch]):
            cv.path(pp, wd + t_gm, gtex, r_end=t_gm * 0.8, clip=brain)
        for pp in ([pts] if branch is None else [pts, branch]):
            cv.path(pp, wd, csf, lab=0, r_end=0.25, clip=brain)
    # interhemispheric fissure and falx
    yf, yb = -head.b, head.bp
    segs = [(yf, yb)] if level == "high" else [(yf, -u(20, 32) * s), (u(30, 40) * s, yb)]
    falx = u(60, 100)
    for y0, y1 in segs:
        cv.capsule(0.0, y0, 0.0, y1, u(0.8, 1.8) + 1.5 * atrophy, csf, lab=0, clip=brain)
        cv.capsule(0.0, y0, 0.0, y1, u(0.35, 0.6), falx, lab=0, clip=brain)
        if rng.random() < 0.25:
            yc = u(y0, y1)
            cv.ellipse(0.0, yc, u(0.8, 1.5), u(2, 6), u(200, 600), lab=0)
    vs = s * (1.0 + 0.9 * atrophy) * u(0.85, 1.15)
    if level == "basal":
        _basal(cv, rng, s, vs, gray, white, csf, brain)
    elif level == "ventricular":
        for side in (-1, 1):  # caudate bodies lateral to the ventricles
            cv.path([(side * 9 * s, -22 * s), (side * 11 * s, -5 * s), (side * 13 * s, 10 * s)], 3.0 * s, cv.tex(gray - 1, m1=1.5),
                    r_end=1.5 * s)
        sep = u(1.5, 3.0)
        for side in (-1, 1):  # frontal horn tip anterolateral, body along the septum, atrium diverging
            pts = [(side * u(9, 13) * vs, -u(28, 34) * s), (side * (sep + 3 * vs), -u(16, 20) * s),
                   (side * (sep + 4 * vs), 2 * s), (side * u(9, 12) * vs, u(16, 20) * s), (side * u(15, 20) * s, u(28, 36) * s)]
            cv.path(pts[:2], u(1.5, 2.5) * vs, csf, lab=0, r_end=u(2.5, 3.5) * vs)
            cv.path(pts[1:], u(2.5, 3.5) * vs, csf, lab=0, r_end=u(2.5, 4.5) * vs)
            if rng.random() < 0.6:  # choroid plexus calcification in the atrium
                cv.ellipse(pts[-1][0] - side * 1.5, pts[-1][1] - 3, u(1.0, 2.5), u(1.0, 2.5), u(100, 300), lab=0)
    info = {"level": level, "phase": "native", "atrophy": round(float(atrophy), 3)}
    return cv, head, body_cov, [(_BRAIN, 1.0)], info, roi, inside


def _basal(cv, rng, s, vs, gray, white, csf, brain):
    """Basal ganglia level: frontal horns, third ventricle, caudate heads, lentiform nuclei, thalami,
    internal capsules (white, left between them), insula and Sylvian fissures."""
    u = rng.uniform
    for side in (-1, 1):
        cv.ellipse(side * u(24, 28) * s, -u(2, 8) * s, u(7, 10) * s, u(13, 17) * s, cv.tex(gray - u(2, 4), m1=1.5),
                   rot=-side * u(0.2, 0.4))  # lentiform nucleus
        cv.ellipse(side * u(9, 12) * s, -u(17, 22) * s, u(6, 8) * s, u(8, 10) * s, cv.tex(gray - 1, m1=1.5))  # caudate head
        cv.ellipse(side * u(9, 12) * s, u(9, 14) * s, u(8, 10) * s, u(10, 13) * s, cv.tex(gray - 1.5, m1=1.5))  # thalamus
        # insular cortex and Sylvian fissure
        ix = side * u(36, 42) * s
        cv.path([(ix, -u(14, 20) * s), (ix + side * 2, 0.0), (ix, u(10, 16) * s)], u(2.5, 3.5), cv.tex(gray, m1=1.5))
        cv.path([(ix + side * 3, u(-8, 0) * s), (ix + side * u(14, 22) * s, u(-16, -6) * s),
                 (ix + side * u(26, 34) * s, u(-20, -10) * s)], u(0.8, 1.6) * vs, csf, lab=0, clip=brain)
        # frontal horn: from the foramen of Monro near the midline, forwards and laterally to its tip
        cv.path([(side * u(2.0, 3.5) * vs, -u(8, 12) * s), (side * u(4, 6) * vs, -u(18, 22) * s),
                 (side * u(9, 13) * vs, -u(27, 32) * s)], u(2.0, 3.5) * vs, csf, lab=0, r_end=u(1.5, 2.5) * vs)
        if rng.random() < 0.6:  # occipital horn
            cv.path([(side * u(14, 18) * s, u(28, 34) * s), (side * u(16, 22) * s, u(40, 48) * s)], u(1.5, 3.5) * vs, csf,
                    lab=0, r_end=1.0)
    cv.capsule(0.0, -u(6, 10) * s, 0.0, u(6, 10) * s, u(1.0, 2.5) * vs, csf, lab=0)  # third ventricle
    if rng.random() < 0.5:  # pineal calcification
        cv.ellipse(0.0, u(14, 19) * s, u(1.5, 3.0), u(1.5, 3.0), u(100, 400), lab=0)


_BUILDERS["head"] = _head


# --- pelvis -------------------------------------------------------------------------------------------


def _pelvis(rng, size, px, zoom):
    u = rng.uniform
    fov = size * px
    body, t_skin, t_sc, t_m = _torso_frame(rng, "pelvis", fov, zoom, (0.58, 0.72), (2.1, 2.5), (6, 14), (15, 45),
                                           (9, 13), (1.2, 2.4), (0.6, 1.4))
    inset = _cavity_star(body, t_skin, t_sc, t_m)

    def cav_r(th):
        return float(body.radius(th) - inset(th))

    a_c = (cav_r(0.0) + cav_r(math.pi)) / 2
    b_c, bp_c = cav_r(-math.pi / 2), cav_r(math.pi / 2)
    s = float(np.clip(a_c / 125, 0.85, 1.15)) * u(0.92, 1.08)
    level = "iliac" if rng.random() < 0.5 else "acetabular"
    contrast = bool(rng.random() < 0.5)
    fx, fy = min(u(78, 95) * s, 0.75 * a_c), u(-0.1, 0.1) * b_c
    y_sac = bp_c - u(12, 20) * s
    rois = {"sacrum": (0.0, y_sac)} if level == "iliac" else {"bladder": (0.0, -0.3 * b_c), "hip_r": (-fx, fy),
                                                               "hip_l": (fx, fy)}
    center, roi, inside = _place_field(rng, body, fov, rois, zoom)
    cv = _Canvas(rng, size, px, center, math.radians(u(-4, 4)))
    T = _Tissue(cv, rng, contrast)
    torso = _Torso(cv, T, body, t_skin, t_sc, t_m, planes=u(0.3, 0.8), linea=u(1.0, 3.0), fascia=u(0.3, 0.6), n_planes=1)
    if rng.random() < 0.75:
        _table(cv, rng, body, torso.body_cov)
    cav = torso.cav_cov
    cav_star = _Region(body, inset)
    organs = [(_MUSCLE, 0.3)]
    bone = T.bone_tex()
    sh = u(1.0, 1.8)
    if level == "iliac":
        sw, sd = u(42, 52) * s, u(14, 19) * s
        for side in (-1, 1):
            # psoas and iliacus, gluteal muscles outside the wing
            cv.ellipse(side * u(0.45, 0.6) * sw, y_sac - sd - u(14, 22) * s, u(12, 18) * s, u(11, 15) * s,
                       T.muscle_tex(), lab=_MUSCLE)
            p0 = (side * (sw + u(2, 4)), y_sac + u(-4, 4))
            p2 = (side * u(0.72, 0.88) * a_c, -u(0.3, 0.55) * b_c)
            p1 = (side * u(0.6, 0.72) * a_c, (p0[1] + p2[1]) / 2 + u(0, 10) * s)
            wing = _bezier(p0, p1, p2, 7)
            inner = [(x - side * u(11, 14) * s, y - 6 * s) for x, y in wing[1:]]
            cv.path(inner, u(9, 13) * s, T.muscle_tex(), lab=_MUSCLE, clip=cav)
            cv.path([(x + side * 10 * s, y + 4 * s) for x, y in wing], u(10, 14) * s, T.muscle_tex(fatty=20), lab=_MUSCLE,
                    clip=torso.muscle_in)
            r0, r1 = u(7, 10) * s, u(2.5, 3.8) * s
            cv.path(wing, r0, T.cortex, lab=0, r_end=r1)
            cv.path(wing, r0 - sh, bone, r_end=max(r1 - sh, 0.6))
            # iliac vessels in front of the sacral ala
            vx, vy = side * u(0.5, 0.75) * sw, y_sac - sd - u(28, 40) * s
            cv.ellipse(vx, vy, u(4, 6) * s, u(4, 6) * s, T.blood, lab=0)
            cv.ellipse(vx + side * u(4, 8), vy + u(6, 10), u(5, 8) * s, u(4, 6) * s, T.vein, lab=0)
        sac = _Star(0.0, y_sac, sw, sd, sd * 0.9, p=u(2.4, 3.0), harm=_harm(rng, 4, 0.03))
        cv.star(sac, T.cortex, lab=0)
        cv.star(sac, bone, inset=sh)
        cv.ellipse(0.0, y_sac + sd * 0.3, u(7, 10) * s, u(4, 6) * s, u(5, 20), lab=0)  # sacral canal
        for side in (-1, 1):  # anterior sacral foramina
            cv.ellipse(side * u(14, 20) * s, y_sac - sd * 0.2, u(2.5, 4), u(2.5, 4), u(-40, 20), lab=0)
        obst = [_Star(0.0, y_sac, sw + 25, sd + 30), _Star(-0.8 * a_c, 0.0, 40, 60), _Star(0.8 * a_c, 0.0, 40, 60)]
        loops = _place_loops(rng, int(rng.integers(8, 18)), cav_star, obst, (9 * s, 15 * s))
        oral = rng.random() < 0.2
        for x, y, r in loops:
            q = rng.random()
            kind = "oral" if oral and q < 0.6 else ("feces" if q < 0.25 else ("gas" if q < 0.4 else "fluid"))
            _bowel(cv, T, rng, x, y, r * u(1.0, 1.7), r * u(0.7, 1.0), u(0, 2 * math.pi), kind, tube=rng.random() < 0.45)
        if rng.random() < 0.3:
            _bladder(cv, T, rng, 0.0, -0.6 * b_c, u(20, 35) * s, u(12, 22) * s, cav)
            organs.append((_BLADDER, 0.4))
    else:
        rh = u(21, 26) * s
        for side in (-1, 1):
            hx = side * fx
            # iliopsoas, femoral vessels, obturator internus, greater trochanter
            cv.ellipse(hx - side * 4, fy - rh - u(10, 16) * s, u(12, 17) * s, u(9, 12) * s, T.muscle_tex(), lab=_MUSCLE)
            cv.ellipse(hx - side * u(22, 30) * s, fy - rh - u(12, 18) * s, u(4, 5.5) * s, u(4, 5.5) * s, T.blood, lab=0)
            cv.ellipse(hx - side * u(33, 40) * s, fy - rh - u(10, 16) * s, u(5, 7) * s, u(4.5, 6) * s, T.vein, lab=0)
            cv.path([(hx - side * (rh + 10), fy - rh * 0.6), (hx - side * (rh + 14), fy + rh * 0.4),
                     (hx - side * (rh + 8), fy + rh * 1.2)], u(5, 8) * s, T.muscle_tex(), lab=_MUSCLE)
            if rng.random() < 0.5:
                tx = hx + side * (rh + u(22, 32) * s)
                cv.ellipse(tx, fy + u(0, 10), u(10, 15) * s, u(12, 17) * s, T.cortex, lab=0, clip=torso.muscle_in)
                cv.ellipse(tx, fy + u(0, 10), u(10, 15) * s - sh, u(12, 17) * s - sh, bone, clip=torso.muscle_in)
            # acetabulum: bone around the medial side of the head, anterior and posterior columns
            med = 0.0 if side < 0 else math.pi  # direction towards the midline
            cols = [((hx - side * (rh + 4), fy - rh * 0.6), (hx - side * u(38, 48) * s, fy - rh - u(8, 18) * s), u(5, 8) * s),
                    ((hx - side * (rh + 2), fy + rh * 0.6), (hx - side * u(35, 45) * s, fy + rh + u(12, 24) * s), u(8, 11) * s)]
            for (x0, y0), (x1, y1), r in cols:
                cv.capsule(x0, y0, x1, y1, r, T.cortex, lab=0)
                cv.capsule(x0, y0, x1, y1, r - sh, bone)
            ta = u(7, 11) * s
            arc = _arc(hx, fy, rh + 2.5 + ta / 2, med - u(1.4, 1.8), med + u(1.4, 1.8), 7)
            cv.path(arc, ta / 2 + 1.0, T.cortex, lab=0)
            cv.path(arc, ta / 2 + 1.0 - sh, bone)
            cv.ellipse(hx, fy, rh + u(2.0, 3.0), rh + u(2.0, 3.0), cv.tex(u(25, 45), m1=3.0), lab=0)  # joint space
            cv.ellipse(hx, fy, rh, rh, T.cortex, lab=0)
            cv.ellipse(hx, fy, rh - sh, rh - sh, T.bone_tex(trab=T.trab * u(1.0, 1.2)))
            if rng.random() < 0.5:  # fovea capitis
                cv.ellipse(hx - side * rh * 0.85, fy, u(2, 4), u(3, 5), cv.tex(40, m1=3.0))
        # coccyx / lower sacrum, rectum, bladder, prostate or uterus
        cyy = bp_c - u(10, 20) * s
        cv.ellipse(0.0, cyy, u(10, 18) * s, u(6, 9) * s, T.cortex, lab=0)
        cv.ellipse(0.0, cyy, u(10, 18) * s - sh, u(6, 9) * s - sh, bone)
        rx, ry, rr = u(-5, 5), cyy - u(22, 32) * s, u(12, 20) * s
        _bowel(cv, T, rng, rx, ry, rr, rr * u(0.8, 1.0), u(0, math.pi), "feces" if rng.random() < 0.6 else "gas")
        ba, bbb = u(30, 65) * s, u(22, 45) * s
        by = -b_c + bbb + u(5, 20)
        gy = (by + bbb + ry - rr) / 2
        female = rng.random() < 0.5
        ga, gb = (u(20, 35) * s, u(14, 22) * s) if female else (u(14, 20) * s, u(11, 16) * s)
        gm = (u(80, 120) if contrast else u(40, 55)) if female else (u(35, 50) + (20 if contrast else 0))
        cv.ellipse(0.0, gy, ga, gb, cv.tex(gm, m1=3.0, c1=2.0), rot=u(-0.3, 0.3), lab=_GLAND, clip=cav)
        if not female and rng.random() < 0.4:  # prostatic calcifications
            for _ in range(int(rng.integers(1, 4))):
                cv.ellipse(u(-0.5, 0.5) * ga, gy + u(-0.5, 0.5) * gb, u(0.8, 2), u(0.8, 2), u(150, 500))
        _bladder(cv, T, rng, u(-5, 5), by, ba, bbb, cav)
        organs += [(_BLADDER, 0.4), (_GLAND, 0.5)]
    info = {"level": level, "phase": "contrast" if contrast else "native"}
    return cv, body, torso.body_cov, organs, info, roi, inside


def _bladder(cv, T, rng, x, y, a, b, cav):
    u = rng.uniform
    st = _Star(x, y, a, b, p=u(2.0, 2.6), harm=_harm(rng, 4, 0.04))
    cv.star(st, cv.tex(u(35, 45), m1=2.0), lab=0, clip=cav)
    urine = u(0, 15)
    if rng.random() < 0.15:  # excreted contrast layering posteriorly (dependent)
        yl, hi = y + b * u(0.2, 0.7), u(300, 900)

        def val(bb):
            t = _smoothstep((cv.Y[bb] - yl) / cv.px + 0.5)
            return urine + (hi - urine) * t
    else:
        val = cv.tex(urine, m1=1.5)
    cv.star(st, val, lab=_BLADDER, clip=cav, inset=u(2.0, 4.0))


_BUILDERS["pelvis"] = _pelvis
