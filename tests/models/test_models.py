import keras
import numpy as np
import pytest

from reface_tf.models.patchgan import build_patchgan
from reface_tf.models.unet import build_unet_generator


def test_depth_8_is_exactly_the_tensorflow_tutorial():
    g = build_unet_generator(256, depth=8, base_filters=64, norm="batch")
    d = build_patchgan(256, n_layers=3, base_filters=64, norm="batch")
    assert g.count_params() == 54_425_859
    assert d.count_params() == 2_770_433
    assert g.output_shape == (None, 256, 256, 3)
    assert d.output_shape == (None, 30, 30, 1)  # 70x70 receptive field patches at 256


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_seed_depth_7_and_every_norm_produce_bounded_images(norm):
    g = build_unet_generator(128, input_channels=1, depth=7, base_filters=8, norm=norm, seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 128, 128, 1)).astype("float32")
    y = g(x, training=False).numpy()
    assert y.shape == (2, 128, 128, 3) and y.dtype == np.float32
    # The output depends on the input (two different examples give different images), deterministically.
    assert np.abs(y[0] - y[1]).mean() > 1e-4
    np.testing.assert_array_equal(g(x, training=False).numpy(), y)
    # Known weights: with every kernel zero all activations are 0, so the image is tanh(out bias) everywhere.
    for layer in g.layers:
        if hasattr(layer, "kernel"):
            layer.kernel.assign(np.zeros(layer.kernel.shape, "float32"))
    bias = np.array([0.5, -1.0, 2.0], "float32")
    g.get_layer("out_deconv").bias.assign(bias)
    np.testing.assert_allclose(g(x, training=False).numpy(), np.broadcast_to(np.tanh(bias), y.shape), rtol=1e-6)
    assert len([l for l in g.layers if isinstance(l, keras.layers.Dropout)]) == 3


def test_discriminator_is_conditioned_on_the_input_and_supports_spectral_norm():
    d = build_patchgan(64, n_layers=2, base_filters=8, spectral_norm=True, seed=0)
    rng = np.random.default_rng(1)
    x, y = (rng.uniform(-1, 1, (1, 64, 64, 3)).astype("float32") for _ in range(2))
    assert any(isinstance(l, keras.layers.SpectralNormalization) for l in d.layers)
    assert not np.allclose(d([x, y]).numpy(), d([-x, y]).numpy())


def test_outputs_are_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        g = build_unet_generator(64, depth=6, base_filters=8)
        d = build_patchgan(64, base_filters=8)
        x = np.zeros((1, 64, 64, 3), "float32")
        assert g(x).dtype == "float32" and d([x, x]).dtype == "float32"
        assert g.get_layer("down1_conv").compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_same_seed_same_initial_weights():
    a = build_unet_generator(64, depth=6, base_filters=8, seed=3).get_weights()
    b = build_unet_generator(64, depth=6, base_filters=8, seed=3).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
