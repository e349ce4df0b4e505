"""Numeric precision of an exported generator (``export.py --precision``).

``bf16`` rebuilds the generator under Keras' ``mixed_bfloat16`` policy and then stores the convolution
kernels themselves in bfloat16. Under the plain mixed policy every call casts all float32 kernels to bfloat16
(54 M values for the depth-8 U-Net); at batch 1 that cast is about a fifth of the forward pass on a 2-core CPU
(benchmarks/README.md). Compute dtype of each layer of a bf16 export (checked against the model by
tests/serve/test_export.py):

* ``down*_conv``, ``up*_deconv``, ``out_deconv``: bfloat16, kernels stored in bfloat16. The output
  deconvolution is no exception: computing it in float32 was measured (256 px depth-8 U-Net, batch 1, a busy
  2-core Intel CPU with AMX) to cost about 5 ms per face for that layer (median 12.7 instead of 5.5 ms), 6-7 %
  of the whole forward pass (median 90 instead of 85 ms), and to move the mean difference from the fp32 export
  only from 0.174 to 0.169 grey levels (max 3 either way);
* ``*_norm``: bfloat16 in and out under the mixed policy; their statistics are computed in float32 inside;
* ``out_tanh``: float32, so the model returns float32 (within 3 grey levels of the fp32 export,
  benchmarks/README.md).

Example::

    generator, cfg, ckpt = load_generator("runs/reface", policy=EXPORT_POLICIES["bf16"])
    generator = with_bfloat16_kernels(generator)   # then export_saved_model(generator, cfg, ...)
"""

from __future__ import annotations

import keras

EXPORT_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16"}

_KERNEL_LAYERS = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.Dense)


def with_bfloat16_kernels(generator: keras.Model) -> keras.Model:
    """A copy of a ``mixed_bfloat16`` generator whose convolution weights are stored in bfloat16."""
    if generator.dtype_policy.name != "mixed_bfloat16":
        raise ValueError(f"expected a generator built under mixed_bfloat16, got {generator.dtype_policy.name}")

    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if isinstance(layer, _KERNEL_LAYERS):
            config["dtype"] = "bfloat16"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(generator, clone_function=clone_layer)
    copy.set_weights(generator.get_weights())  # float32 values, rounded to bfloat16 where the variable is bfloat16
    return copy


def compute_dtype(model: keras.Model) -> str:
    """The dtype the model's convolutions compute in (the model object's own policy may differ)."""
    dtypes = {layer.compute_dtype for layer in model.layers if isinstance(layer, _KERNEL_LAYERS)}
    return dtypes.pop() if len(dtypes) == 1 else str(model.compute_dtype)


def weights_dtypes(model: keras.Model) -> list[str]:
    """The distinct dtypes the model's weights are stored in, sorted (recorded in reface_meta.json)."""
    return sorted({str(w.dtype) for w in model.weights})
