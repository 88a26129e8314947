"""The SYNTHETIC head (see the package docstring): scalp, skull, grey and white matter with sulci, falx,
and the ventricles and deep grey nuclei of the level (high, ventricular, basal)."""

from __future__ import annotations

import math

import numpy as np

from lora_iqa.data.synth.anatomy.field import WIDTH, ZOOM_NEED, place_field
from lora_iqa.data.synth.anatomy.shapes import Canvas, Star, Thick, harm
from lora_iqa.data.synth.anatomy.trunk import BRAIN, Tissue


def head(rng, size, px, zoom):
    u = rng.uniform
    fov = size * px
    lo, hi = WIDTH["head"]
    if zoom and (need := fov * ZOOM_NEED["head"]) <= hi:
        W = u(max(lo, need), hi)
        L = W * u(1.12, 1.3)
    else:
        L = float(np.clip(fov / u(1.02, 1.15), lo * 1.12, hi * 1.3))
        W = float(np.clip(L / u(1.12, 1.3), lo, hi))
    a = W / 2
    hd = Star(0.0, 0.0, a, L / 2 * u(0.95, 1.0), L / 2 * u(1.0, 1.05), u(1.9, 2.1), u(2.1, 2.4), harm=harm(rng, 5, 0.012))
    t_skin, t_fat = u(1.5, 2.2), u(1.0, 3.5)
    t_musc = Thick(u(1.0, 2.0), lat=u(2.0, 5.0), harm=harm(rng, 3, 0.1))  # galea, temporalis laterally
    t_skull = Thick(u(5.0, 7.5), ant=u(0.0, 0.4), post=u(0.0, 0.4), lat=u(-0.3, 0.0), harm=harm(rng, 4, 0.06))
    atrophy = u(0, 1) ** 1.5
    t_csf = u(0.6, 1.5) + 2.5 * atrophy
    level = ("high", "ventricular", "basal")[int(rng.choice(3, p=(0.25, 0.4, 0.35)))]
    s = (a - 12.0) / 70.0
    rois = {"ventricles": (0.0, 0.0), "left": (0.35 * a, 0.0), "right": (-0.35 * a, 0.0), "posterior": (0.0, 0.35 * L / 2)}
    center, roi, inside = place_field(rng, hd, fov, rois, zoom)
    cv = Canvas(rng, size, px, center, math.radians(u(-8, 8)))
    T = Tissue(cv, rng, False)
    body_cov = cv.full_cov(hd)
    if not inside and rng.random() < 0.6:  # head holder behind the occiput
        th0 = math.pi / 2 + u(-0.2, 0.2)
        g = u(2, 12)
        cv.path([(math.cos(t) * (hd(t) + g), math.sin(t) * (hd(t) + g)) for t in np.linspace(th0 - 1.0, th0 + 1.0, 9)],
                u(1.0, 2.5), u(100, 400))
    bb = cv.bbox(0.0, 0.0, hd.extent())
    rho, th = hd.polar(*cv.xy(bb))
    R = hd(th)
    cv.paint(bb, body_cov[bb], T.skin)
    r_sk = R - t_skin - t_fat - t_musc(th)
    tsk = t_skull(th)
    r_in = r_sk - tsk
    for r, val in ((R - t_skin, T.fat_tex(0.3, mu=u(-90, -60))), (R - t_skin - t_fat, T.muscle_tex()), (r_sk, T.cortex),
                   (r_sk - u(0.25, 0.35) * tsk, T.bone_tex(marrow=u(250, 400), trab=u(700, 1000))),
                   (r_sk - u(0.7, 0.8) * tsk, T.cortex), (r_in, u(2, 10))):  # scalp, skull tables and diploe, CSF
        cv.paint(bb, cv.cov(rho - r), val)
    r_br = r_in - t_csf
    gray, white = u(37, 42), u(27, 32)
    white = min(white, gray - 7)
    brain = np.zeros((cv.n, cv.n))
    brain[bb] = cv.cov(rho - r_br)
    cv.paint(bb, brain[bb], cv.tex(gray, m1=1.5, c2=1.0)(bb), lab=BRAIN)
    # white matter: the brain minus the cortex and a gyral depth modulated by a coarse field
    t_gm = u(2.5, 3.5)
    wm_r = r_br - t_gm - u(6, 11) * (0.55 + 0.35 * cv.F["c1"][bb] + 0.2 * cv.F["m2"][bb])
    if level == "high":
        wm_r = wm_r - u(0, 8)
    cv.paint(bb, cv.cov(rho - wm_r), cv.tex(white, m2=1.5, c1=0.8)(bb))
    csf = u(2, 10)
    _sulci(cv, rng, hd, lambda t: t_skin + t_fat + t_musc(t) + t_skull(t), t_csf, level, atrophy, gray, t_gm, csf, brain)
    # interhemispheric fissure and falx (sometimes calcified)
    segs = [(-hd.b, hd.bp)] if level == "high" else [(-hd.b, -u(20, 32) * s), (u(30, 40) * s, hd.bp)]
    falx = u(60, 100)
    for y0, y1 in segs:
        cv.capsule(0.0, y0, 0.0, y1, u(0.8, 1.8) + 1.5 * atrophy, csf, lab=0, clip=brain)
        cv.capsule(0.0, y0, 0.0, y1, u(0.35, 0.6), falx, lab=0, clip=brain)
        if rng.random() < 0.25:
            cv.ellipse(0.0, u(y0, y1), u(0.8, 1.5), u(2, 6), u(200, 600), lab=0)
    vs = s * (1.0 + 0.9 * atrophy) * u(0.85, 1.15)  # the ventricles' scale
    if level == "basal":
        _basal(cv, rng, s, vs, gray, csf, brain)
    elif level == "ventricular":
        _ventricular(cv, rng, s, vs, gray, csf)
    info = {"level": level, "phase": "native", "atrophy": round(float(atrophy), 3)}
    return cv, hd, body_cov, [(BRAIN, 1.0)], info, roi, inside


def _sulci(cv, rng, hd, skull_in, t_csf, level, atrophy, gray, t_gm, csf, brain):
    """Sulci: CSF clefts with a cortical cuff, from the brain surface (t_csf inside the skull) inwards,
    curving and sometimes branching; wider with atrophy."""
    u = rng.uniform
    gtex = cv.tex(gray, m1=1.5)
    for th_i in np.linspace(-math.pi, math.pi, int(rng.integers(28, 48)), endpoint=False) + u(0, 0.2):
        t0 = float(th_i + u(-0.08, 0.08))
        if abs(math.cos(t0)) < 0.12 and rng.random() < 0.9:
            continue  # the interhemispheric fissure is drawn apart
        rr = hd(t0) - skull_in(t0) - t_csf + 1.0
        ln = u(6, 22) * (1.0 if level != "high" else 1.3)
        wd = u(0.3, 0.8) + 1.2 * atrophy * u(0.3, 1.0)
        ang = t0 + math.pi + u(-0.5, 0.5)
        x, y = rr * math.cos(t0), rr * math.sin(t0)
        pts = [(x, y)]
        for _ in range(3):
            ang += u(-0.6, 0.6)
            x, y = x + ln / 3 * math.cos(ang), y + ln / 3 * math.sin(ang)
            pts.append((x, y))
        paths = [pts]
        if rng.random() < 0.4:
            bx, by = pts[1]
            ba = ang + rng.choice([-1, 1]) * u(0.6, 1.2)
            paths.append([(bx, by), (bx + ln / 3 * math.cos(ba), by + ln / 3 * math.sin(ba))])
        for pp in paths:
            cv.path(pp, wd + t_gm, gtex, r_end=t_gm * 0.8, clip=brain)
        for pp in paths:
            cv.path(pp, wd, csf, lab=0, r_end=0.25, clip=brain)


def _ventricular(cv, rng, s, vs, gray, csf):
    """Ventricular level: caudate bodies beside the lateral ventricles (frontal horn tip anterolateral,
    body along the septum, atrium diverging), choroid plexus calcifications."""
    u = rng.uniform
    for side in (-1, 1):
        cv.path([(side * 9 * s, -22 * s), (side * 11 * s, -5 * s), (side * 13 * s, 10 * s)], 3.0 * s, cv.tex(gray - 1, m1=1.5),
                r_end=1.5 * s)
    sep = u(1.5, 3.0)
    for side in (-1, 1):
        pts = [(side * u(9, 13) * vs, -u(28, 34) * s), (side * (sep + 3 * vs), -u(16, 20) * s),
               (side * (sep + 4 * vs), 2 * s), (side * u(9, 12) * vs, u(16, 20) * s), (side * u(15, 20) * s, u(28, 36) * s)]
        cv.path(pts[:2], u(1.5, 2.5) * vs, csf, lab=0, r_end=u(2.5, 3.5) * vs)
        cv.path(pts[1:], u(2.5, 3.5) * vs, csf, lab=0, r_end=u(2.5, 4.5) * vs)
        if rng.random() < 0.6:
            cv.ellipse(pts[-1][0] - side * 1.5, pts[-1][1] - 3, u(1.0, 2.5), u(1.0, 2.5), u(100, 300), lab=0)


def _basal(cv, rng, s, vs, gray, csf, brain):
    """Basal ganglia level: frontal horns, third ventricle, caudate heads, lentiform nuclei, thalami,
    internal capsules (white, left between them), insula and Sylvian fissures, pineal calcification."""
    u = rng.uniform
    for side in (-1, 1):
        cv.ellipse(side * u(24, 28) * s, -u(2, 8) * s, u(7, 10) * s, u(13, 17) * s, cv.tex(gray - u(2, 4), m1=1.5),
                   rot=-side * u(0.2, 0.4))  # lentiform nucleus
        cv.ellipse(side * u(9, 12) * s, -u(17, 22) * s, u(6, 8) * s, u(8, 10) * s, cv.tex(gray - 1, m1=1.5))  # caudate head
        cv.ellipse(side * u(9, 12) * s, u(9, 14) * s, u(8, 10) * s, u(10, 13) * s, cv.tex(gray - 1.5, m1=1.5))  # thalamus
        ix = side * u(36, 42) * s  # insular cortex and Sylvian fissure
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
    if rng.random() < 0.5:
        cv.ellipse(0.0, u(14, 19) * s, u(1.5, 3.0), u(1.5, 3.0), u(100, 400), lab=0)
