import numpy as np
import pytest

from reface_tf.data.images import load_rgb
from reface_tf.metrics.identity import cosine, load_identity_model, pair_identity
from reface_tf.registry import RegistryFile, fetch

pytestmark = pytest.mark.network


def photo(name):
    return load_rgb(fetch(RegistryFile("face_recognition==1.3.0", f"tests/test_images/{name}", sdist=True)))


@pytest.fixture(scope="module")
def model():
    model, description = load_identity_model()
    assert model is not None, description
    return model


def test_same_person_is_closer_than_another(model):
    feats = {n: model.feature(model.crop(im, model.landmarks(im)))
             for n in ("obama.jpg", "obama2.jpg", "biden.jpg") for im in [photo(n)]}
    same = cosine(feats["obama.jpg"], feats["obama2.jpg"])
    other = cosine(feats["obama.jpg"], feats["biden.jpg"])
    assert same > 0.5 > other  # SFace's published same-person threshold is 0.363
    assert np.linalg.norm(feats["biden.jpg"]) == pytest.approx(1.0)


def test_pair_identity_uses_one_crop_for_the_triple(model):
    face = photo("obama.jpg")
    result = pair_identity(model, face, face, face)
    assert result.crop == "landmarks"
    assert result.output_target == pytest.approx(1.0) and result.input_target == pytest.approx(1.0)
    blank = np.full((64, 64, 3), 127, np.uint8)
    assert pair_identity(model, blank, blank, blank).crop == "whole"
