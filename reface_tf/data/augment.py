"""Paired augmentation with albumentations: one geometric draw for both images, photometric changes per side.

A Pix2Pix pair only teaches the translation if input and target stay pixel-registered, so every geometric
transform (flip, rotation, scale, shift) is drawn once and applied to both images through albumentations'
``additional_targets``. Photometric changes (brightness/contrast, hue/saturation, blur, noise) go to the
sides named by ``photometric_sides``; with ``"both"`` and ``photometric_shared`` (the default) both images get
the same draw, so the colour relation between input and target is kept.

>>> aug = build_paired_augmentation(AugmentConfig())
>>> a2, b2 = aug(a, b, seed=7)          # doctest: +SKIP  (uint8 HxWx3 in, same shapes out, deterministic)

Offline copies (``K`` augmented copies of every pair, written as ``<stem>_augK.png``)::

    python -m reface_tf.data.augment --data DIR --out DIR2 --copies K
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from reface_tf.errors import ConfigError, DataError

log = logging.getLogger("reface_tf.data.augment")

PHOTOMETRIC_SIDES = ("both", "input", "target", "none")


@dataclass
class AugmentConfig:
    """Augmentation strengths; a probability of 0 (or a zero limit) switches a transform off.

    Defaults are mild on purpose: aligned faces should stay recognisably aligned, and the model still sees
    the tf.data jitter (random crop + flip) on top of this.
    """

    hflip: float = 0.5  # probability of a horizontal flip
    affine_p: float = 0.7  # probability of the rotate/scale/shift draw
    rotate_limit: float = 8.0  # degrees, symmetric
    scale_limit: float = 0.08  # relative, symmetric: scale in [1 - s, 1 + s]
    shift_limit: float = 0.04  # fraction of the image side, symmetric
    brightness_contrast: float = 0.5  # probability
    brightness_limit: float = 0.15
    contrast_limit: float = 0.15
    hue_saturation: float = 0.3  # probability
    hue_shift_limit: int = 5
    sat_shift_limit: int = 15
    val_shift_limit: int = 10
    blur: float = 0.1  # probability of a light Gaussian blur
    noise: float = 0.1  # probability of Gaussian noise
    noise_std: tuple[float, float] = (0.01, 0.04)  # fraction of the value range
    photometric_sides: str = "both"  # "both", "input", "target" or "none"
    photometric_shared: bool = True  # with "both": one draw for both sides (False: independent draws)

    def validate(self) -> None:
        if self.photometric_sides not in PHOTOMETRIC_SIDES:
            raise ConfigError(f"photometric_sides must be one of {', '.join(PHOTOMETRIC_SIDES)}, got {self.photometric_sides!r}")
        for name in ("hflip", "affine_p", "brightness_contrast", "hue_saturation", "blur", "noise"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"augment {name} is a probability in [0, 1], got {value}")
        for name in ("rotate_limit", "scale_limit", "shift_limit", "brightness_limit", "contrast_limit"):
            if getattr(self, name) < 0:
                raise ConfigError(f"augment {name} must be >= 0, got {getattr(self, name)}")
        if self.scale_limit >= 1.0:
            raise ConfigError(f"augment scale_limit must be < 1, got {self.scale_limit}")

    @classmethod
    def geometric_only(cls, **overrides) -> "AugmentConfig":
        """Only flips and affine draws (used to check that a pair stays registered)."""
        base = dict(brightness_contrast=0.0, hue_saturation=0.0, blur=0.0, noise=0.0, photometric_sides="none")
        base.update(overrides)
        return cls(**base)


def _geometric(cfg: AugmentConfig):
    import albumentations as A

    transforms = []
    if cfg.hflip > 0:
        transforms.append(A.HorizontalFlip(p=cfg.hflip))
    if cfg.affine_p > 0 and (cfg.rotate_limit or cfg.scale_limit or cfg.shift_limit):
        transforms.append(A.Affine(
            rotate=(-cfg.rotate_limit, cfg.rotate_limit),
            scale=(1.0 - cfg.scale_limit, 1.0 + cfg.scale_limit),
            translate_percent=(-cfg.shift_limit, cfg.shift_limit),
            interpolation=cv2.INTER_LINEAR,
            # Reflection keeps hair/background texture at the borders instead of black wedges the
            # generator would learn to paint.
            border_mode=cv2.BORDER_REFLECT_101,
            p=cfg.affine_p,
        ))
    return A.Compose(transforms, additional_targets={"target": "image"})


def _photometric(cfg: AugmentConfig, paired: bool):
    import albumentations as A

    transforms = []
    if cfg.brightness_contrast > 0:
        transforms.append(A.RandomBrightnessContrast(cfg.brightness_limit, cfg.contrast_limit, p=cfg.brightness_contrast))
    if cfg.hue_saturation > 0:
        transforms.append(A.HueSaturationValue(cfg.hue_shift_limit, cfg.sat_shift_limit, cfg.val_shift_limit,
                                               p=cfg.hue_saturation))
    if cfg.blur > 0:
        transforms.append(A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.0), p=cfg.blur))
    if cfg.noise > 0:
        transforms.append(A.GaussNoise(std_range=tuple(cfg.noise_std), p=cfg.noise))
    return A.Compose(transforms, additional_targets={"target": "image"} if paired else None)


class PairedAugmentation:
    """Callable ``(input_rgb, target_rgb, seed) -> (input_rgb, target_rgb)``; deterministic given ``seed``.

    Safe to call from several threads at once (tf.data runs it in parallel): albumentations pipelines carry
    their own random state, so each thread gets its own copies.
    """

    def __init__(self, cfg: AugmentConfig):
        cfg.validate()
        self.cfg = cfg
        self._local = threading.local()

    def _pipelines(self):
        pipes = getattr(self._local, "pipes", None)
        if pipes is None:
            cfg = self.cfg
            shared = cfg.photometric_sides == "both" and cfg.photometric_shared
            pipes = (_geometric(cfg), _photometric(cfg, paired=shared), _photometric(cfg, paired=False))
            self._local.pipes = pipes
        return pipes

    def __call__(self, input_rgb: np.ndarray, target_rgb: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = _check_pair(input_rgb, target_rgb)
        geometric, photo_pair, photo_single = self._pipelines()
        seed = int(seed) % (2**31 - 1)
        # Distinct, fixed offsets per stage so the geometric and photometric draws are independent streams.
        geometric.set_random_seed(seed)
        out = geometric(image=a, target=b)
        a, b = out["image"], out["target"]
        sides = self.cfg.photometric_sides
        if sides == "both" and self.cfg.photometric_shared:
            photo_pair.set_random_seed(seed + 1)
            out = photo_pair(image=a, target=b)
            a, b = out["image"], out["target"]
        else:
            if sides in ("both", "input"):
                photo_single.set_random_seed(seed + 2)
                a = photo_single(image=a)["image"]
            if sides in ("both", "target"):
                photo_single.set_random_seed(seed + 3)
                b = photo_single(image=b)["image"]
        return np.ascontiguousarray(a, dtype=np.uint8), np.ascontiguousarray(b, dtype=np.uint8)


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    for name, x in (("input", a), ("target", b)):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
            raise ValueError(f"{name} must be HxWx3 uint8, got {x.dtype} {x.shape}")
    if a.shape != b.shape:
        raise ValueError(f"input and target shapes differ: {a.shape} vs {b.shape}")
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def build_paired_augmentation(cfg: AugmentConfig | None = None) -> PairedAugmentation:
    return PairedAugmentation(cfg or AugmentConfig())


# --------------------------------------------------------------------------------------------- offline copies


def augment_folder(data: Path, out: Path, copies: int, cfg: AugmentConfig | None = None, seed: int = 0,
                   progress: bool = True) -> int:
    """Write ``copies`` augmented versions of every pair of ``data`` (A/, B/) into ``out`` (A/, B/).

    Copies are named ``<stem>_aug<k>.png``; a ``groups.csv`` in ``data`` is carried over with every copy in its
    original's group (copies of one photo must never straddle a train/test split). Returns the pairs written.
    Every entry of A/ and B/ that is not augmented (no partner, not an image, damaged, hidden, a sub-folder) is
    logged with the reason, as train.py's pair discovery does.
    """
    from reface_tf.config import DataConfig
    from reface_tf.data.images import load_rgb, save_png_atomic
    from reface_tf.data.pairs import scan_dataset

    data, out = Path(data), Path(out)
    if copies < 1:
        raise ConfigError(f"--copies must be >= 1, got {copies}")
    if not (data / "A").is_dir() or not (data / "B").is_dir():
        raise DataError(f"{data}: expected A/ and B/ folders (inputs and targets matched by file stem)")
    if out.resolve() == data.resolve():
        raise ConfigError("--out must differ from --data")
    # Decoded below, not here: a damaged pair is then skipped with its reason, and a size mismatch is resized.
    scan = scan_dataset(data, DataConfig(layout="folders"), check_images=False)  # logs each entry left out
    left_out = len(scan.problems)
    pairs = sorted(scan.pairs, key=lambda pair: pair.input_path)
    inputs = [Path(pair.input_path) for pair in pairs]
    targets = {Path(pair.input_path).stem: Path(pair.target_path) for pair in pairs}
    groups = _read_groups(data / "groups.csv")
    aug = build_paired_augmentation(cfg)

    def one(index: int) -> list[tuple[str, str]] | None:
        path = inputs[index]
        try:
            a, b = load_rgb(path), load_rgb(targets[path.stem])
        except DataError as err:
            log.warning("skipping pair %s: %s", path.stem, err)
            return None
        if a.shape != b.shape:
            b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
        rows = []
        for k in range(copies):
            # Seed from (seed, pair index, copy) so reruns reproduce the same files.
            pair_seed = int(np.random.SeedSequence([seed, index, k]).generate_state(1)[0] % (2**31 - 1))
            a2, b2 = aug(a, b, pair_seed)
            stem = f"{path.stem}_aug{k}"
            save_png_atomic(out / "A" / f"{stem}.png", a2)
            save_png_atomic(out / "B" / f"{stem}.png", b2)
            rows.append((stem, groups.get(path.stem, path.stem)))
        return rows

    from concurrent.futures import ThreadPoolExecutor

    # Decoding, warping and PNG compression release the GIL, so threads use every core; results come back in
    # input order and each pair's seed is fixed, so the output does not depend on scheduling.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = pool.map(one, range(len(inputs)))
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(inputs), desc="augment", unit="pair")
        outcomes = list(results)
    new_groups = [row for rows in outcomes if rows is not None for row in rows]
    left_out += 2 * sum(rows is None for rows in outcomes)
    if not new_groups:
        raise DataError(f"{data}: no pair could be augmented ({left_out} files left out, each named above)")
    if left_out:
        log.warning("%d file(s) of %s left out, each named above", left_out, data)
    written = len(new_groups)
    _write_groups(out / "groups.csv", new_groups)
    return written


def _read_groups(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return {row["stem"]: row["group"] for row in csv.DictReader(fh) if row.get("stem")}


def _write_groups(path: Path, rows: list[tuple[str, str]]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["stem", "group"])
        writer.writerows(rows)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    from reface_tf.cli import setup_logging

    parser = argparse.ArgumentParser(prog="python -m reface_tf.data.augment",
                                     description="Write K paired-augmented copies of every pair of a dataset.")
    parser.add_argument("--data", required=True, help="dataset root with A/ and B/")
    parser.add_argument("--out", required=True, help="output root (A/, B/, groups.csv)")
    parser.add_argument("--copies", type=int, default=4, help="augmented copies per pair (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--photometric-sides", choices=PHOTOMETRIC_SIDES, default=AugmentConfig.photometric_sides)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    cfg = AugmentConfig(photometric_sides=args.photometric_sides)
    n = augment_folder(Path(args.data), Path(args.out), args.copies, cfg, args.seed, progress=not args.no_progress)
    print(f"wrote {n} augmented pairs to {args.out}")
    return 0


if __name__ == "__main__":
    from reface_tf.cli import run_cli

    raise SystemExit(run_cli(main))
