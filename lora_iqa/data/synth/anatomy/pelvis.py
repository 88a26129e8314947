"""The SYNTHETIC pelvis (see the package docstring): the iliac level (iliac wings, sacrum, iliac vessels,
bowel) or the acetabular level (hips, bladder, rectum, prostate or uterus)."""

from __future__ import annotations

import math

from lora_iqa.data.synth.anatomy.parts import bowel, bowel_loops, place_loops
from lora_iqa.data.synth.anatomy.shapes import Star, arc, bezier, harm, smoothstep
from lora_iqa.data.synth.anatomy.trunk import BLADDER, GLAND, MUSCLE, Torso


def pelvis(rng, size, px, zoom):
    u = rng.uniform
    tr = Torso(rng, "pelvis", size, px, zoom, (0.58, 0.72), (2.1, 2.5), (6, 14), (15, 45), (9, 13), (1.2, 2.4), (0.6, 1.4))
    level = "iliac" if rng.random() < 0.5 else "acetabular"
    contrast = bool(rng.random() < 0.5)
    fx, fy = min(u(78, 95) * tr.s, 0.75 * tr.a_c), u(-0.1, 0.1) * tr.b_c  # the femoral heads' centres (x: +-fx)
    y_sac = tr.bp_c - u(12, 20) * tr.s
    rois = {"sacrum": (0.0, y_sac)} if level == "iliac" else {"bladder": (0.0, -0.3 * tr.b_c), "hip_r": (-fx, fy),
                                                               "hip_l": (fx, fy)}
    cv, T = tr.open(rng, rois, contrast, (0.3, 0.8), (1.0, 3.0), n_planes=1)
    organs = [(MUSCLE, 0.3)]
    bone = T.bone_tex()
    sh = u(1.0, 1.8)  # cortex thickness
    if level == "iliac":
        organs += _iliac(cv, T, rng, tr, y_sac, bone, sh)
    else:
        _acetabular(cv, T, rng, tr, fx, fy, bone, sh)
        organs += [(BLADDER, 0.4), (GLAND, 0.5)]
    info = {"level": level, "phase": "contrast" if contrast else "native"}
    return cv, tr.body, tr.body_cov, organs, info, tr.roi, tr.inside


def _iliac(cv, T, rng, tr, y_sac, bone, sh):
    """Iliac wings with iliacus, psoas and gluteal muscles, iliac vessels, the sacrum (canal, foramina),
    bowel loops and sometimes the bladder dome: the extra lesion organs."""
    u = rng.uniform
    a_c, b_c, s = tr.a_c, tr.b_c, tr.s
    sw, sd = u(42, 52) * s, u(14, 19) * s
    for side in (-1, 1):
        cv.ellipse(side * u(0.45, 0.6) * sw, y_sac - sd - u(14, 22) * s, u(12, 18) * s, u(11, 15) * s, T.muscle_tex(),
                   lab=MUSCLE)  # psoas
        p0 = (side * (sw + u(2, 4)), y_sac + u(-4, 4))
        p2 = (side * u(0.72, 0.88) * a_c, -u(0.3, 0.55) * b_c)
        p1 = (side * u(0.6, 0.72) * a_c, (p0[1] + p2[1]) / 2 + u(0, 10) * s)
        wing = bezier(p0, p1, p2, 7)
        inner = [(x - side * u(11, 14) * s, y - 6 * s) for x, y in wing[1:]]
        cv.path(inner, u(9, 13) * s, T.muscle_tex(), lab=MUSCLE, clip=tr.cav_cov)  # iliacus
        cv.path([(x + side * 10 * s, y + 4 * s) for x, y in wing], u(10, 14) * s, T.muscle_tex(fatty=20), lab=MUSCLE,
                clip=tr.muscle_in)  # gluteal muscles outside the wing
        r0, r1 = u(7, 10) * s, u(2.5, 3.8) * s
        cv.path(wing, r0, T.cortex, lab=0, r_end=r1)
        cv.path(wing, r0 - sh, bone, r_end=max(r1 - sh, 0.6))
        vx, vy = side * u(0.5, 0.75) * sw, y_sac - sd - u(28, 40) * s  # iliac vessels in front of the sacral ala
        cv.ellipse(vx, vy, u(4, 6) * s, u(4, 6) * s, T.blood, lab=0)
        cv.ellipse(vx + side * u(4, 8), vy + u(6, 10), u(5, 8) * s, u(4, 6) * s, T.vein, lab=0)
    sac = Star(0.0, y_sac, sw, sd, sd * 0.9, p=u(2.4, 3.0), harm=harm(rng, 4, 0.03))
    cv.star(sac, T.cortex, lab=0)
    cv.star(sac, bone, inset=sh)
    cv.ellipse(0.0, y_sac + sd * 0.3, u(7, 10) * s, u(4, 6) * s, u(5, 20), lab=0)  # sacral canal
    for side in (-1, 1):  # anterior sacral foramina
        cv.ellipse(side * u(14, 20) * s, y_sac - sd * 0.2, u(2.5, 4), u(2.5, 4), u(-40, 20), lab=0)
    obst = [Star(0.0, y_sac, sw + 25, sd + 30), Star(-0.8 * a_c, 0.0, 40, 60), Star(0.8 * a_c, 0.0, 40, 60)]
    bowel_loops(cv, T, rng, place_loops(rng, int(rng.integers(8, 18)), tr, obst, (9 * s, 15 * s)), ("feces", "gas"), 1.7)
    if rng.random() < 0.3:
        _bladder(cv, T, rng, 0.0, -0.6 * b_c, u(20, 35) * s, u(12, 22) * s, tr.cav_cov)
        return [(BLADDER, 0.4)]
    return []


def _acetabular(cv, T, rng, tr, fx, fy, bone, sh):
    """Femoral heads in the acetabula (anterior and posterior columns, joint space), iliopsoas, femoral
    vessels, obturator internus, greater trochanters; coccyx, rectum, prostate or uterus, bladder."""
    u = rng.uniform
    s = tr.s
    rh = u(21, 26) * s
    for side in (-1, 1):
        hx = side * fx
        cv.ellipse(hx - side * 4, fy - rh - u(10, 16) * s, u(12, 17) * s, u(9, 12) * s, T.muscle_tex(), lab=MUSCLE)
        cv.ellipse(hx - side * u(22, 30) * s, fy - rh - u(12, 18) * s, u(4, 5.5) * s, u(4, 5.5) * s, T.blood, lab=0)
        cv.ellipse(hx - side * u(33, 40) * s, fy - rh - u(10, 16) * s, u(5, 7) * s, u(4.5, 6) * s, T.vein, lab=0)
        cv.path([(hx - side * (rh + 10), fy - rh * 0.6), (hx - side * (rh + 14), fy + rh * 0.4),
                 (hx - side * (rh + 8), fy + rh * 1.2)], u(5, 8) * s, T.muscle_tex(), lab=MUSCLE)
        if rng.random() < 0.5:
            tx = hx + side * (rh + u(22, 32) * s)
            cv.ellipse(tx, fy + u(0, 10), u(10, 15) * s, u(12, 17) * s, T.cortex, lab=0, clip=tr.muscle_in)
            cv.ellipse(tx, fy + u(0, 10), u(10, 15) * s - sh, u(12, 17) * s - sh, bone, clip=tr.muscle_in)
        med = 0.0 if side < 0 else math.pi  # direction towards the midline
        cols = [((hx - side * (rh + 4), fy - rh * 0.6), (hx - side * u(38, 48) * s, fy - rh - u(8, 18) * s), u(5, 8) * s),
                ((hx - side * (rh + 2), fy + rh * 0.6), (hx - side * u(35, 45) * s, fy + rh + u(12, 24) * s), u(8, 11) * s)]
        for (x0, y0), (x1, y1), r in cols:
            cv.capsule(x0, y0, x1, y1, r, T.cortex, lab=0)
            cv.capsule(x0, y0, x1, y1, r - sh, bone)
        ta = u(7, 11) * s
        rim = arc(hx, fy, rh + 2.5 + ta / 2, med - u(1.4, 1.8), med + u(1.4, 1.8), 7)
        cv.path(rim, ta / 2 + 1.0, T.cortex, lab=0)
        cv.path(rim, ta / 2 + 1.0 - sh, bone)
        cv.ellipse(hx, fy, rh + u(2.0, 3.0), rh + u(2.0, 3.0), cv.tex(u(25, 45), m1=3.0), lab=0)  # joint space
        cv.ellipse(hx, fy, rh, rh, T.cortex, lab=0)
        cv.ellipse(hx, fy, rh - sh, rh - sh, T.bone_tex(trab=T.trab * u(1.0, 1.2)))
        if rng.random() < 0.5:  # fovea capitis
            cv.ellipse(hx - side * rh * 0.85, fy, u(2, 4), u(3, 5), cv.tex(40, m1=3.0))
    cyy = tr.bp_c - u(10, 20) * s  # coccyx / lower sacrum
    cv.ellipse(0.0, cyy, u(10, 18) * s, u(6, 9) * s, T.cortex, lab=0)
    cv.ellipse(0.0, cyy, u(10, 18) * s - sh, u(6, 9) * s - sh, bone)
    rx, ry, rr = u(-5, 5), cyy - u(22, 32) * s, u(12, 20) * s  # rectum
    bowel(cv, T, rng, rx, ry, rr, rr * u(0.8, 1.0), u(0, math.pi), "feces" if rng.random() < 0.6 else "gas")
    ba, bbb = u(30, 65) * s, u(22, 45) * s
    by = -tr.b_c + bbb + u(5, 20)
    gy = (by + bbb + ry - rr) / 2
    female = rng.random() < 0.5
    ga, gb = (u(20, 35) * s, u(14, 22) * s) if female else (u(14, 20) * s, u(11, 16) * s)
    gm = (u(80, 120) if T.contrast else u(40, 55)) if female else (u(35, 50) + (20 if T.contrast else 0))
    cv.ellipse(0.0, gy, ga, gb, cv.tex(gm, m1=3.0, c1=2.0), rot=u(-0.3, 0.3), lab=GLAND, clip=tr.cav_cov)
    if not female and rng.random() < 0.4:  # prostatic calcifications
        for _ in range(int(rng.integers(1, 4))):
            cv.ellipse(u(-0.5, 0.5) * ga, gy + u(-0.5, 0.5) * gb, u(0.8, 2), u(0.8, 2), u(150, 500))
    _bladder(cv, T, rng, u(-5, 5), by, ba, bbb, tr.cav_cov)


def _bladder(cv, T, rng, x, y, a, b, cav):
    """The bladder: wall, urine, sometimes excreted contrast layering posteriorly (dependent)."""
    u = rng.uniform
    st = Star(x, y, a, b, p=u(2.0, 2.6), harm=harm(rng, 4, 0.04))
    cv.star(st, cv.tex(u(35, 45), m1=2.0), lab=0, clip=cav)
    urine = u(0, 15)
    if rng.random() < 0.15:
        yl, hi = y + b * u(0.2, 0.7), u(300, 900)

        def val(bb):
            return urine + (hi - urine) * smoothstep((cv.Y[bb] - yl) / cv.px + 0.5)
    else:
        val = cv.tex(urine, m1=1.5)
    cv.star(st, val, lab=BLADDER, clip=cav, inset=u(2.0, 4.0))
