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

Modules
    ``shapes`` (signed distances, outlines, texture fields, the canvas), ``field`` (body width and field
    placement), ``trunk`` (tissue values, the trunk's wall, the table, organ labels), ``parts`` (spine,
    ribs, vessel trees, bowel), one module per region, and here the lesions and :func:`anatomy_slice`.
"""

from __future__ import annotations

import math

import numpy as np

from lora_iqa.data.synth.anatomy.abdomen import abdomen
from lora_iqa.data.synth.anatomy.chest import chest
from lora_iqa.data.synth.anatomy.head import head
from lora_iqa.data.synth.anatomy.pelvis import pelvis
from lora_iqa.data.synth.anatomy.shapes import Canvas, d_ellipse
from lora_iqa.data.synth.anatomy.trunk import LABEL_NAMES
from lora_iqa.errors import LoraIqaError

REGIONS = ("abdomen", "chest", "head", "pelvis")
_REGION_P = (0.35, 0.25, 0.2, 0.2)
ZOOM_P = 0.3
_BUILDERS = {"abdomen": abdomen, "chest": chest, "head": head, "pelvis": pelvis}


def _circle(size: int) -> np.ndarray:
    """The reconstruction circle (the same test as ct_physics._circle)."""
    c = (np.arange(size) - size // 2) ** 2
    return c[:, None] + c[None, :] <= (size // 2) ** 2


def _lesions(cv: Canvas, rng, organs, circle):
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
    for _ in range(int(rng.integers(1, 5))):
        for attempt in range(30):
            lid = avail[int(rng.choice(len(avail), p=w))][0]
            r_, c_ = divmod(int(pix[lid][int(rng.integers(len(pix[lid])))]), cv.n)
            x, y = float(cv.X[r_, c_]), float(cv.Y[r_, c_])
            dia = u(4.0, 15.0) * (1.0 - attempt / 45)
            asp = u(1.0, 1.4)
            a, b, rot = dia / 2 * math.sqrt(asp), dia / 2 / math.sqrt(asp), u(0, math.pi)
            margin = 1.5 + cv.px
            bb = cv.bbox(x, y, max(a, b) + margin)
            X, Y = cv.xy(bb)
            ring = d_ellipse(X, Y, x, y, a + margin, b + margin, rot) < 0
            if not np.all(lab[bb][ring] == lid) or np.any(taken[bb][ring]):
                continue
            sign = 1.0 if rng.random() < 0.5 else -1.0
            out[bb] += sign * cv.cov(d_ellipse(X, Y, x, y, a, b, rot), u(0.7, 1.5))
            taken[bb] |= ring
            found.append({"organ": LABEL_NAMES[lid], "center_mm": [round(x, 2), round(y, 2)],
                          "diameter_mm": round(2 * math.sqrt(a * b), 2), "sign": int(sign)})
            break
    return out, found


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
    info = {"region": region, **extra, "body_width_mm": round(2 * body.a, 2), "body_depth_mm": round(body.b + body.bp, 2),
            "zoom": bool(inside), "roi": roi, "center_mm": [round(cv.cx, 2), round(cv.cy, 2)], "fov_mm": round(size * px, 2),
            "spacing_mm": px, "tilt_deg": round(math.degrees(math.atan2(cv.sin, cv.cos)), 2),
            "fill": round(float(np.count_nonzero(hu[circle] > -500.0)) / nc, 4),
            "body_fraction": round(float(np.count_nonzero(body_cov[circle] > 0.5)) / nc, 4), "lesions": found}
    return hu, les, info
