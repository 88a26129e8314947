"""Structures the SYNTHETIC trunk regions share: the spine (vertebra, paraspinal muscles, psoas), ribs,
branching vessel trees, vessel wall calcifications and bowel loops."""

from __future__ import annotations

import math

import numpy as np

from lora_iqa.data.synth.anatomy.shapes import Star, arc, harm, smoothstep
from lora_iqa.data.synth.anatomy.trunk import MUSCLE


def _vertebra(cv, T, rng, y_tip, s, lumbar=True, disc=False):
    """Vertebra from the spinous tip (y_tip) forward: body, pedicles, laminae, processes, canal.
    Returns (y_body, half-width, half-depth, y_canal)."""
    u = rng.uniform
    vw = (u(20, 25) if lumbar else u(14, 18)) * s
    vd = (u(14, 17) if lumbar else u(12, 15)) * s
    L_sp = (u(24, 32) if lumbar else u(20, 28)) * s
    ch, cw = u(6.5, 8.5) * s, u(9, 12) * s  # canal half-depth, half-width
    y_lam = y_tip - L_sp
    y_can = y_lam - ch - 2
    y_b = y_can - ch - vd - 2
    sh = u(1.0, 1.8)
    bone = T.bone_tex()
    # posterior elements (spinous process; pedicles, laminae, transverse processes): cortex tubes, then marrow inside
    tp = (u(20, 30) if lumbar else u(16, 24)) * s
    elems = [([(0.0, y_lam), (0.0, y_tip)], u(3.5, 5.0) * s, u(2.5, 3.5) * s)]
    for side in (-1, 1):
        elems += [
            ([(side * vw * 0.62, y_b + vd * 0.7), (side * cw * 0.95, y_can)], u(4.0, 5.0) * s, None),
            ([(side * cw * 0.95, y_can), (side * cw * 0.5, y_lam + 2), (0.0, y_lam)], u(3.2, 4.2) * s, None),
            ([(side * cw * 0.9, y_can + 1), (side * (vw + tp), y_can + u(-2, 6))], u(4.5, 6.0) * s, u(2.5, 3.5) * s),
        ]
    for pts, r, r_end in elems:
        cv.path(pts, r, T.cortex, r_end=r_end, lab=0)
    for pts, r, r_end in elems:
        cv.path(pts, max(r - sh, 0.5), bone, r_end=None if r_end is None else max(r_end - sh, 0.5))
    body = Star(0.0, y_b, vw, vd, vd * 0.9, p=u(2.2, 2.6), pp=u(3.0, 4.0), harm=harm(rng, 4, 0.02))
    if disc:
        cv.star(body, cv.tex(u(80, 100), m1=3.0), lab=0)
        cv.ellipse(0.0, y_b, vw * 0.5, vd * 0.45, cv.tex(u(60, 80), m1=3.0))
    else:
        cv.star(body, T.cortex, lab=0)
        cv.star(body, bone, inset=sh)
        if rng.random() < 0.5:  # basivertebral vein notch at the back of the body
            cv.ellipse(0.0, y_b + vd * 0.75, 2.5 * s, 3.0 * s, T.blood if T.contrast else 40.0)
    # canal: thecal sac with epidural fat at the back
    cv.ellipse(0.0, y_can + ch * 0.45, cw * 0.6, ch * 0.45, T.fat, lab=0)
    cv.ellipse(0.0, y_can - ch * 0.1, cw * 0.8, ch * 0.8, u(5, 20), lab=0)
    if not lumbar:
        cv.ellipse(0.0, y_can - ch * 0.1, cw * 0.45, ch * 0.5, u(28, 36))  # spinal cord
    return y_b, vw, vd, y_can


def spine(cv, T, rng, clip, y_tip, s, lumbar=True, psoas=0.0):
    """Paraspinal muscles (clipped to ``clip``), the vertebra and (lumbar) psoas and quadratus lumborum:
    (y_body, half-width, half-depth, y_canal) of the vertebra."""
    u = rng.uniform
    pw, ph = u(20, 28) * s, u(22, 28) * s  # erector spinae and multifidus lateral to the spinous process
    for side in (-1, 1):
        cv.ellipse(side * (pw * 0.75 + 4), y_tip - ph * 0.75, pw, ph, T.muscle_tex(fatty=u(10, 40)), rot=side * u(0.0, 0.25),
                   lab=MUSCLE, clip=clip)
    cv.capsule(0.0, y_tip - 2 * ph, 0.0, y_tip + 3, 1.0, T.fat_tex(), lab=0)
    disc = rng.random() < 0.15
    y_b, vw, vd, y_can = _vertebra(cv, T, rng, y_tip, s, lumbar=lumbar, disc=disc)
    if lumbar and psoas > 0:
        for side in (-1, 1):
            r = psoas * u(0.9, 1.1)
            cv.ellipse(side * (vw + r * 0.85), y_b - vd * 0.1, r, r * u(0.8, 1.0), T.muscle_tex(), rot=u(-0.3, 0.3), lab=MUSCLE)
            cv.ellipse(side * (vw + 2 * r + u(10, 16) * s), y_can + u(-3, 5), u(14, 20) * s, u(8, 11) * s,
                       T.muscle_tex(), rot=side * u(0.2, 0.6), lab=MUSCLE)
    return y_b, vw, vd, y_can


def ribs(cv, T, rng, torso, n, ranges, r_range, s, cartilage=False, depth_f=0.5, length=(12, 32)):
    """Rib sections (cortex and marrow, or costal cartilage) along the wall at body angles drawn from the
    given ranges (radians)."""
    u = rng.uniform
    for _ in range(n):
        lo, hi = ranges[int(rng.integers(len(ranges)))]
        th = u(lo, hi)
        r = u(*r_range) * s
        depth = torso.wall_depth(th, depth_f) + u(-2, 2)
        dth = u(*length) / max(float(torso.body(float(th))) - depth, 10.0) / 2
        pts = [torso.inset_point(t, depth + u(-1, 1)) for t in np.linspace(th - dth, th + dth, 4)]
        if cartilage:
            cv.path(pts, r, cv.tex(u(90, 180), m1=10.0), lab=0)
        else:
            cv.path(pts, r, T.cortex, lab=0)
            cv.path(pts, max(r - u(1.0, 1.6), 0.5), T.bone_tex())


def vessel_tree(rng, x, y, ang, length, rad, depth, spread, out):
    """Random branching tree as capsule segments (x0, y0, x1, y1, r0, r1)."""
    x1, y1 = x + length * math.cos(ang), y + length * math.sin(ang)
    r1 = rad * rng.uniform(0.8, 0.92)
    out.append((x, y, x1, y1, rad, r1))
    if depth <= 0:
        return
    k = 3 if rng.random() < 0.2 else 2
    for i in range(k):
        a2 = ang + (i - (k - 1) / 2) * spread * rng.uniform(0.7, 1.3) + rng.uniform(-0.25, 0.25)
        vessel_tree(rng, x1, y1, a2, length * rng.uniform(0.6, 0.85), r1 * rng.uniform(0.65, 0.82), depth - 1, spread * 0.9, out)


def draw_tree(cv, segs, val, keep, clip, rng, r_min=0.35):
    """Draw segments (each kept with probability keep: the rest leave the slice plane)."""
    for x0, y0, x1, y1, r0, r1 in segs:
        if rng.random() > keep:
            if rng.random() < 0.35:  # a cross-section where the vessel crosses the plane
                cv.ellipse(x1, y1, max(r1, r_min) * 1.1, max(r1, r_min) * 1.1, val, clip=clip)
            continue
        cv.capsule(x0, y0, x1, y1, max(r0, r_min), val, max(r1, r_min), clip=clip)


def wall_calcs(cv, rng, x, y, r, n, span):
    """n calcified plaques (arcs) on a vessel wall of radius r."""
    for _ in range(n):
        a0 = rng.uniform(0, 2 * math.pi)
        cv.path(arc(x, y, r, a0, a0 + rng.uniform(0.3, span)), rng.uniform(0.6, 1.2), rng.uniform(400, 900))


def _contents(cv, rng, kind, y, b):
    """The value of bowel contents: feces mottled with gas, gas over fluid (an air-fluid level), positive
    oral contrast, a collapsed loop, or fluid with a few small gas bubbles at its top."""
    u, F = rng.uniform, cv.F
    fluid = u(5, 30)
    if kind == "oral":
        return cv.tex(u(150, 350), m1=8.0)
    if kind == "collapsed":
        return cv.tex(u(25, 40), m1=4.0)
    if kind == "feces":
        thr, base = u(0.6, 1.2), u(10, 40)

        def val(bb):
            g = smoothstep((F["f2"][bb] + 0.6 * F["m2"][bb] - thr) * 2.0 + 0.5)
            return base + 12.0 * F["m1"][bb] + (-990.0 - base) * g
    elif kind == "gas":
        yl = y + b * u(0.3, 1.2)  # fluid posterior (dependent)

        def val(bb):
            return -995.0 + (fluid + 995.0) * smoothstep((cv.Y[bb] - yl) / cv.px + 0.5)
    else:
        yb = y - b * u(0.3, 0.9)

        def val(bb):
            g = smoothstep((F["f1"][bb] - 2.2) * 2.0) * (cv.Y[bb] < yb)
            return fluid + 3.0 * F["m1"][bb] + 2.0 * F["c1"][bb] + (-990.0 - fluid) * g
    return val


def bowel(cv, T, rng, x, y, a, b, rot, kind, tube=False):
    """A bowel loop, as a cross-section (star) or an in-plane curved tube (radius b, length ~ 2a): wall,
    then its contents (see :func:`_contents`)."""
    u = rng.uniform
    w = u(1.3, 2.8)
    wall = cv.tex(u(35, 45) + (u(25, 50) if T.contrast else 0.0), m1=3.0)
    if tube:
        pts, ang = [(x, y)], rot
        step = max(a, b) * u(0.6, 0.9)
        for _ in range(int(rng.integers(2, 5))):
            ang += u(-0.9, 0.9)
            pts.append((pts[-1][0] + step * math.cos(ang), pts[-1][1] + step * math.sin(ang)))
        cv.path(pts, b, wall, lab=0)
        cv.path(pts, max(b - w, 0.5), _contents(cv, rng, kind, y, b))
    else:
        st = Star(x, y, a, b, rot=rot, harm=harm(rng, 6, u(0.03, 0.08)))
        cv.star(st, wall, lab=0)
        cv.star(st, _contents(cv, rng, kind, y, b), inset=w)


def place_loops(rng, n, torso, obstacles, r_range, tries=40):
    """Centres and radii of up to n loops: rejection-sampled inside the torso's cavity and clear of the
    obstacles (stars) and of each other (some overlap allowed: loops abut)."""
    out = []
    for _ in range(n):
        for _ in range(tries):
            x, y = torso.sample(rng)
            r = float(rng.uniform(*r_range))
            if not torso.in_cavity(x, y, r * 0.6):
                continue
            if any(o.contains(x, y, -0.6 * r) for o in obstacles):
                continue
            if any(math.hypot(x - ox, y - oy) < 0.65 * (r + orr) for ox, oy, orr in out):
                continue
            out.append((x, y, r))
            break
    return out


def bowel_loops(cv, T, rng, loops, kinds, stretch):
    """The placed loops: tubes or cross-sections of kinds[0] (p = 0.25), kinds[1] (0.15) or fluid, or
    (one slice in five) mostly with oral contrast."""
    u = rng.uniform
    oral = rng.random() < 0.2
    for x, y, r in loops:
        q = rng.random()
        kind = "oral" if oral and q < 0.6 else (kinds[0] if q < 0.25 else (kinds[1] if q < 0.4 else "fluid"))
        bowel(cv, T, rng, x, y, r * u(1.0, stretch), r * u(0.7, 1.0), u(0, 2 * math.pi), kind, tube=rng.random() < 0.45)
