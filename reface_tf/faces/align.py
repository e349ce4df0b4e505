"""Face alignment maths: a similarity transform onto a canonical template, its inverse, and a blending mask.

Pure numpy / OpenCV; no MediaPipe. Landmark indices are those of MediaPipe's 478-point face mesh.

>>> aligned = align_face(rgb, face.landmarks, size=256)             # doctest: +SKIP
>>> back, valid = warp_back(generated, aligned.matrix, rgb.shape[:2])  # doctest: +SKIP
>>> alpha = face_mask(aligned.landmarks, 256, feather=8)[..., None] * valid[..., None]  # doctest: +SKIP

Template geometry (``margin`` = 0): the face mesh spans the unit square from the top of the forehead mesh
(y = 0) to the chin (y = 1), centred horizontally. The positions were measured as the mean of frontal faces in
face-height units and made left/right symmetric. ``margin`` shrinks that square into the middle of the output,
leaving a ``margin * size`` border on every side for hair, ears and neck. Names are image sides:
``eye_left`` is the eye on the left of the picture (the subject's right eye).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

DEFAULT_SIZE = 256
DEFAULT_MARGIN = 0.2
BORDER_MODES = {
    "reflect": cv2.BORDER_REFLECT_101,
    "constant": cv2.BORDER_CONSTANT,
    "replicate": cv2.BORDER_REPLICATE,
}

# Eye contours of the face mesh (image-left eye, image-right eye); their means are steadier than any single
# point or the iris centre, which moves with gaze.
EYE_LEFT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
EYE_RIGHT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
NOSE_TIP = 1
MOUTH_LEFT, MOUTH_RIGHT = 61, 291
# Face oval in order around the face, used as the blending polygon.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)

POINT_NAMES = ("eye_left", "eye_right", "nose_tip", "mouth_left", "mouth_right")
_UNIT_TEMPLATE = np.array(
    [[0.30, 0.30], [0.70, 0.30], [0.50, 0.56], [0.32, 0.69], [0.68, 0.69]], dtype=np.float64
)
# Mouth corners move with expression (a before/after pair rarely smiles alike), so they count half.
_POINT_WEIGHTS = np.array([1.0, 1.0, 1.0, 0.5, 0.5])


def _template_id() -> str:
    """``face-mesh-5pt-<digest>``: names the template by everything that decides where a face lands (the
    landmark indices of the five points, their template positions and weights), so any change to them gives
    another identifier and a dataset aligned to the old template is recognised as such."""
    parts = [np.asarray(EYE_LEFT, np.float64), np.asarray(EYE_RIGHT, np.float64),
             np.asarray([NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT], np.float64), _UNIT_TEMPLATE.ravel(), _POINT_WEIGHTS]
    digest = hashlib.sha256(np.concatenate(parts).astype("<f8").tobytes()).hexdigest()
    return f"face-mesh-5pt-{digest[:12]}"


# The identifier of the one template align_face aligns to; recorded with every aligned dataset (alignment.json).
TEMPLATE_ID = _template_id()


@dataclass(frozen=True)
class AlignedFace:
    image: np.ndarray  # (size, size, 3) uint8
    matrix: np.ndarray  # (2, 3) float64 forward transform, original pixel → aligned pixel
    landmarks: np.ndarray  # (478, 2) float32, landmarks in aligned pixel coordinates
    face_size: float  # longer side of the face-oval box in the original image, in pixels


def _check_margin(margin: float) -> None:
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")


def template_points(size: int = DEFAULT_SIZE, margin: float = DEFAULT_MARGIN) -> dict[str, tuple[float, float]]:
    """Template positions (x, y) in output pixels, keyed by :data:`POINT_NAMES`."""
    return dict(zip(POINT_NAMES, (tuple(map(float, p)) for p in _template_array(size, margin))))


def _template_array(size: int, margin: float) -> np.ndarray:
    _check_margin(margin)
    return size * (margin + (1.0 - 2.0 * margin) * _UNIT_TEMPLATE)


def stable_points(landmarks: np.ndarray) -> np.ndarray:
    """The five alignment points (eye centres, nose tip, mouth corners) as a (5, 2) array."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 468:
        raise ValueError(f"expected (478, 2) face-mesh landmarks, got shape {pts.shape}")
    return np.stack([
        pts[list(EYE_LEFT)].mean(axis=0),
        pts[list(EYE_RIGHT)].mean(axis=0),
        pts[NOSE_TIP],
        pts[MOUTH_LEFT],
        pts[MOUTH_RIGHT],
    ])


def estimate_similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst``.

    Umeyama (1991) with optional per-point weights; reflections are excluded, so a mirrored point set gives
    the best proper rotation instead of a flip. Returns the 2x3 matrix ``M`` with ``dst ≈ M @ [x, y, 1]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need two matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_src, mu_dst = w @ src, w @ dst
    src_c, dst_c = src - mu_src, dst - mu_dst
    var_src = float(w @ (src_c**2).sum(axis=1))
    if var_src <= 1e-12:
        raise ValueError("source points are degenerate (all at one place)")
    cov = (dst_c * w[:, None]).T @ src_c
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / var_src)
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_dst - scale * rotation @ mu_src
    return matrix


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    return pts @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def invert_similarity(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def _border(border_mode: str) -> int:
    try:
        return BORDER_MODES[border_mode]
    except KeyError:
        raise ValueError(f"border_mode must be one of {sorted(BORDER_MODES)}, got {border_mode!r}") from None


def _prefilter(image: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Halve the image with a Gaussian pyramid while the warp still shrinks by more than 2x.

    Bilinear sampling alone aliases when a large photo is reduced to a 256 px face (hair and skin texture
    turn into moiré). pyrDown output pixel i sits on input pixel 2i, so the matrix absorbs a factor 2 per step.
    """
    matrix = np.asarray(matrix, dtype=np.float64).copy()
    while np.sqrt(abs(np.linalg.det(matrix[:, :2]))) < 0.5 and min(image.shape[:2]) >= 32:
        image = cv2.pyrDown(image)
        matrix[:, :2] *= 2.0
    return image, matrix


def align_face(
    rgb: np.ndarray,
    landmarks: np.ndarray,
    size: int = DEFAULT_SIZE,
    margin: float = DEFAULT_MARGIN,
    border_mode: str = "reflect",
) -> AlignedFace:
    """Warp ``rgb`` so the face's stable points land on the template of a ``size`` x ``size`` output."""
    if size < 16:
        raise ValueError(f"size must be at least 16 px, got {size}")
    landmarks = np.asarray(landmarks, dtype=np.float64)
    matrix = estimate_similarity(stable_points(landmarks), _template_array(size, margin), _POINT_WEIGHTS)
    source, sample_matrix = _prefilter(np.ascontiguousarray(rgb), matrix)
    image = cv2.warpAffine(source, sample_matrix, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=_border(border_mode), borderValue=0)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    oval = landmarks[list(FACE_OVAL)]
    face_size = float((oval.max(axis=0) - oval.min(axis=0)).max())
    return AlignedFace(
        image=image,
        matrix=matrix,
        landmarks=transform_points(landmarks, matrix).astype(np.float32),
        face_size=face_size,
    )


def warp_back(
    aligned_like_image: np.ndarray, matrix: np.ndarray, original_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Map an aligned-frame image (e.g. a generated face) back into the original photo's frame.

    Returns ``(image, valid)``: the image at ``original_hw`` (same dtype and channels as the input) and a bool
    mask of the original pixels whose source lies inside the aligned image. Outside it the image is 0.
    """
    height, width = int(original_hw[0]), int(original_hw[1])
    src = np.ascontiguousarray(aligned_like_image)
    forward = np.asarray(matrix, dtype=np.float64)
    # WARP_INVERSE_MAP treats the matrix as destination→source, which for us is exactly original→aligned.
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    image = cv2.warpAffine(src, forward, (width, height), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if src.ndim == 3 and image.ndim == 2:
        image = image[..., None]
    # Valid where all four bilinear neighbours lie inside the aligned image: warping an all-255 image the
    # same way stays exactly 255 there and drops below it wherever the zero border was blended in.
    ones = np.full(src.shape[:2], 255, dtype=np.uint8)
    coverage = cv2.warpAffine(ones, forward, (width, height), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    valid = coverage == 255
    image[~valid] = 0  # the one-pixel fringe where the zero border was blended in is not valid either
    return image, valid


def face_mask(landmarks_aligned: np.ndarray, size: int = DEFAULT_SIZE, feather: float = 8.0,
              fade_inside: bool = True) -> np.ndarray:
    """Float32 (size, size) mask in [0, 1]: 1 inside the face oval, fading to 0 over about ``feather`` px.

    With ``fade_inside`` (the default, what ``predict.py`` blends with) the whole fade lies inside the oval: the
    weight is a smoothstep of each pixel's distance from the outside of the oval, 0 up to 1.5 px inside it (the
    oval's outline: every pixel with a neighbour outside) and 1 from ``feather`` + 1.5 px on. The weight on the
    outline and outside the oval is exactly 0, so blending never pulls generated pixels over the background.

    ``fade_inside=False`` is the procedure simulation's (demo dataset builder's) fade, kept bit for bit as it
    always was: the polygon shrunk by ``feather / 2`` and blurred with sigma ``feather / 3``. That blur reaches
    past the oval: about 7-10 % weight on the outline at ``feather`` 8-20 and up to ~7 % just outside.

    ``feather`` 0 gives the anti-aliased oval itself.
    """
    oval = np.asarray(landmarks_aligned, dtype=np.float64)[list(FACE_OVAL)]
    mask = np.zeros((size, size), dtype=np.uint8)
    # Sub-pixel accurate polygon: 4 fractional bits.
    cv2.fillPoly(mask, [np.round(oval * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    if feather <= 0:
        return mask.astype(np.float32) / 255.0
    if not fade_inside:
        return _blurred_fade(mask, feather)
    inside = (mask >= 128).astype(np.uint8)  # the pixels the oval covers by more than half
    # Distance to the nearest pixel outside (exact Euclidean): 1 or sqrt(2) on the outline, more further in.
    distance = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    t = np.clip((distance - _OUTLINE_PX) / float(feather), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


# Pixels whose distance to the outside of the oval is at most this (the outline: 1 or sqrt(2)) get weight 0.
_OUTLINE_PX = 1.5


def _blurred_fade(mask: np.ndarray, feather: float) -> np.ndarray:
    """The original fade, used by the demo dataset builder (reface_tf.synth.procedure); do not change it."""
    radius = max(1, int(round(feather / 2)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    mask = cv2.erode(mask, kernel)
    mask = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=feather / 3.0)
    return np.clip(mask / 255.0, 0.0, 1.0).astype(np.float32)
