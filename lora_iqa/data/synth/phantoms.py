"""Procedural CT phantoms: abdominal ellipse phantoms and Shepp-Logan heads, with lesions (HU maps)."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.data import shepp_logan_phantom
from skimage.transform import resize, rotate

from lora_iqa.data.synth.ct_physics import FOV_MM
from lora_iqa.errors import LoraIqaError

SL_EVERY = 5  # every fifth content is a Shepp-Logan head
REF_LESION_HU = 70.0


def _grid(size: int) -> tuple[np.ndarray, np.ndarray, float]:
    px = FOV_MM / size
    c = (np.arange(size) - (size - 1) / 2) * px
    y, x = np.meshgrid(c, c, indexing="ij")  # row = y (anterior at the top), col = x
    return x, y, px


def _ellipse(x, y, cx, cy, a, b, rot_deg=0.0) -> np.ndarray:
    t = math.radians(rot_deg)
    xr = (x - cx) * math.cos(t) + (y - cy) * math.sin(t)
    yr = -(x - cx) * math.sin(t) + (y - cy) * math.cos(t)
    return (xr / a) ** 2 + (yr / b) ** 2 <= 1.0


def _body_parts(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """An abdominal slice in HU, an organ label map and the label ids of organs that take lesions."""
    x, y, px = _grid(size)
    u = rng.uniform
    a, b = u(72, 86), u(52, 66)
    cx, cy, rot = u(-4, 4), u(-4, 4), u(-6, 6)
    t = math.radians(rot)
    # body coordinates (rotated with the body)
    xb = (x - cx) * math.cos(t) + (y - cy) * math.sin(t)
    yb = -(x - cx) * math.sin(t) + (y - cy) * math.cos(t)
    hu = np.full((size, size), -1000.0)
    lab = np.zeros((size, size), np.int16)
    hu[_ellipse(xb, yb, 0, 0, a, b)] = u(-110, -90)  # subcutaneous fat
    fat = u(5, 14)
    ai, bi = a - fat, b - fat
    inner = _ellipse(xb, yb, 0, 0, ai, bi)
    hu[inner] = u(35, 50)  # muscle / soft tissue
    lab[inner] = 1

    def organ(lid, cu, cv, su, sv, value, rot_o=0.0):
        m = _ellipse(xb, yb, cu * ai, cv * bi, su * ai, sv * bi, rot_o) & inner
        hu[m] = value
        lab[m] = lid
        return m

    ids = {"liver": 2, "spleen": 3, "kidney_r": 4, "kidney_l": 5}
    organ(2, -0.36 + u(-.05, .05), -0.1 + u(-.08, .08), 0.42 * u(.85, 1.15), 0.55 * u(.85, 1.15), u(55, 70), u(-20, 20))
    organ(3, 0.52 + u(-.05, .05), 0.05 + u(-.08, .08), 0.17 * u(.8, 1.2), 0.30 * u(.8, 1.2), u(40, 50), u(-30, 30))
    for lid, side in ((4, -1), (5, 1)):
        organ(lid, side * (0.33 + u(-.04, .04)), 0.42 + u(-.05, .05), 0.12 * u(.85, 1.15), 0.20 * u(.85, 1.15),
              u(25, 35), side * u(10, 30))
    organ(6, 0.08 + u(-.03, .03), 0.32 + u(-.03, .03), 0.07, 0.07 * ai / bi, u(38, 50))  # aorta
    # spine: vertebral body (cortex + cancellous) and spinous process
    vr = 0.14 * bi * u(.9, 1.1)
    vc = 0.64 * bi
    organ(7, 0, vc / bi, (vr + 2.5) / ai, (vr + 2.5) / bi, u(900, 1100))
    organ(7, 0, vc / bi, vr / ai, vr / bi, u(650, 800))
    organ(7, 0, (vc + vr + 9) / bi, 4 / ai, 8 / bi, u(750, 900))
    # ribs along the inner rim, away from the spine
    for ang in rng.uniform(-200, 20, int(rng.integers(6, 11))):
        ar = math.radians(ang)
        rx, ry = 0.9 * ai * math.cos(ar), 0.9 * bi * math.sin(ar)
        m = _ellipse(xb, yb, rx, ry, u(2.5, 4), u(2.5, 4)) & inner
        hu[m] = u(700, 1000)
        lab[m] = 8
    # bowel gas, anterior left of the image centre (patient's left)
    for _ in range(int(rng.integers(0, 4))):
        m = _ellipse(xb, yb, ai * u(0.0, 0.35), -bi * u(0.2, 0.6), u(3, 8), u(3, 6), u(0, 180)) & (lab == 1)
        hu[m] = u(-950, -850)
        lab[m] = 9
    return hu, lab, ids


_SL_CACHE: dict[str, np.ndarray] = {}


def _shepp_logan_parts(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """A rotated, scaled, possibly mirrored Shepp-Logan head in HU (brain ~40, skull ~1000)."""
    if "v" not in _SL_CACHE:
        _SL_CACHE["v"] = shepp_logan_phantom()
    v = _SL_CACHE["v"]
    if rng.random() < 0.5:
        v = v[:, ::-1]
    head = ndimage.binary_fill_holes(v > 0)
    hu400 = np.where(head, -200.0 + 1200.0 * v, -1000.0)
    brain400 = np.isclose(v, 0.2, atol=0.01).astype(float)
    ang = rng.uniform(-15, 15)
    hu400 = rotate(hu400, ang, order=1, cval=-1000.0, preserve_range=True)
    brain400 = rotate(brain400, ang, order=0, cval=0.0, preserve_range=True)
    inner = max(8, int(round(size * rng.uniform(0.82, 0.95))))
    hu_s = resize(hu400, (inner, inner), order=1, anti_aliasing=True, preserve_range=True)
    br_s = resize(brain400, (inner, inner), order=0, anti_aliasing=False, preserve_range=True) > 0.5
    off = (size - inner) // 2 + np.array([int(rng.integers(-1, 2)), int(rng.integers(-1, 2))])
    off = np.clip(off, 0, size - inner)
    hu = np.full((size, size), -1000.0)
    lab = np.zeros((size, size), np.int16)
    hu[off[0]:off[0] + inner, off[1]:off[1] + inner] = hu_s
    lab[off[0]:off[0] + inner, off[1]:off[1] + inner][br_s] = 2
    return hu, lab, {"brain": 2}


def _lesions(rng: np.random.Generator, size: int, lab: np.ndarray, organ_ids: dict[str, int]) -> np.ndarray:
    """A map of lesions: +1 (hyperdense) or -1 (hypodense) inside each disk, 0 elsewhere."""
    x, y, px = _grid(size)
    out = np.zeros((size, size))
    taken = np.zeros((size, size), bool)
    ids = list(organ_ids.values())
    want = int(rng.integers(2, 5))
    placed = 0
    for _ in range(200):
        if placed == want:
            break
        lid = ids[0] if rng.random() < 0.6 else ids[int(rng.integers(len(ids)))]
        r = max(rng.uniform(2.5, 5.0), 0.75 * px)  # mm; at least ~1.5 px across
        rr, cc = np.nonzero(lab == lid)
        if len(rr) == 0:
            continue
        i = int(rng.integers(len(rr)))
        disk = (x - x[rr[i], cc[i]]) ** 2 + (y - y[rr[i], cc[i]]) ** 2 <= r * r
        ring = (x - x[rr[i], cc[i]]) ** 2 + (y - y[rr[i], cc[i]]) ** 2 <= (r + 2 * px) ** 2
        if not np.all(lab[ring] == lid) or np.any(taken[ring]):
            continue
        out[disk] = 1.0 if rng.random() < 0.5 else -1.0
        taken |= ring
        placed += 1
    return out


def _phantom_parts(rng: np.random.Generator, size: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "body":
        hu, lab, ids = _body_parts(rng, size)
    elif kind == "shepp_logan":
        hu, lab, ids = _shepp_logan_parts(rng, size)
    else:
        raise LoraIqaError(f"synth: phantom 'kind' must be body|shepp_logan, got {kind!r}")
    return hu, _lesions(rng, size, lab, ids)


def make_phantom(rng: np.random.Generator, size: int, kind: str, lesion_hu: float = 30.0) -> np.ndarray:
    """A phantom in HU (``kind`` in {"body", "shepp_logan"}) with its lesions at ``±|lesion_hu|``."""
    hu, les = _phantom_parts(rng, size, kind)
    return hu + abs(float(lesion_hu)) * les
