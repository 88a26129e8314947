"""The field of view of a SYNTHETIC slice: body widths matched to the field, and the field's centre (zoomed
on a region of interest with the whole field inside the body, or near the body centre)."""

from __future__ import annotations

import numpy as np

from lora_iqa.data.synth.anatomy.shapes import Star

WIDTH = {"abdomen": (250.0, 420.0), "chest": (260.0, 440.0), "pelvis": (280.0, 450.0), "head": (140.0, 190.0)}
ZOOM_NEED = {"abdomen": 1.5, "chest": 1.55, "pelvis": 1.6, "head": 1.15}  # body width / fov for a field inside


def _fits(body: Star, bnd, x, y, rad):
    x, y = float(x), float(y)
    return body.contains(x, y, rad) and float(np.min(np.hypot(bnd[:, 0] - x, bnd[:, 1] - y))) >= rad


def place_field(rng, body: Star, fov, rois: dict, zoom: bool):
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


def fit_width(rng, region, fov, zoom):
    """Body width (mm): for a zoomed field, wide enough for the field to fit inside when possible; else
    matched to the field as clinical reconstructions are (width = fov / U(1.0, 1.12)) within the range."""
    lo, hi = WIDTH[region]
    need = fov * ZOOM_NEED[region]
    if zoom and need <= hi:
        return float(rng.uniform(max(lo, need), hi))
    w = fov / rng.uniform(1.0, 1.12)
    if w < lo:
        return float(rng.uniform(lo, lo + 0.4 * (hi - lo)))
    if w > hi:
        return float(rng.uniform(0.85 * hi, hi))
    return float(w)
