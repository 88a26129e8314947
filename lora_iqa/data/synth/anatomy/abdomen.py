"""The SYNTHETIC abdomen (see the package docstring): the organs at a level from the upper (liver, spleen,
stomach) to the lower abdomen (bowel), the retroperitoneum, great vessels, bowel and ribs."""

from __future__ import annotations

import math

import numpy as np

from lora_iqa.data.synth.anatomy.parts import bowel, bowel_loops, draw_tree, place_loops, ribs, spine, vessel_tree, wall_calcs
from lora_iqa.data.synth.anatomy.shapes import Star, bezier, harm, smoothstep
from lora_iqa.data.synth.anatomy.trunk import KIDNEY, LIVER, MUSCLE, PANCREAS, SPLEEN, Torso


def abdomen(rng, size, px, zoom):
    u = rng.uniform
    tr = Torso(rng, "abdomen", size, px, zoom, (0.66, 0.82), (2.0, 2.35), (4, 10), (15, 45), (8, 12), (0.0, 0.3),
               (0.0, 0.4), rect=0.6, arr=True)
    a_c, b_c, s = tr.a_c, tr.b_c, tr.s
    level = u(0, 1)  # 0 = upper abdomen, 1 = lower
    contrast = bool(rng.random() < 0.5)
    y_tip = tr.bp_c + float(tr.t_m(np.array(math.pi / 2))) - u(2, 6)
    # approximate landmarks for the field placement (the drawing below uses the same numbers)
    y_v, k_x = y_tip - 68 * s, 62 * s
    rois = {"spine": (0.0, y_v + 25 * s), "kidney_r": (-k_x - 15 * s, y_v), "kidney_l": (k_x + 15 * s, y_v)}
    if level < 0.7:
        rois["liver"] = (-0.45 * a_c, -0.05 * b_c)
    if 0.15 < level < 0.7:
        rois["pancreas"] = (0.05 * a_c, y_v - 45 * s)
    cv, T = tr.open(rng, rois, contrast, (0.5, 1.0), (1.0, 4.0))
    # the retroperitoneum (spine, paraspinal muscles, psoas, quadratus lumborum): painted after the organs
    spine_ops = cv.defer()
    r_ps = (9 + 16 * level) * s
    y_b, vw, vd, _ = spine(cv, T, rng, tr.muscle_in, y_tip, s, psoas=r_ps)
    cv.replay([])
    obstacles = [Star(0.0, y_b + 15 * s, vw + 2 * r_ps + 10, 45 * s)]
    r_ao = u(8.5, 12.5) * s
    x_ao, y_ao = u(4, 12) * s, y_b - vd - r_ao - u(1, 4)
    ivc = (-u(18, 28) * s, y_b - vd - u(6, 10) * s, u(9, 14) * s, u(6, 10) * s)
    obstacles.append(Star(x_ao - 8, y_ao, r_ao + 22, r_ao + 12))
    kid = []
    if (kid_scale := 1.0 - abs(level - 0.45) * 1.4) > 0.25:
        for side in (-1, 1):
            ks = kid_scale * u(0.75, 1.05) * s
            if ks >= 0.3:
                kx, ky = side * (vw + 2 * r_ps + u(14, 24) * s), y_b + u(-2, 12) * s + (5 if side < 0 else 0)
                kid.append((side, kx, ky, ks))
                obstacles.append(Star(kx, ky, 38 * ks + 10, 38 * ks + 10))
    liver, spleen, stomach, panc = _organ_outlines(rng, tr, level, y_ao - r_ao, y_b, obstacles)
    _bowel(cv, T, rng, tr, level, obstacles)
    liv_mu = u(95, 115) if contrast else u(55, 65)
    if liver is not None:
        _liver(cv, T, rng, tr, liver, liv_mu, level, ivc, contrast)
    _upper_organs(cv, T, rng, tr.cav_cov, s, spleen, stomach, panc, contrast)
    for side, kx, ky, ks in kid:
        _kidney(cv, T, rng, side, kx, ky, ks, contrast)
    cv.replay(spine_ops)
    # great vessels on top: IVC, aorta (wall, optional calcifications), SMA and SMV in front of it
    cv.ellipse(*ivc, (T.vein * 0.7 + 30) if contrast else T.blood, rot=u(-0.3, 0.3), lab=0)
    cv.ellipse(x_ao, y_ao, r_ao + 1.2, r_ao + 1.2, 45.0, lab=0)
    cv.ellipse(x_ao, y_ao, r_ao, r_ao, T.blood)
    if rng.random() < 0.35:
        wall_calcs(cv, rng, x_ao, y_ao, r_ao + 0.2, int(rng.integers(1, 4)), 1.0)
    if panc is not None:
        cv.ellipse(x_ao, y_ao - r_ao - u(8, 14) * s, 3.5 * s, 3.5 * s, T.blood)
        cv.ellipse(x_ao - u(10, 15) * s, y_ao - r_ao - u(8, 14) * s, 5 * s, 5 * s, T.vein)
    # ribs and costal cartilage at the edges
    ribs(cv, T, rng, tr, int(round((1.0 - level) * u(2, 6))), [(-1.0, 0.9), (math.pi - 0.9, math.pi + 1.0)], (3.0, 4.5), s)
    if level < 0.4:
        ribs(cv, T, rng, tr, int(rng.integers(0, 3)), [(-1.9, -1.2)], (3.0, 4.5), s, cartilage=True)
    organs = [(LIVER, 0.55), (SPLEEN, 0.15), (KIDNEY, 0.15), (PANCREAS, 0.1), (MUSCLE, 0.05)]
    info = {"level": round(float(level), 3), "phase": "contrast" if contrast else "native"}
    return cv, tr.body, tr.body_cov, organs, info, tr.roi, tr.inside


def _organ_outlines(rng, tr, level, y_front, y_b, obstacles):
    """Outlines of the liver, spleen, stomach and the pancreas' centre line, where the level has them (else
    None); each added to the obstacles for the bowel loops."""
    u = rng.uniform
    a_c, b_c, bp_c, s = tr.a_c, tr.b_c, tr.bp_c, tr.s
    liver = spleen = stomach = panc = None
    if level < 0.8:
        sl = max(0.25, 1.15 - 0.95 * level)
        liver = Star(-a_c * (0.42 + 0.1 * level), -b_c * (0.05 + 0.25 * level), a_c * (0.35 + 0.25 * sl),
                     (b_c + bp_c) / 2 * (0.3 + 0.5 * sl), rot=u(-0.15, 0.15), p=u(2.0, 2.6), harm=harm(rng, 5, 0.05))
        obstacles.append(liver)
    if level < 0.55 and (ss := (1.0 - 1.3 * level) * u(0.8, 1.15)) > 0.3:
        spleen = Star(0.62 * a_c, 0.38 * bp_c, 0.16 * a_c * (0.6 + 0.4 * ss), 0.42 * bp_c * (0.5 + 0.5 * ss),
                      rot=u(-0.7, -0.4), harm=harm(rng, 4, 0.05))
        obstacles.append(spleen)
    if level < 0.45:
        stomach = Star(0.3 * a_c, -0.35 * b_c, 0.26 * a_c * u(0.8, 1.2), 0.3 * b_c * u(0.8, 1.2), rot=u(-0.4, 0.4),
                       harm=harm(rng, 5, 0.06))
        obstacles.append(stomach)
    if 0.15 < level < 0.7:
        yp = y_front - u(8, 14) * s
        panc = bezier((-0.12 * a_c, yp + 8 * s), (0.15 * a_c, yp - 18 * s), (0.42 * a_c, y_b - 5 * s), 6)
        obstacles.append(Star(0.15 * a_c, yp - 4, 0.32 * a_c, 22 * s))
    return liver, spleen, stomach, panc


def _bowel(cv, T, rng, tr, level, obstacles):
    """Small-bowel loops (more at lower levels) and the colon (ascending, descending, transverse); drawn
    before the solid organs, which are painted over them."""
    u = rng.uniform
    a_c, s = tr.a_c, tr.s
    loops = place_loops(rng, int(round(4 + 18 * level * u(0.7, 1.2))), tr, obstacles, (9 * s, 15 * s))
    colon = []
    if rng.random() < 0.85:
        colon.append((-0.8 * a_c, u(-0.1, 0.3) * tr.bp_c, u(14, 24) * s))
    if rng.random() < 0.85:
        colon.append((0.82 * a_c, u(0.0, 0.4) * tr.bp_c, u(12, 20) * s))
    if level < 0.55 and rng.random() < 0.7:
        colon.append((u(-0.3, 0.3) * a_c, -0.78 * tr.b_c, u(14, 22) * s))
    for x, y, r in colon:
        if tr.in_cavity(x, y, r * 0.3):
            kind = "feces" if rng.random() < 0.6 else "gas"
            bowel(cv, T, rng, x, y, r * u(0.9, 1.2), r * u(0.8, 1.0), u(0, math.pi), kind)
    bowel_loops(cv, T, rng, loops, ("gas", "collapsed"), 1.8)


def _liver(cv, T, rng, tr, liver, liv_mu, level, ivc, contrast):
    """The liver (and upper: its left lobe across the midline) with portal and hepatic vessel trees, and
    (mid levels) the gallbladder."""
    u = rng.uniform
    a_c, b_c, s, cav = tr.a_c, tr.b_c, tr.s, tr.cav_cov
    cv.star(liver, cv.tex(liv_mu, m1=3.0, c1=2.5, c2=1.5), lab=LIVER, clip=cav)
    if level < 0.4:
        cv.star(Star(u(-0.05, 0.12) * a_c, -0.55 * b_c, 0.32 * a_c * u(0.8, 1.2), 0.22 * b_c, rot=u(-0.3, 0.1),
                     harm=harm(rng, 4, 0.05)), cv.tex(liv_mu, m1=3.0, c1=2.5, c2=1.5), lab=LIVER, clip=cav)
    liv_mask = (cv.lab == LIVER).astype(float)
    segs = []
    hx, hy = liver.cx + liver.a * 0.55, liver.cy + u(-0.1, 0.2) * liver.b  # porta hepatis
    for ang in rng.uniform(math.pi * 0.75, math.pi * 1.25, int(rng.integers(2, 4))):
        vessel_tree(rng, hx, hy, float(ang), liver.a * u(0.25, 0.4), u(3.0, 5.5) * s, 3, 0.6, segs)
    if level < 0.45:  # hepatic veins converging on the IVC
        for ang in rng.uniform(-math.pi * 0.95, -math.pi * 0.5, int(rng.integers(2, 4))):
            vessel_tree(rng, ivc[0], ivc[1], float(ang), liver.a * u(0.3, 0.5), u(3.5, 6.0) * s, 2, 0.5, segs)
    draw_tree(cv, segs, T.vein if contrast else u(34, 44), u(0.5, 0.85), liv_mask, rng)
    if 0.25 < level < 0.7 and rng.random() < 0.6:
        gx, gy = liver.cx + liver.a * u(0.3, 0.6), liver.cy - liver.b * u(0.3, 0.55)
        ga, gb = u(12, 22) * s, u(9, 15) * s
        cv.ellipse(gx, gy, ga + 1.5, gb + 1.5, 40.0, rot=u(0, math.pi), lab=0, clip=cav)
        cv.ellipse(gx, gy, ga, gb, u(0, 20), clip=cav)


def _upper_organs(cv, T, rng, cav, s, spleen, stomach, panc, contrast):
    """The spleen; the stomach (rugal wall, gas over food or mottled contents); the pancreas (fatty
    lobulation) with the splenic vein behind it."""
    u, F = rng.uniform, cv.F
    if spleen is not None:
        cv.star(spleen, cv.tex(u(105, 125) if contrast else u(42, 48), m1=3.5, c1=3.0), lab=SPLEEN, clip=cav)
    if stomach is not None:
        cv.star(stomach, cv.tex(u(40, 50) + (30 if contrast else 0), m1=4.0), lab=0, clip=cav)
        inner = Star(stomach.cx, stomach.cy, stomach.a, stomach.b, rot=stomach.rot, harm=stomach.harm + harm(rng, 12, 0.02, 8))
        mottled = rng.random() >= 0.6
        yl = stomach.cy + stomach.b * u(-0.6, 0.4)
        food = u(10, 40)

        def sval(bb):
            base = food + 8.0 * F["m1"][bb]
            if mottled:
                base = base + (-990 - base) * smoothstep((F["f2"][bb] + 0.5 * F["m2"][bb] - 1.3) * 2.0 + 0.5)
            return -995.0 + (base + 995.0) * smoothstep((cv.Y[bb] - yl) / cv.px + 0.5)

        cv.star(inner, sval, clip=cav, inset=u(3, 6))
    if panc is not None:
        pm = u(90, 120) if contrast else u(35, 45)
        thr = u(0.8, 1.8)

        def pval(bb):
            return pm + 4.0 * F["m2"][bb] + (T.fat + 40 - pm) * smoothstep((F["m1"][bb] - thr) * 1.5)

        cv.path(panc, u(9, 12) * s, pval, lab=PANCREAS, r_end=u(6, 9) * s)
        cv.path([(p[0] + 2, p[1] + 9 * s) for p in panc[1:]], u(3, 5) * s, T.vein)  # splenic vein


def _kidney(cv, T, rng, side, kx, ky, ks, contrast):
    """A kidney in perirenal fat: cortex, medullary pyramids, and (p = 0.75) the hilum (sinus fat, renal
    pelvis, renal vein)."""
    u = rng.uniform
    rot = side * u(0.4, 0.8)
    a, b = u(26, 32) * ks, u(17, 22) * ks
    cv.star(Star(kx + side * u(1, 6), ky + u(1, 6), a + u(2, 9), b + u(2, 8), rot=rot, harm=harm(rng, 4, 0.08)),
            T.fat_tex(0.5), lab=0)  # perirenal fat, thicker posterolaterally
    ctx = u(150, 200) if contrast else u(30, 36)
    med = (ctx if rng.random() < 0.5 else u(80, 120)) if contrast else ctx - u(0, 5)
    cv.star(Star(kx, ky, a, b, rot=rot, harm=harm(rng, 4, 0.03)), cv.tex(ctx, m1=3.0), lab=KIDNEY)
    c, s = math.cos(rot), math.sin(rot)
    for t in (-0.5, 0.0, 0.5):
        cv.ellipse(kx + c * t * a * 0.9 - s * (-0.15 * b), ky + s * t * a * 0.9 + c * (-0.15 * b), 0.22 * a, 0.3 * b, med,
                   rot=rot + 0.5 * t)
    if rng.random() < 0.75:  # the hilum: sinus fat opening at the medial end, renal pelvis, vessels
        f = u(0.7, 0.95)
        mx, my = kx - side * c * a * f, ky - side * s * a * f
        cv.ellipse(mx, my - 2 * ks, u(0.3, 0.45) * a, u(0.35, 0.5) * b, T.fat_tex(0.3), rot=rot, lab=0)
        cv.ellipse(mx + side * c * 4 * ks, my - 1 * ks, u(0.12, 0.22) * a, u(0.15, 0.3) * b, u(0, 15), rot=rot, lab=0)
        cv.capsule(mx, my - 2 * ks, mx - side * u(15, 30) * ks, my - u(4, 12) * ks, u(2.5, 4.0) * ks, T.vein)
