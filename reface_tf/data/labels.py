"""Label-map datasets for semantic image synthesis: class-id maps paired with the photos they describe.

Layout: ``ROOT/labels/<stem>.png`` (one 8-bit channel, each pixel a class id) and ``ROOT/B/<stem>.<ext>`` (the
photo), matched by file stem; an optional ``groups.csv`` keeps one person in one split, as for image pairs. The
demo ``segmap`` variant (``python -m reface_tf.samples demo --variant segmap``) and ``prepare_segmaps.py`` (from
CelebAMask-HQ) write this layout.

In the pipeline a map is resized by nearest neighbour (every pixel keeps a class of the original), cropped and
flipped together with its photo, and one-hot encoded on the fly. A horizontal flip mirrors the face, so classes
named for the subject's left and right (``l_eye``/``r_eye`` ...) are swapped with ``mirror`` to keep the map
true to the flipped photo. A class id of ``num_classes`` or more is refused, naming the file.

Batches are dicts: ``labels`` one-hot float32 ``[N, S, S, C]``, ``target`` the photo in [-1, 1], ``z`` a latent
``[N, z_dim]`` drawn from stateless seeds of (seed, epoch, index), so a resumed run draws the same ones.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from reface_tf.config import DataConfig
from reface_tf.data.images import IMAGE_SUFFIXES, is_data_entry, list_folder, load_rgb
from reface_tf.data.pairs import DatasetScan, Pair, Problem, read_groups_file
from reface_tf.data.pipeline import DecodedPairs, element_seed, from_uint8, resize_uint8, run_elements
from reface_tf.errors import DataError

log = logging.getLogger(__name__)

LABELS_DIR, PHOTOS_DIR = "labels", "B"
CELEBAMASK_PARTS_DIR = "CelebAMask-HQ-mask-anno"
# The epoch number of the validation latents: training epochs never reach it, so they never repeat them.
EVAL_EPOCH = (1 << 20) - 1


def read_label_map(path: str | os.PathLike, num_classes: int, max_pixels: int = 50_000_000) -> np.ndarray:
    """An ``(H, W)`` uint8 class-id map from a one-channel PNG; DataError naming the file for anything else."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.width * img.height > max_pixels:
                raise DataError(f"{path}: {img.width}x{img.height} is more than --max-pixels {max_pixels}")
            if img.format != "PNG" or img.mode not in ("L", "P"):
                raise DataError(f"{path}: a label map must be a one-channel PNG of class ids, got {img.format} "
                                f"{img.mode} (a colour picture of a map is not one; use its class-id PNG)")
            ids = np.asarray(img, dtype=np.uint8).copy()  # mode P: the palette indices are the ids
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: cannot read label map ({err})") from None
    check_ids(ids, num_classes, str(path))
    return ids


def check_ids(ids: np.ndarray, num_classes: int, where: str) -> None:
    top = int(ids.max(initial=0))
    if top >= num_classes:
        raise DataError(f"{where}: class id {top} is not below --num-classes {num_classes}; raise --num-classes "
                        f"to at least {top + 1} or fix the map")


def mirror_table(class_names: Sequence[str]) -> np.ndarray:
    """Class id -> its mirror image's id: ``l_<part>`` and ``r_<part>`` swap, every other class stays."""
    index = {name: i for i, name in enumerate(class_names)}
    table = np.arange(len(class_names), dtype=np.int32)
    for name, i in index.items():
        for a, b in (("l_", "r_"), ("r_", "l_")):
            if name.startswith(a) and b + name[2:] in index:
                table[i] = index[b + name[2:]]
    return table


def is_celebamask_root(root: Path) -> bool:
    return (root / CELEBAMASK_PARTS_DIR).is_dir()


def scan_label_dataset(root: str | os.PathLike, data: DataConfig, num_classes: int) -> DatasetScan:
    """The (label map, photo) pairs under ``root`` as ``Pair(stem, label path, photo path, group)``, each label
    map decoded and its ids checked (one DataError for the first bad map), each photo decoded."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--data: {root} is not a folder; pass a folder with {LABELS_DIR}/ and {PHOTOS_DIR}/")
    if is_celebamask_root(root) and not (root / LABELS_DIR).is_dir():
        raise DataError(f"--data: {root} is the CelebAMask-HQ download (part masks); convert it once with "
                        f"python prepare_segmaps.py --celebamask-hq {root} --out DIR, then pass --data DIR")
    if not (root / LABELS_DIR).is_dir() or not (root / PHOTOS_DIR).is_dir():
        raise DataError(f"--data: {root} needs {LABELS_DIR}/ (class-id PNGs) and {PHOTOS_DIR}/ (photos) matched by "
                        "file stem; see README 'SPADE'")
    scan = DatasetScan(str(root), "labels")
    labels_read, labels_ignored = list_folder(root / LABELS_DIR, (".png",))
    photos_read, photos_ignored = list_folder(root / PHOTOS_DIR, IMAGE_SUFFIXES)
    labels, photos = {p.stem: p for p in labels_read}, {p.stem: p for p in photos_read}
    scan.problems += [Problem(str(p), reason, is_data_entry(p)) for p, reason in labels_ignored + photos_ignored]
    scan.problems += [Problem(str(labels[s]), f"unmatched: no photo with this stem in {PHOTOS_DIR}/")
                      for s in sorted(set(labels) - set(photos))]
    scan.problems += [Problem(str(photos[s]), f"unmatched: no label map with this stem in {LABELS_DIR}/")
                      for s in sorted(set(photos) - set(labels))]
    groups = read_groups_file(root)
    candidates = [Pair(s, str(labels[s]), str(photos[s]), groups.get(s, s)) for s in sorted(set(labels) & set(photos))]

    def check(pair: Pair) -> Problem | None:
        ids = read_label_map(pair.input_path, num_classes, data.max_pixels)  # a bad id stops the scan
        try:
            photo = load_rgb(pair.target_path, data.max_pixels)
        except DataError as err:
            return Problem(pair.target_path, str(err).partition(": ")[2] or str(err))
        if photo.shape[:2] != ids.shape:
            return Problem(pair.input_path, f"size {ids.shape[1]}x{ids.shape[0]} differs from its photo's "
                                            f"{photo.shape[1]}x{photo.shape[0]}")
        return None

    with ThreadPoolExecutor(min(8, (os.cpu_count() or 2) * 2)) as pool:  # decoding releases the GIL
        results = list(pool.map(check, candidates))
    for pair, problem in zip(candidates, results):
        (scan.problems.append(problem) if problem else scan.pairs.append(pair))
    for problem in scan.problems:
        log.warning("skipping %s: %s", problem.path, problem.reason)
    invalid = [p for p in scan.problems if p.invalid]
    if invalid and data.strict:
        raise DataError(f"--strict: {len(invalid)} invalid file(s) in {root}, first {invalid[0].path}: {invalid[0].reason}")
    if not scan.pairs:
        raise DataError(f"--data: no (label map, photo) pairs in {root}"
                        + (f" (first problem: {scan.problems[0].path}: {scan.problems[0].reason})" if scan.problems else ""))
    return scan


class LabelStore(DecodedPairs):
    """Decoded (label map, photo) pairs at ``size`` by index, kept in memory with ``cache``: items are
    (``[S, S]`` uint8 class ids resized by nearest neighbour, ``[S, S, 3]`` uint8 photo)."""

    def __init__(self, pairs: list[Pair], size: int, num_classes: int, max_pixels: int, cache: bool = True):
        super().__init__(pairs, size, max_pixels, cache)
        self.num_classes = num_classes

    def decode(self, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        ids = read_label_map(pair.input_path, self.num_classes, self.max_pixels)
        return resize_uint8(ids, self.size, nearest=True), resize_uint8(load_rgb(pair.target_path, self.max_pixels), self.size)

    def load(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        ids, photo = tf.numpy_function(self.get, [index], (tf.uint8, tf.uint8), stateful=False)
        ids.set_shape([self.size, self.size])
        photo.set_shape([self.size, self.size, 3])
        return ids, photo


def one_hot(ids: tf.Tensor, num_classes: int) -> tf.Tensor:
    return tf.one_hot(tf.cast(ids, tf.int32), num_classes, dtype=tf.float32)


def latent_for_seed(seed: tf.Tensor, z_dim: int) -> tf.Tensor:
    """The latent of one int64 seed pair ``[2]``: the same numbers in training, validation and export."""
    return tf.random.stateless_normal([z_dim], seed=seed)


def label_jitter(ids: tf.Tensor, photo: tf.Tensor, seed: tf.Tensor, image_size: int, flip: bool,
                 mirror: np.ndarray | None) -> tuple[tf.Tensor, tf.Tensor]:
    """One random crop window and one flip decision for the map and its photo; a flipped map's left and right
    classes swap through ``mirror`` (None: ids stay)."""
    stacked = tf.concat([tf.cast(ids, tf.uint8)[..., tf.newaxis], photo], axis=-1)
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if stacked.shape[0] != image_size:
        stacked = tf.image.stateless_random_crop(stacked, [image_size, image_size, 4], seed=crop_seed)
    ids, photo = stacked[..., 0], stacked[..., 1:]
    if flip:
        do_flip = tf.random.stateless_uniform([], seed=flip_seed) < 0.5
        swapped = ids if mirror is None else tf.cast(tf.gather(tf.constant(mirror), tf.cast(ids, tf.int32)), tf.uint8)
        ids = tf.cond(do_flip, lambda: tf.reverse(swapped, axis=[1]), lambda: ids)
        photo = tf.cond(do_flip, lambda: tf.reverse(photo, axis=[1]), lambda: photo)
    return ids, photo


def label_training_batches(store: LabelStore, data: DataConfig, seed: int, z_dim: int, first_epoch: int, epochs: int,
                           global_batch: int, steps_per_epoch: int, skip_batches: int = 0,
                           mirror: np.ndarray | None = None) -> tf.data.Dataset:
    """Every remaining training batch of a run, epochs back to back (one iterator for the whole run, as
    ``reface_tf.data.pipeline.training_batches``); epoch ``first_epoch`` starts after ``skip_batches``."""
    elements = tf.data.Dataset.from_tensor_slices(run_elements(len(store), seed, first_epoch, epochs, global_batch,
                                                               steps_per_epoch, skip_batches))

    def element(epoch: tf.Tensor, index: tf.Tensor) -> dict[str, tf.Tensor]:
        ids, photo = store.load(index)
        jitter_seed, z_seed = tf.unstack(tf.random.experimental.stateless_split(element_seed(seed, epoch, index), 2))
        ids, photo = label_jitter(ids, photo, jitter_seed, data.image_size, data.flip, mirror)
        return {"labels": one_hot(ids, store.num_classes), "target": from_uint8(photo), "z": latent_for_seed(z_seed, z_dim)}

    ds = elements.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(global_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def label_eval_dataset(store: LabelStore, seed: int, z_dim: int, batch_size: int) -> tf.data.Dataset:
    """The pairs of ``store`` in order, unaugmented, each with its fixed validation latent; dicts as in
    training plus ``ids`` (uint8 ``[N, S, S]``, for previews)."""
    def element(index: tf.Tensor) -> dict[str, tf.Tensor]:
        ids, photo = store.load(index)
        z = latent_for_seed(element_seed(seed, EVAL_EPOCH, index), z_dim)
        return {"labels": one_hot(ids, store.num_classes), "target": from_uint8(photo), "z": z, "ids": ids}

    ds = tf.data.Dataset.range(len(store)).map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
