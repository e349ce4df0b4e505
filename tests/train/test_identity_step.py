"""The identity term inside a real train step, with a small frozen test embedding graph (no download)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.train.test_precision import run_steps


def write_test_embedder(path):
    """A frozen GraphDef with FaceNet's interface: input:0 [1, 160, 160, 3] -> embeddings:0 [1, 16], unit length."""
    rng = np.random.default_rng(0)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 160, 160, 3], name="input")
        pooled = tf.reshape(tf.nn.avg_pool2d(x, 20, 20, "VALID"), [1, 8 * 8 * 3])
        emb = tf.matmul(pooled, tf.constant(rng.normal(size=(192, 16)).astype(np.float32)))
        tf.math.l2_normalize(emb, axis=-1, name="embeddings")
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


@pytest.mark.slow
def test_identity_term_is_logged_and_changes_the_generator_step(tiny_config, tmp_path):
    model = str(write_test_embedder(tmp_path / "embedder.pb"))
    results = {}
    for weight in (5.0, 0.0):
        cfg = tiny_config(loss={"lambda_identity": weight, "identity_model": model if weight else None},
                          model={"norm": "instance", "dropout": 0.0}, optim={"batch_size": 2})
        generator, _, (g_before, _), logs, _ = run_steps(cfg, steps=1)
        results[weight] = g_before, generator.get_weights(), {k: float(v) for k, v in logs[0].items()}
    (start_on, after_on, logs_on), (start_off, after_off, logs_off) = results[5.0], results[0.0]
    assert "identity" in logs_on and "identity" not in logs_off
    # 1 - cosine of unit embeddings of a (random) generator output and its target: finite, in (0, 2].
    assert np.isfinite(logs_on["identity"]) and 1e-4 < logs_on["identity"] <= 2.0, logs_on["identity"]
    # Same batch and weights otherwise: the other terms agree, and g_total adds the weighted identity term.
    assert logs_on["l1"] == pytest.approx(logs_off["l1"], rel=1e-5)
    assert logs_on["g_total"] == pytest.approx(logs_off["g_total"] + 5.0 * logs_on["identity"], rel=1e-5)
    for a, b in zip(start_on, start_off):
        np.testing.assert_array_equal(a, b)
    # Adam's first step is ~lr * sign(gradient): the identity gradient flips the sign for some weights.
    changed = sum(int(not np.allclose(a, b, rtol=0, atol=1e-6)) for a, b in zip(after_on, after_off))
    assert changed > 0
    assert max(np.abs(a - b).max() for a, b in zip(after_on, after_off)) > 1e-4  # ~2 lr for a flipped sign
