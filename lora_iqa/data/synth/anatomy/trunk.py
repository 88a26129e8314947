"""The SYNTHETIC trunk: tissue values and textures (all regions), the trunk (outline, skin, fat,
muscle wall, cavity) with the CT table under it, and the organ labels."""

from __future__ import annotations

import math

import numpy as np

from lora_iqa.data.synth.anatomy.field import WIDTH, fit_width, place_field
from lora_iqa.data.synth.anatomy.shapes import Canvas, Star, Thick, harm, smoothstep

# lesion-eligible labels
LIVER, SPLEEN, KIDNEY, PANCREAS, MUSCLE, BRAIN, HEART, BLADDER, GLAND, BREAST = range(1, 11)
LUNG = 20  # lesion-eligible with a small weight: a field may show lung alone
LABEL_NAMES = {LIVER: "liver", SPLEEN: "spleen", KIDNEY: "kidney", PANCREAS: "pancreas", MUSCLE: "muscle", BRAIN: "brain",
               HEART: "heart", BLADDER: "bladder", GLAND: "prostate_uterus", BREAST: "breast", LUNG: "lung"}


class Tissue:
    """Per-slice tissue values (drawn once) and their textures."""

    def __init__(self, cv: Canvas, rng, contrast: bool):
        u = rng.uniform
        self.contrast = contrast
        self.fat, self.muscle, self.skin = float(u(-110, -85)), float(u(42, 58)), float(u(20, 50))
        self.blood = float(u(160, 250)) if contrast else float(u(36, 46))
        self.vein = float(u(140, 190)) if contrast else self.blood
        self.cortex, self.marrow, self.trab, self.septa = float(u(800, 1200)), float(u(30, 110)), float(u(380, 620)), float(u(15, 40))
        self.F = F = cv.F
        self._septa = np.exp(-(F["c2"] * u(9.0, 14.0)) ** 2)  # fat septa: sparse thin ridges of a coarse field
        self._trab_thr = float(u(0.0, 0.5))

    def fat_tex(self, amp=1.0, mu=None, vessels=False):
        """Fat with lobules (thin septa); with vessels, small bright dots (mesenteric vessels)."""
        F, s = self.F, self._septa
        m = self.fat if mu is None else mu
        sep = self.septa * amp
        dot = (self.blood if self.contrast else 40.0) - m

        def val(bb):
            v = m + 4.0 * F["c1"][bb] + 1.5 * F["f2"][bb] + sep * s[bb]
            if vessels:
                v = v + dot * smoothstep((F["f2"][bb] + 0.3 * F["c2"][bb] - 2.7) * 3.0)
            return v

        return val

    def muscle_tex(self, mu=None, fatty=0.0):
        F = self.F
        m = self.muscle if mu is None else mu

        def val(bb):
            v = m + 3.0 * F["m2"][bb] + 2.0 * F["c2"][bb] + 1.5 * F["f1"][bb]
            return v - fatty * smoothstep(F["m1"][bb] - 1.2) if fatty else v

        return val

    def bone_tex(self, marrow=None, trab=None):
        """Trabecular bone: thresholded fine field, trabeculae over marrow."""
        F, thr = self.F, self._trab_thr
        mo = self.marrow if marrow is None else marrow
        tb = self.trab if trab is None else trab

        def val(bb):
            t = smoothstep((F["f1"][bb] + 0.35 * F["m2"][bb] - thr) * 1.2 + 0.5)
            return mo + (tb - mo) * t + 15.0 * F["c1"][bb]

        return val


class Torso:
    """A trunk: body outline (superellipse, flatter back) with skin, subcutaneous fat and a muscle wall whose
    thicknesses vary around it, and the cavity inside. Drawn first (the body width is fitted to the field);
    :meth:`open` then places the field, makes the canvas and paints the trunk. ``arr``: measure the cavity
    through the outlines' array arithmetic, not the scalar one (the abdomen's; they may differ in the last bit)."""

    def __init__(self, rng, region, size, px, zoom, depth_ratio, p_range, sc_lean, sc_obese, tm0, tm_post, tm_lat,
                 rect=0.0, back=0.0, s_ref=125.0, arr=False):
        u = rng.uniform
        self.size, self.px, self.zoom, self.fov = size, px, zoom, size * px
        W = fit_width(rng, region, self.fov, zoom)
        lo, hi = WIDTH[region]
        D = W * u(*depth_ratio)
        p = u(*p_range)
        self.body = Star(0.0, 0.0, W / 2, D / 2 * u(1.0, 1.08), D / 2 * u(0.9, 0.98), p, p + u(0.2, 0.9), 0.0,
                         harm(rng, 5, 0.015))
        obese = float(np.clip((W - lo) / (hi - lo), 0, 1)) * u(0.6, 1.2)
        self.t_skin = u(1.5, 2.5)
        self.t_sc = Thick(u(*sc_lean) + obese * u(*sc_obese), ant=u(0, 0.6), post=u(-0.3, 0.3), lat=u(-0.3, 0.4),
                          harm=harm(rng, 4, 0.08))
        self.t_m = Thick(u(*tm0), ant=u(-0.3, 0.0), post=u(*tm_post), lat=u(*tm_lat), harm=harm(rng, 4, 0.06),
                         rect=rect * u(0.6, 1.2), rect_w=u(0.25, 0.4), back=back * u(0.8, 1.2), back_w=u(0.3, 0.4))
        f = np.array if arr else float

        def cav_r(th):
            return float(self.body(f(th)) - self.inset(f(th)))

        self.a_c = (cav_r(0.0) + cav_r(math.pi)) / 2  # cavity half-width, anterior and posterior half-depths
        self.b_c, self.bp_c = cav_r(-math.pi / 2), cav_r(math.pi / 2)
        self.s = float(np.clip(self.a_c / s_ref, 0.85, 1.15)) * u(0.92, 1.08)  # the scale of the organs

    def inset(self, th):
        """Depth of the cavity below the skin at body angle th."""
        return self.t_skin + self.t_sc(th) + self.t_m(th)

    def inset_point(self, th, depth):
        """A point at the given depth (mm) below the skin along body angle th."""
        r = float(self.body(float(th))) - depth
        return self.body.cx + r * math.cos(th), self.body.cy + r * math.sin(th)

    def wall_depth(self, th, f):
        """Depth (mm from the skin) of the fraction f through the muscle wall at angle th."""
        th = np.array(th)
        return float(self.t_skin + self.t_sc(th) + f * self.t_m(th))

    def sample(self, rng):
        """A point of the body's bounding box."""
        return float(rng.uniform(-self.body.a, self.body.a)), float(rng.uniform(-self.body.b, self.body.bp))

    def in_cavity(self, x, y, margin):
        return self.body.d1(x, y, self.inset) < -margin

    def open(self, rng, rois, contrast, planes, linea=None, n_planes=2):
        """(canvas, tissues) of the field placed on the rois, with the trunk painted and (p = 0.75) the table."""
        u = rng.uniform
        center, self.roi, self.inside = place_field(rng, self.body, self.fov, rois, self.zoom)
        cv = Canvas(rng, self.size, self.px, center, math.radians(u(-4, 4)))
        T = Tissue(cv, rng, contrast)
        self._paint(cv, T, u(*planes), u(*linea) if linea else 0.0, u(0.3, 0.6), n_planes)
        if rng.random() < 0.75:
            _table(cv, rng, self.body, self.body_cov)
        return cv, T

    def _paint(self, cv, T, planes, linea, fascia, n_planes):
        """Skin, subcutaneous fat (with a superficial fascia), the muscle wall with fat planes between the
        lateral muscles (and the linea alba), the cavity's visceral fat."""
        body, t_skin = self.body, self.t_skin
        self.body_cov, self.cav_cov, self.muscle_in = (np.zeros((cv.n, cv.n)) for _ in range(3))
        bb = cv.bbox(body.cx, body.cy, body.extent())
        if bb is None:
            return
        X, Y = cv.xy(bb)
        rho, th = body.polar(X, Y)
        R = body(th)
        sc, m = self.t_sc(th), self.t_m(th)
        c = self.body_cov[bb] = cv.cov(rho - R)
        cv.paint(bb, c, T.skin, lab=0)
        cv.paint(bb, cv.cov(rho - (R - t_skin)), T.fat_tex())
        fl = np.clip(1.0 - np.abs(rho - (R - t_skin - fascia * sc)) / max(0.5, 0.8 * cv.px), 0, 1)
        cv.paint(bb, fl * 0.5 * smoothstep(cv.F["c1"][bb] + 1.0), T.muscle)
        r_m = R - t_skin - sc
        c = self.muscle_in[bb] = cv.cov(rho - r_m)
        cv.paint(bb, c, T.muscle_tex(), lab=MUSCLE)
        if planes > 0:
            lat = smoothstep((np.abs(np.cos(th)) - 0.3) / 0.35) * planes
            for f in ((0.33, 0.66) if n_planes == 2 else (0.45,)):
                band = np.clip(1.0 - np.abs(rho - (r_m - f * m)) / max(0.6, 0.9 * cv.px), 0, 1) * lat
                cv.paint(bb, band, T.fat, lab=0)
        if linea:
            dx = np.abs((X - body.cx) * math.cos(body.rot) + (Y - body.cy) * math.sin(body.rot))
            gap = cv.cov(dx - linea) * (rho > r_m - m - 1.0) * (rho < r_m) * (np.sin(th) < -0.5)
            cv.paint(bb, gap, T.fat_tex(), lab=0)
        c = self.cav_cov[bb] = cv.cov(rho - (r_m - m))
        cv.paint(bb, c, T.fat_tex(vessels=True), lab=0)


def _table(cv, rng, body: Star, body_cov):
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
    for v0, v1, val in ((pad, pad + sk, skin), (pad + sk, pad + top - sk, u(-950, -850)), (pad + top - sk, pad + top, skin)):
        cv.paint(bb, band(v0, v1), val)
