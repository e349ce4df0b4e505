"""SIMULATED post-operative faces: a smooth landmark-driven warp of an aligned photo.

This is not a surgical prediction. It makes plausible, clearly synthetic "after" images so the Pix2Pix
pipeline can be trained and demonstrated end to end without real before/after photos. Everything written from
these outputs must say that it is simulated.

The "after" landmarks are the "before" landmarks with three edits, all scaled by ``strength`` (0 = identity):

* nose: the alae move toward the nasal midline (narrowing), the tip rises a little and narrows (refinement);
* jawline: the lower face oval moves toward the midline, most at the jaw angles, and the jowls lift slightly;
* brows: lifted, the lateral tails more than the heads.

A thin-plate spline through those control points plus fixed anchors (eyes, lips, cheeks, forehead and a ring
around the face) gives a dense backward displacement, applied with ``cv2.remap``. Only pixels inside the
*edit region* — the face oval grown by ``region_growth`` of the face height, so the jaw can move inward over
the neck and background — may change; every other pixel is copied unchanged. Optional mild skin smoothing
acts inside the face oval only, away from eyes, brows, nostrils and lips.

>>> after = simulate_procedure(aligned.image, aligned.landmarks, strength=1.0)   # doctest: +SKIP
>>> after.image, after.landmarks, after.region                                 # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from reface_tf.faces.align import face_mask
from reface_tf.synth import mesh

SIMULATED_NOTE = "SIMULATED: synthetic landmark-driven warp, not a surgical prediction or a real outcome."


@dataclass(frozen=True)
class ProcedureConfig:
    """Edit amounts at ``strength`` 1. Fractions of a distance to the facial midline or of the face height."""

    nose_narrowing: float = 0.20  # share of each ala's distance to the midline removed
    tip_narrowing: float = 0.12
    tip_lift: float = 0.012  # face heights
    jaw_tightening: float = 0.07  # share of the jaw's distance to the midline removed (at the jaw angle)
    jaw_lift: float = 0.008  # face heights, jowls and chin
    brow_lift: float = 0.018  # face heights at the brow head; the lateral tail gets 1.6x
    smoothing: float = 0.4  # skin-smoothing blend weight (0 = off)
    region_growth: float = 0.12  # edit region = face oval grown by this share of the face height
    grid_step: int = 4  # the spline is evaluated every ``grid_step`` px and interpolated between


@dataclass(frozen=True)
class SimulatedAfter:
    image: np.ndarray  # HxWx3 uint8, the SIMULATED "after"
    landmarks: np.ndarray  # (478, 2) float32, where the landmarks were moved to
    region: np.ndarray  # HxW bool: the only pixels that may differ from the input
    note: str = field(default=SIMULATED_NOTE)


def _frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Face-centred axes: centre on the nasal midline, ``down`` (forehead → chin) and ``across`` unit vectors."""
    down = landmarks[mesh.CHIN] - landmarks[mesh.FOREHEAD]
    height = float(np.linalg.norm(down))
    if height < 1e-3:
        raise ValueError("degenerate landmarks: forehead and chin coincide")
    down = down / height
    across = np.array([-down[1], down[0]])
    centre = landmarks[list(mesh.NOSE_MIDLINE)].mean(axis=0)
    return centre, down, across, height


def _toward_midline(points: np.ndarray, centre: np.ndarray, across: np.ndarray, amount: np.ndarray | float) -> np.ndarray:
    offset = (points - centre) @ across
    return points - (np.asarray(amount)[..., None] if np.ndim(amount) else amount) * offset[:, None] * across


def target_landmarks(landmarks: np.ndarray, strength: float = 1.0, config: ProcedureConfig | None = None) -> np.ndarray:
    """The SIMULATED "after" positions of all 478 landmarks (unedited points stay where they are)."""
    cfg = config or ProcedureConfig()
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (478, 2):
        raise ValueError(f"expected (478, 2) landmarks, got {lm.shape}")
    out = lm.copy()
    if strength == 0:
        return out.astype(np.float32)
    centre, down, across, height = _frame(lm)
    s = float(strength)

    ala = list(mesh.NOSE_ALA_RIGHT + mesh.NOSE_ALA_LEFT)
    out[ala] = _toward_midline(lm[ala], centre, across, cfg.nose_narrowing * s)

    tip = list(mesh.NOSE_TIP)
    out[tip] = _toward_midline(lm[tip], centre, across, cfg.tip_narrowing * s)
    out[tip] -= cfg.tip_lift * s * height * down

    jaw = list(mesh.JAW)
    # Most at the jaw angles, less toward the ears and the chin (which stays on the midline anyway).
    angle_weight = {132: 0.4, 361: 0.4, 58: 0.75, 288: 0.75, 172: 1.0, 397: 1.0, 136: 1.0, 365: 1.0,
                    150: 0.9, 379: 0.9, 149: 0.7, 378: 0.7, 176: 0.5, 400: 0.5, 148: 0.3, 377: 0.3, 152: 0.0}
    weights = np.array([angle_weight[i] for i in jaw])
    out[jaw] = _toward_midline(lm[jaw], centre, across, cfg.jaw_tightening * s * weights)
    jowls = [149, 176, 148, 152, 377, 400, 378, 150, 379]
    out[jowls] -= cfg.jaw_lift * s * height * down

    for brow in (mesh.RIGHT_BROW, mesh.LEFT_BROW):
        idx = list(brow)
        lateral = np.abs((lm[idx] - centre) @ across)
        lateral = (lateral - lateral.min()) / max(lateral.max() - lateral.min(), 1e-6)
        out[idx] -= (cfg.brow_lift * s * height * (1.0 + 0.6 * lateral))[:, None] * down
    return out.astype(np.float32)


def _grown_oval(landmarks: np.ndarray, growth: float) -> np.ndarray:
    oval = np.asarray(landmarks, dtype=np.float64)[list(mesh.FACE_OVAL)]
    centre = oval.mean(axis=0)
    _, _, _, height = _frame(np.asarray(landmarks, dtype=np.float64))
    radial = oval - centre
    norms = np.linalg.norm(radial, axis=1, keepdims=True)
    return oval + radial / np.maximum(norms, 1e-6) * growth * height


def edit_region(landmarks: np.ndarray, shape: tuple[int, int], growth: float = ProcedureConfig.region_growth) -> np.ndarray:
    """Bool HxW mask of the pixels a simulation may change: the face oval grown by ``growth`` face heights."""
    mask = np.zeros(shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(_grown_oval(landmarks, growth)).astype(np.int32)], 1)
    return mask.astype(bool)


def displacement_field(before: np.ndarray, after: np.ndarray, shape: tuple[int, int],
                       config: ProcedureConfig | None = None) -> np.ndarray:
    """Backward displacement (HxWx2 float32, dx/dy): output pixel ``q`` samples the input at ``q + d(q)``.

    Thin-plate spline through the moved points (at their "after" positions) plus zero-displacement anchors;
    tapered to exactly zero at the edge of the edit region.
    """
    from scipy.interpolate import RBFInterpolator

    cfg = config or ProcedureConfig()
    before = np.asarray(before, dtype=np.float64)
    after = np.asarray(after, dtype=np.float64)
    h, w = shape[:2]
    moved = np.flatnonzero(np.linalg.norm(after - before, axis=1) > 1e-6)
    if moved.size == 0:
        return np.zeros((h, w, 2), dtype=np.float32)
    anchors_idx = sorted(set(mesh.RIGHT_EYE + mesh.LEFT_EYE + mesh.LIPS_OUTER_UPPER + mesh.LIPS_OUTER_LOWER
                             + mesh.CHEEKS + (mesh.FOREHEAD, 168, 6, 2))
                         | (set(mesh.FACE_OVAL) - set(mesh.JAW)) - set(moved.tolist()))
    ring = _grown_oval(before, cfg.region_growth)
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64)
    points = np.concatenate([after[moved], before[anchors_idx], ring, corners])
    values = np.concatenate([before[moved] - after[moved], np.zeros((len(anchors_idx) + len(ring) + 4, 2))])
    # A little smoothing keeps the spline from ringing where a moved point sits close to an anchor.
    spline = RBFInterpolator(points, values, kernel="thin_plate_spline", smoothing=1e-2)
    step = max(1, int(cfg.grid_step))
    gy, gx = np.mgrid[0:h + step:step, 0:w + step:step].astype(np.float64)
    coarse = spline(np.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(gy.shape + (2,)).astype(np.float32)
    # Each coarse sample sits at a multiple of ``step``; an affine resize maps them back onto the pixel grid.
    scale = np.array([[1.0 / step, 0, 0], [0, 1.0 / step, 0]], dtype=np.float64)
    dense = cv2.warpAffine(coarse, scale, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    region = edit_region(before, (h, w), cfg.region_growth).astype(np.uint8)
    # Taper over ~4% of the face height inside the region edge, reaching exactly 0 at the edge.
    _, _, _, height = _frame(before)
    ramp = max(2.0, 0.04 * height)
    dist = cv2.distanceTransform(region, cv2.DIST_L2, 5)
    taper = np.clip(dist / ramp, 0.0, 1.0)
    taper = taper * taper * (3.0 - 2.0 * taper)  # smoothstep: no crease at the ramp's ends
    return (dense * taper[..., None]).astype(np.float32)


def _smoothing_mask(after: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Float mask in [0, 1]: skin inside the face oval, excluding eyes, brows, nostrils and lips (feathered)."""
    h, w = shape[:2]
    _, _, _, height = _frame(np.asarray(after, dtype=np.float64))
    feather = max(2.0, 0.04 * height)
    mask = face_mask(after, size=max(h, w), feather=feather, fade_inside=False)[:h, :w]
    keep = np.zeros((h, w), dtype=np.uint8)
    for poly in (mesh.RIGHT_EYE, mesh.LEFT_EYE, mesh.RIGHT_BROW, mesh.LEFT_BROW, mesh.UPPER_LIP, mesh.LOWER_LIP):
        cv2.fillPoly(keep, [np.round(after[list(poly)]).astype(np.int32)], 1)
    nostrils = cv2.convexHull(np.round(after[[98, 327, 2, 64, 294, 240, 460]]).astype(np.int32))
    cv2.fillPoly(keep, [nostrils], 1)
    radius = max(1, int(round(0.03 * height)))
    keep = cv2.dilate(keep, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    keep = cv2.GaussianBlur(keep.astype(np.float32), (0, 0), sigmaX=radius / 2.0)
    return np.clip(mask * (1.0 - keep), 0.0, 1.0)


def simulate_procedure(image: np.ndarray, landmarks: np.ndarray, strength: float = 1.0,
                       config: ProcedureConfig | None = None) -> SimulatedAfter:
    """A SIMULATED "after" for an aligned face (HxWx3 uint8) and its landmarks in the same pixel frame.

    Deterministic. ``strength`` 0 returns an exact copy; pixels outside :func:`edit_region` are never changed.
    """
    cfg = config or ProcedureConfig()
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 image, got {img.dtype} {img.shape}")
    if not 0.0 <= strength <= 3.0:
        raise ValueError(f"strength must be in [0, 3], got {strength}")
    before = np.asarray(landmarks, dtype=np.float64)
    h, w = img.shape[:2]
    region = edit_region(before, (h, w), cfg.region_growth)
    after = target_landmarks(before, strength, cfg)
    if strength == 0:
        return SimulatedAfter(img.copy(), after, region)

    disp = displacement_field(before, after, (h, w), cfg)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    warped = cv2.remap(img, gx + disp[..., 0], gy + disp[..., 1], interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT_101)
    if cfg.smoothing > 0:
        _, _, _, height = _frame(before)
        smooth = cv2.bilateralFilter(warped, d=0, sigmaColor=18.0, sigmaSpace=max(1.5, 0.012 * height))
        alpha = (_smoothing_mask(after.astype(np.float64), (h, w)) * min(1.0, cfg.smoothing * strength))[..., None]
        warped = np.clip(np.rint(warped * (1.0 - alpha) + smooth * alpha), 0, 255).astype(np.uint8)
    # The guarantee, by construction rather than by arithmetic luck: outside the region, the input's pixels.
    out = np.where(region[..., None], warped, img)
    return SimulatedAfter(out, after, region)
