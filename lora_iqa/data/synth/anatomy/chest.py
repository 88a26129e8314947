"""The SYNTHETIC chest (see the package docstring): lungs with vessel trees and bronchi, the mediastinum
with the heart (mid level) or the great vessels and trachea (upper level), spine, ribs and chest wall."""

from __future__ import annotations

import math

import numpy as np

from lora_iqa.data.synth.anatomy.parts import draw_tree, ribs, spine, vessel_tree, wall_calcs
from lora_iqa.data.synth.anatomy.shapes import Star, bezier, harm, smoothstep
from lora_iqa.data.synth.anatomy.trunk import BREAST, HEART, LUNG, MUSCLE, Torso


def chest(rng, size, px, zoom):
    u = rng.uniform
    tr = Torso(rng, "chest", size, px, zoom, (0.6, 0.74), (2.0, 2.4), (3, 8), (8, 30), (13, 18), (0.1, 0.4), (-0.3, 0.1),
               rect=0.4, back=1.6, s_ref=120.0)
    a_c, b_c, bp_c, s = tr.a_c, tr.b_c, tr.bp_c, tr.s
    level = "upper" if rng.random() < 0.35 else "mid"
    contrast = bool(rng.random() < 0.5)
    y_tip = bp_c + float(tr.t_m(math.pi / 2)) - u(3, 8)
    y_v = y_tip - 58 * s
    rois = {"spine": (0.0, y_v + 20 * s), "lung_r": (-0.5 * a_c, 0.0), "lung_l": (0.5 * a_c, 0.0),
            "mediastinum": (0.0, -0.3 * b_c)}
    if level == "mid":
        rois["heart"] = (0.15 * a_c, -0.2 * b_c)
    cv, T = tr.open(rng, rois, contrast, (0.0, 0.6))
    if rng.random() < 0.4:
        _breasts(cv, T, rng, tr)
    # lungs, with a gravity-dependent density gradient and fine texture
    lung_cav = cv.full_cov(tr.body, inset=lambda th: tr.inset(th) + 1.5)
    mu, grad, F = u(-875, -840), u(30, 110), cv.F
    depth = b_c + bp_c

    def lval(bb):
        return mu + grad * (cv.Y[bb] + b_c) / depth + 12.0 * F["f1"][bb] + 10.0 * F["m2"][bb] + 12.0 * F["c1"][bb]

    lungs = [Star(side * 0.5 * a_c * u(0.95, 1.05), 0.05 * bp_c, 0.54 * a_c, 0.5 * depth * u(0.98, 1.05), p=u(2.0, 2.6),
                  harm=harm(rng, 4, 0.03)) for side in (-1, 1)]
    for st in lungs:
        cv.star(st, lval, lab=LUNG, clip=lung_cav)
    env, aorta, y_front = _posterior(cv, T, rng, tr, level, y_tip)
    organs = [(MUSCLE, 0.3), (BREAST, 0.3), (LUNG, 0.03)]
    if level == "mid":
        _heart(cv, T, rng, a_c, env, contrast)
        organs.append((HEART, 0.5))
    else:
        _great_vessels(cv, T, rng, env, aorta, y_front, s)
    _lung_vessels(cv, T, rng, tr, lungs, env, contrast)
    # chest wall bones: ribs, costal cartilage, sternum, scapulae
    ribs(cv, T, rng, tr, int(rng.integers(8, 14)), [(-1.3, 1.2), (math.pi - 1.2, math.pi + 1.3)], (2.5, 3.8), s,
         depth_f=u(0.75, 0.9), length=(10, 30))
    ribs(cv, T, rng, tr, int(rng.integers(1, 4)), [(-1.35, -1.05), (-2.1, -1.8)], (3.0, 4.0), s, cartilage=True, depth_f=0.8)
    sx, sy = tr.inset_point(-math.pi / 2, tr.wall_depth(-math.pi / 2, u(0.6, 0.8)))
    sw, sd = u(12, 20) * s, u(5, 8) * s
    cv.ellipse(sx, sy, sw, sd, T.cortex, lab=0)
    cv.ellipse(sx, sy, sw - 1.5, sd - 1.5, T.bone_tex())
    if rng.random() < 0.7:
        for side in (-1, 1):
            th0 = math.pi / 2 - side * u(0.6, 0.95)
            dep = tr.wall_depth(th0, u(0.2, 0.45))
            pts = [tr.inset_point(t, dep) for t in np.linspace(th0 - 0.3, th0 + 0.3, 5)]
            cv.path(pts, u(2.0, 3.2), T.cortex, lab=0, r_end=u(1.2, 2.0))
            cv.path(pts[:2], u(1.0, 1.8), T.bone_tex())
    info = {"level": level, "phase": "contrast" if contrast else "native"}
    return cv, tr.body, tr.body_cov, organs, info, tr.roi, tr.inside


def _posterior(cv, T, rng, tr, level, y_tip):
    """Spine and costovertebral ribs, the mediastinal fat envelope, descending aorta, esophagus, azygos:
    ((top, bottom, half-width) of the envelope, (x, y, radius) of the aorta, front of the vertebral body)."""
    u = rng.uniform
    a_c, s = tr.a_c, tr.s
    y_b, vw, vd, y_can = spine(cv, T, rng, tr.muscle_in * (1.0 - tr.cav_cov), y_tip, s, lumbar=False)
    for side in (-1, 1):  # from the transverse processes along the back of the cavity
        if rng.random() < 0.7:
            th0 = math.pi / 2 - side * u(0.25, 0.4)
            pts = [(side * (vw + 8 * s), y_can)] + [tr.inset_point(t, tr.wall_depth(t, 0.8))
                                                     for t in np.linspace(th0, th0 - side * u(0.3, 0.6), 3)]
            cv.path(pts, u(3.5, 4.5) * s, T.cortex, lab=0)
            cv.path(pts, u(2.0, 3.0) * s, T.bone_tex())
    top, bot = -tr.b_c * u(0.9, 1.0), y_b - vd - u(2, 8)
    env_w = (u(0.3, 0.4) if level == "mid" else u(0.18, 0.26)) * a_c
    cv.star(Star(u(-0.02, 0.06) * a_c, (top + bot) / 2, env_w, (bot - top) / 2, p=u(1.8, 2.2), harm=harm(rng, 4, 0.05)),
            T.fat_tex(0.5), lab=0, clip=tr.cav_cov)
    r_ao = u(10, 14) * s
    dax, day = u(14, 24) * s, y_b - vd * u(0.0, 0.5)
    cv.ellipse(dax, day, r_ao + 6, r_ao + 4, T.fat_tex(0.3), lab=0)
    cv.ellipse(u(-4, 6), y_b - vd - 7 * s, 11 * s, 8 * s, T.fat_tex(0.3), lab=0)
    cv.ellipse(dax, day, r_ao, r_ao, T.blood, lab=0)
    if rng.random() < 0.35:
        wall_calcs(cv, rng, dax, day, r_ao - 0.3, 1, 1.2)
    ex, ey = u(-4, 6), y_b - vd - 7 * s
    cv.ellipse(ex, ey, u(6, 9) * s, u(5, 7) * s, cv.tex(u(35, 45), m1=2.0), lab=0)  # esophagus
    if rng.random() < 0.4:
        cv.ellipse(ex, ey, u(1.0, 3.0), u(1.0, 2.5), -990.0)
    cv.ellipse(-u(8, 14) * s, y_b - vd * u(0.2, 0.8), u(3, 5), u(3, 5), T.vein, lab=0)  # azygos
    return (top, bot, env_w), (dax, day, r_ao), y_b - vd


def _lung_vessels(cv, T, rng, tr, lungs, env, contrast):
    """Fissures, vessel trees and bronchi from the hila; vessel cross-sections (blobs of a fine field,
    larger near the hila)."""
    u, F = rng.uniform, cv.F
    a_c, s = tr.a_c, tr.s
    (top, bot, env_w), lmask = env, (cv.lab == LUNG).astype(float)
    hy = top + (bot - top) * u(0.45, 0.65)
    vessel = T.blood if contrast else u(35, 45)
    for side, lung in zip((-1, 1), lungs):
        hx = side * (env_w * u(0.7, 1.0) + 3)
        if rng.random() < 0.5:  # major fissure
            f0 = (side * 0.1 * a_c + lung.cx * 0.3, tr.bp_c * u(0.5, 0.8))
            f2 = (lung.cx + side * lung.a * u(0.5, 0.9), -tr.b_c * u(0.0, 0.4))
            f1 = ((f0[0] + f2[0]) / 2 + side * u(5, 20), (f0[1] + f2[1]) / 2)
            cv.path(bezier(f0, f1, f2, 6), u(0.25, 0.45), u(-500, -300), clip=lmask)
        segs = []
        for ang in np.linspace(-1.3, 1.3, int(rng.integers(4, 7))) + u(-0.2, 0.2):
            vessel_tree(rng, hx, hy, float(ang) if side > 0 else math.pi - float(ang), u(14, 26) * s, u(2.5, 4.0) * s, 4, 0.55,
                        segs)
        for x0, y0, x1, y1, r0, _ in segs[:: max(1, len(segs) // 4)][:4]:  # bronchi beside the first branches
            if r0 > 2.0 and rng.random() < 0.7:
                ox, oy = (y1 - y0), -(x1 - x0)
                off = (r0 + 2.5) / (math.hypot(ox, oy) + 1e-9)
                p = (x0 + ox * off, y0 + oy * off, x1 + ox * off, y1 + oy * off)
                cv.capsule(*p, r0 * 0.9 + 1.2, u(-50, 60), clip=lmask)
                cv.capsule(*p, r0 * 0.9, -990.0, clip=lmask)
        draw_tree(cv, segs, vessel, u(0.35, 0.6), lmask, rng, r_min=0.4)
    lb = cv.bbox(0.0, 0.0, tr.body.extent())
    if lb is not None:
        X, Y = cv.xy(lb)
        near = np.exp(-np.minimum(np.hypot(X + env_w, Y - hy), np.hypot(X - env_w, Y - hy)) / (40 * s))
        blob = np.maximum(smoothstep((F["f2"][lb] - 2.3 + 0.6 * near) * 1.5), near * smoothstep((F["m1"][lb] - 2.0) * 1.5))
        cv.paint(lb, blob * lmask[lb], vessel)


def _breasts(cv, T, rng, tr):
    """Breasts (skin, fat) with fibroglandular tissue (a thresholded coarse field)."""
    u, F = rng.uniform, cv.F
    r = u(30, 65)
    keep = 1.0 - tr.muscle_in
    for side in (-1, 1):
        th = -math.pi / 2 + side * u(0.45, 0.75)
        bx, by = tr.inset_point(th, u(0.05, 0.25) * r)
        st = Star(bx, by, r * u(1.0, 1.3), r * u(0.55, 0.75), rot=side * u(0.3, 0.7), harm=harm(rng, 4, 0.04))
        cv.star(st, T.skin, lab=0, clip=keep)
        cv.star(st, T.fat_tex(), clip=keep, inset=u(1.5, 2.5))
        thr, gland = u(-0.5, 1.0), u(20, 45)
        gx, gy = tr.inset_point(th, tr.wall_depth(th, 0.0) * 0.3 - 0.1 * r)

        def gval(bb, thr=thr, gland=gland):
            g = smoothstep((F["c1"][bb] * 0.8 + F["m1"][bb] * 0.4 - thr) * 1.5 + 0.5)
            return T.fat + (gland - T.fat) * g + 3.0 * F["m2"][bb]

        cv.ellipse(gx, gy, r * 0.55, r * 0.4, gval, rot=st.rot, lab=BREAST, clip=keep)


def _heart(cv, T, rng, a_c, env, contrast):
    """The heart in pericardial fat: myocardium, epicardial fat grooves with coronary arteries (or
    calcifications), and (contrast) the chambers."""
    u = rng.uniform
    top, bot, _ = env
    hx, hy = u(0.1, 0.2) * a_c, top + (bot - top) * u(0.38, 0.5)
    ah, bh = u(0.3, 0.4) * a_c, (bot - top) * u(0.3, 0.38)
    rot = -u(0.3, 0.7)
    cv.star(Star(hx, hy, ah + u(4, 12), bh + u(3, 9), rot=rot, harm=harm(rng, 4, 0.05)), T.fat_tex(0.3), lab=0)
    heart = Star(hx, hy, ah, bh, rot=rot, harm=harm(rng, 4, 0.03))
    cv.star(heart, cv.tex(u(100, 130) if contrast else u(40, 50), m1=2.5), lab=HEART)
    c, s = math.cos(rot), math.sin(rot)

    def at(fa, fb):
        return hx + c * fa * ah - s * fb * bh, hy + s * fa * ah + c * fb * bh

    blood = T.blood if contrast else u(36, 44)
    for (fa, fb), rr in (((-0.05, -0.95), 4.0), ((-0.55, 0.6), 4.0), ((0.45, 0.75), 3.5)):
        x, y = at(fa, fb)
        cv.ellipse(x, y, rr + u(2, 5), rr + u(1, 3), T.fat, lab=0)
        cv.ellipse(x, y, rr * 0.6, rr * 0.6, u(300, 800) if rng.random() < 0.2 else blood, lab=0)
    if contrast:  # LV (its wall is the myocardium), RV, RA, LA
        for fa, fb, ra, rb, dr, lo, hi in ((0.3, 0.15, 0.42, 0.42, 0.0, 0.95, 1.1), (-0.15, -0.45, 0.5, 0.28, -0.2, 0.7, 1.0),
                                           (-0.75, 0.25, 0.3, 0.4, 0.0, 0.6, 0.9), (-0.1, 0.85, 0.35, 0.22, 0.0, 0.95, 1.05)):
            cv.ellipse(*at(fa, fb), ra * ah, rb * bh, blood * u(lo, hi), rot=rot + dr, lab=0)


def _great_vessels(cv, T, rng, env, aorta, y_front, s):
    """Upper chest: the aortic arch (or ascending aorta and pulmonary artery), SVC, trachea, thymic remnant."""
    u = rng.uniform
    (top, bot, _), (dax, day, r_ao) = env, aorta
    y0 = top + (bot - top) * u(0.25, 0.4)
    if rng.random() < 0.5:  # aortic arch running back to the descending aorta
        pts = bezier((u(-15, -5) * s, y0), (u(5, 15) * s, y0 + u(0, 10)), (dax, day), 6)
        cv.path(pts, r_ao + 6, T.fat_tex(0.3), lab=0)
        cv.path(pts, r_ao * u(1.0, 1.2), T.blood, lab=0)
    else:
        cv.ellipse(u(-12, -2) * s, y0, r_ao * 1.2 + 5, r_ao * 1.2 + 5, T.fat_tex(0.3), lab=0)
        cv.ellipse(u(-12, -2) * s, y0, r_ao * 1.25, r_ao * 1.25, T.blood, lab=0)  # ascending aorta
        px_, py_ = u(14, 24) * s, y0 + u(-4, 6)
        cv.path([(px_, py_), (px_ + u(10, 20) * s, py_ + u(15, 25) * s)], u(10, 14) * s, T.vein, lab=0)  # pulmonary artery
    cv.ellipse(-u(24, 34) * s, y0 + u(-5, 10), u(8, 11) * s, u(8, 11) * s, T.vein, lab=0)  # SVC
    tx, ty, rt = u(-8, 2) * s, y_front - u(12, 18) * s, u(8, 11) * s  # trachea
    cv.ellipse(tx, ty, rt + 1.8, rt + 1.5, cv.tex(u(60, 140), m1=8.0), lab=0)
    cv.ellipse(tx, ty, rt, rt * u(0.8, 0.95), -990.0, lab=0)
    if rng.random() < 0.6:  # thymic remnant in the anterior fat
        cv.ellipse(u(-5, 10), top + u(8, 15), u(10, 20), u(4, 8), cv.tex(u(-60, 20), m1=10.0), lab=0)
