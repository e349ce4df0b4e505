"""FusedAdam (one ResourceApplyAdam per variable) against keras.optimizers.Adam, single device and mirrored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS, LR = 5, 1e-2
SHAPES = [(3, 3, 2, 4), (4,), (7, 5)]

# Tolerance. With beta_2 = 0.999, float32(0.999) = 0.99900001287, so the fused kernel's 1 - beta_2 is 0.00099998713
# while Keras Adam multiplies by the Python double 1 - 0.999 = 0.001: v differs by ~1.3e-5 relative, and the step
# (proportional to sqrt(1 - beta_2^t) / sqrt(v)) by ~6.4e-6 relative, i.e. about 6.4e-6 * LR per step. Over STEPS steps
# with |w| ~ 1 (float32 ulp ~1.2e-7) that is under ~5e-7; 2e-5 * LR per step (1e-6 in all) leaves margin, and is
# still 1000x smaller than a missing bias correction or a wrong beta would give (a sizeable fraction of LR per step).
ATOL_WEIGHTS = 2e-5 * LR * STEPS
RTOL_V = 3e-5  # second moment: 1.3e-5 relative expected (the rounding of 1 - beta_2 above)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    grads = [[rng.normal(size=s).astype(np.float32) for s in SHAPES] for _ in range(STEPS)]
    return init, grads


def _run(cls, init, grads, beta_2):
    import keras
    import tensorflow as tf

    variables = [keras.Variable(x) for x in init]
    opt = cls(learning_rate=LR, beta_1=0.5, beta_2=beta_2)
    opt.build(variables)
    for g in grads:
        opt.apply_gradients(zip([tf.constant(a) for a in g], variables))
    return ([v.numpy() for v in variables], [m.numpy() for m in opt._momentums], [v.numpy() for v in opt._velocities],
            int(opt.iterations.numpy()))


def _count_fused_calls(monkeypatch):
    import tensorflow as tf

    calls, original = [], tf.raw_ops.ResourceApplyAdam

    def counting(**kw):
        calls.append(1)
        return original(**kw)

    monkeypatch.setattr(tf.raw_ops, "ResourceApplyAdam", counting)
    return calls


def test_fused_adam_matches_keras_adam_over_five_steps(monkeypatch):
    import keras

    from reface_tf.train.step import FusedAdam

    init, grads = _data()
    calls = _count_fused_calls(monkeypatch)
    fw, fm, fv, fit = _run(FusedAdam, init, grads, 0.999)
    assert len(calls) == STEPS * len(SHAPES)  # the fused kernel did the updates, not the Keras fallback
    kw, km, kv, kit = _run(keras.optimizers.Adam, init, grads, 0.999)
    assert fit == kit == STEPS
    for x0, a, b in zip(init, fw, kw):
        assert np.abs(a - x0).max() > 0.5 * LR  # the weights did move (by ~LR per step)
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL_WEIGHTS)
    for a, b in zip(fm, km):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(fv, kv):
        np.testing.assert_allclose(a, b, rtol=RTOL_V)


def test_fused_adam_matches_to_rounding_when_beta2_is_exact_in_float32():
    # beta_2 = 0.75 is exact in float32, so the only differences left are float32 rounding of the update.
    import keras

    from reface_tf.train.step import FusedAdam

    init, grads = _data(1)
    fw, _, fv, _ = _run(FusedAdam, init, grads, 0.75)
    kw, _, kv, _ = _run(keras.optimizers.Adam, init, grads, 0.75)
    for a, b in zip(fw, kw):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    for a, b in zip(fv, kv):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_fused_adam_hand_computed_first_step():
    # Step 1 of Adam: m = (1-b1) g, v = (1-b2) g^2, alpha = lr sqrt(1-b2) / (1-b1), so the update is lr * g / (|g| + eps')
    # with eps' = eps / sqrt(1-b2): essentially lr * sign(g) for |g| >> eps.
    import keras
    import tensorflow as tf

    from reface_tf.train.step import FusedAdam

    var = keras.Variable(np.array([1.0, -2.0, 0.5, 3.0], np.float32))
    opt = FusedAdam(learning_rate=0.1, beta_1=0.5, beta_2=0.75, epsilon=1e-7)
    opt.apply_gradients([(tf.constant([0.5, -4.0, 2.0, -1.0]), var)])
    np.testing.assert_allclose(var.numpy(), [0.9, -1.9, 0.4, 3.1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(opt._momentums[0].numpy(), [0.25, -2.0, 1.0, -0.5], rtol=1e-6)
    np.testing.assert_allclose(opt._velocities[0].numpy(), [0.0625, 4.0, 1.0, 0.25], rtol=1e-6)


MIRRORED_SCRIPT = """
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from reface_tf.train.step import FusedAdam
calls, original = [], tf.raw_ops.ResourceApplyAdam
tf.raw_ops.ResourceApplyAdam = lambda **kw: (calls.append(1), original(**kw))[1]
init, grads = [np.array(x, np.float32) for x in json.loads(sys.argv[1])], json.loads(sys.argv[2])
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    variables = [keras.Variable(x) for x in init]
    opt = FusedAdam(learning_rate=float(sys.argv[3]), beta_1=0.5, beta_2=0.999)
    opt.build(variables)

@tf.function
def step(g0, g1):
    def replica_fn(*flat):
        r = tf.distribute.get_replica_context().replica_id_in_sync_group
        n = len(flat) // 2
        # replica 0 gets g0, replica 1 gets g1: the all-reduced SUM applied is g0 + g1
        own = [tf.where(tf.equal(r, 0), a, b) for a, b in zip(flat[:n], flat[n:])]
        opt.apply_gradients(zip(own, variables))
    strategy.run(replica_fn, args=tuple(g0) + tuple(g1))

for g in grads:
    g0 = [np.array(x, np.float32) for x in g]
    g1 = [0.25 * x for x in g0]  # different on each replica; sum = 1.25 g
    step([tf.constant(x) for x in g0], [tf.constant(x) for x in g1])
copies = [[c.numpy().tolist() for c in strategy.experimental_local_results(v.value)] for v in variables]
print("RESULT", json.dumps({"replicas": strategy.num_replicas_in_sync, "copies": copies,
                            "iterations": int(opt.iterations.numpy()), "fused_traced": len(calls)}))
"""


@pytest.mark.slow
def test_fused_adam_under_mirrored_strategy_matches_single_device_keras_adam():
    import keras

    init, grads = _data(2)
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, json.dumps([x.tolist() for x in init]),
                           json.dumps([[g.tolist() for g in step] for step in grads]), repr(LR)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert result["replicas"] == 2 and result["iterations"] == STEPS
    assert result["fused_traced"] >= 2 * len(SHAPES)  # traced once per variable and device: the fused path was used
    # Reference: one device, Keras Adam, the summed gradient 1.25 g.
    ref, _, _, _ = _run(keras.optimizers.Adam, init, [[1.25 * g for g in step] for step in grads], 0.999)
    for x0, copies, expected in zip(init, result["copies"], ref):
        assert len(copies) == 2
        a, b = (np.array(c, np.float32) for c in copies)
        np.testing.assert_array_equal(a, b)  # the replicas' copies stay identical
        assert np.abs(a - x0).max() > 0.5 * LR
        np.testing.assert_allclose(a, expected, rtol=0, atol=ATOL_WEIGHTS)  # see ATOL_WEIGHTS for the 1 - beta_2 rounding
