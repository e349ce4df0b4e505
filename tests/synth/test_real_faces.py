"""The synth builders on a real face: a re-detected "after" really has a narrower nose and jaw and higher brows."""

from __future__ import annotations

import numpy as np
import pytest

from reface_tf.synth import mesh

pytestmark = pytest.mark.network  # the landmark model comes from the package registry


@pytest.fixture(scope="module")
def real_face():
    skimage_data = pytest.importorskip("skimage.data")
    from reface_tf.faces.align import align_face
    from reface_tf.faces.landmarks import FaceLandmarker

    landmarker = FaceLandmarker()
    try:
        faces = landmarker.detect(skimage_data.astronaut())
        aligned = align_face(skimage_data.astronaut(), faces[0].landmarks, size=256)
        yield aligned, landmarker
    finally:
        landmarker.close()


def _width(lm: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(lm[a] - lm[b]))


def test_redetected_after_shows_the_edits(real_face):
    from reface_tf.synth.procedure import simulate_procedure

    aligned, landmarker = real_face
    after = simulate_procedure(aligned.image, aligned.landmarks, strength=1.5)
    redetected = landmarker.detect(after.image)
    assert redetected, "the simulated face must still look like a face"
    # Compare like with like: the detector's own reading of the unedited aligned face is the baseline. The face
    # mesh regresses towards an average shape, so it reports only part of the pixel motion (the warp itself
    # moves the alae by 30 % of their distance to the midline; the detector sees about 5 %).
    before_lm = landmarker.detect(aligned.image)[0].landmarks
    after_lm = redetected[0].landmarks
    assert _width(after_lm, 64, 294) < 0.975 * _width(before_lm, 64, 294)  # alae
    assert _width(after_lm, 136, 365) < 0.965 * _width(before_lm, 136, 365)  # jaw angles
    brows = list(mesh.RIGHT_BROW + mesh.LEFT_BROW)
    assert after_lm[brows, 1].mean() < before_lm[brows, 1].mean() - 2.5
    assert after_lm[1, 1] < before_lm[1, 1] - 0.5  # nose tip raised
    eyes = list(mesh.RIGHT_EYE + mesh.LEFT_EYE)
    assert np.abs(after_lm[eyes] - before_lm[eyes]).mean() < 1.0  # eyes held in place
    np.testing.assert_array_equal(after.image[~after.region], aligned.image[~after.region])


def test_segmap_and_sketch_on_a_real_face(real_face):
    from reface_tf.synth.segmaps import CLASS_INDEX, landmark_segmap
    from reface_tf.synth.sketch import pencil_sketch

    aligned, _ = real_face
    lm = aligned.landmarks
    labels = landmark_segmap(lm, (256, 256))
    at = lambda p: int(labels[int(round(p[1])), int(round(p[0]))])  # noqa: E731
    assert at(lm[4]) == CLASS_INDEX["nose"]
    assert at(lm[list(mesh.LEFT_EYE)].mean(0)) == CLASS_INDEX["l_eye"]
    assert at(lm[list(mesh.RIGHT_EYE)].mean(0)) == CLASS_INDEX["r_eye"]
    assert at((lm[105] + lm[52]) / 2) == CLASS_INDEX["r_brow"]  # between the upper and lower brow edge
    assert at(lm[0] + (0, 1)) == CLASS_INDEX["u_lip"] and at(lm[17] - (0, 1)) == CLASS_INDEX["l_lip"]
    ink = (pencil_sketch(aligned.image)[..., 0] < 128).mean()
    assert 0.03 < ink < 0.5  # a drawing: some ink, mostly paper
