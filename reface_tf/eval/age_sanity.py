"""The sample photos whose subjects' ages on the day are documented, and the age estimator's error on them.

Each photo is one of the pinned samples (:mod:`reface_tf.samples`); the subject's date of birth and the date the
photo was taken come from the sources named here (also listed in docs/age_estimator.md). Nothing is tuned on
these photos: they only check that the pinned estimator, with this project's crop, is in the right range.

>>> from reface_tf.faces.age_estimator import AgeEstimator
>>> rows = measure_documented_photos(AgeEstimator.load())    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from reface_tf.data.images import load_rgb


@dataclass(frozen=True)
class DocumentedPhoto:
    sample: str  # name in reface_tf.samples.SOURCES
    subject: str
    born: date
    taken: date
    source: str  # where the date the photo was taken is documented

    @property
    def age(self) -> float:
        """Age in years on the day (days / 365.2425)."""
        return (self.taken - self.born).days / 365.2425


_WHITE_HOUSE = "the photo's own EXIF caption (Official White House Photo by Pete Souza): "
DOCUMENTED_PHOTOS: tuple[DocumentedPhoto, ...] = (
    DocumentedPhoto("obama", "Barack Obama", date(1961, 8, 4), date(2012, 12, 6),
                    _WHITE_HOUSE + "presidential portrait sitting in the Oval Office, Dec. 6, 2012"),
    DocumentedPhoto("obama2", "Barack Obama", date(1961, 8, 4), date(2009, 9, 9),
                    _WHITE_HOUSE + "health care address to a joint session of Congress, Sept. 9, 2009"),
    DocumentedPhoto("obama3", "Barack Obama", date(1961, 8, 4), date(2010, 5, 10),
                    _WHITE_HOUSE + "with Elena Kagan in the Blue Room, May 10, 2010"),
    DocumentedPhoto("biden", "Joe Biden", date(1942, 11, 20), date(2010, 5, 10),
                    _WHITE_HOUSE + "the same Blue Room photo, May 10, 2010"),
    DocumentedPhoto("grace_hopper", "Grace Hopper", date(1906, 12, 9), date(1984, 1, 20),
                    "Wikimedia Commons File:Grace_Hopper.jpg (named in the JPEG's comment): 'Commodore Grace M. "
                    "Hopper, USN (covered)', US Navy photo by James S. Davis, 20 January 1984; her Commodore rank "
                    "(8 Nov 1983 - 1985, Naval History and Heritage Command biography) bounds it to ages 76-78"),
)


@dataclass
class PhotoAge:
    photo: DocumentedPhoto
    estimate: float | None  # None: no face found
    aligned_estimate: float | None = None  # the same face aligned at 256 px first, as training data is

    @property
    def error(self) -> float | None:
        return None if self.estimate is None else self.estimate - self.photo.age


def measure_documented_photos(estimator, photos: tuple[DocumentedPhoto, ...] = DOCUMENTED_PHOTOS) -> list[PhotoAge]:
    """The estimate of the largest face of each documented photo (fetched from the registry when not cached)."""
    from reface_tf.samples import fetch_samples, select_sources

    paths = fetch_samples(select_sources([p.sample for p in photos]))
    from reface_tf.faces.align import align_face

    rows = []
    for photo in photos:
        rgb = load_rgb(paths[photo.sample])
        faces = estimator.predict_photo(rgb)
        row = PhotoAge(photo, faces[0].age if faces else None)
        found = estimator.detect_landmarks([rgb])[0]
        if found is not None:
            row.aligned_estimate = float(estimator.predict(align_face(rgb, found).image[None])[0])
        rows.append(row)
    return rows


def mean_absolute_error(rows: list[PhotoAge], aligned: bool = False) -> float:
    """MAE in years (float64) over all the photos (``aligned``: of the estimates on the 256 px aligned faces); a
    photo where no face is found counts as an error of 80 years, so a detector failure cannot make it look better."""
    estimates = [r.aligned_estimate if aligned else r.estimate for r in rows]
    errors = [abs(e - r.photo.age) if e is not None else 80.0 for e, r in zip(estimates, rows)]
    return float(np.mean(np.asarray(errors, dtype=np.float64)))


def measure_class_folder(estimator, root) -> tuple[list[str], np.ndarray, np.ndarray, tuple[str, ...]]:
    """Estimated ages (float64) of every image of a labelled aligned folder (``read_class_labels``), e.g. the demo
    with SIMULATED age classes: (paths, classes, ages, class names)."""
    from pathlib import Path

    from reface_tf.data.age_labels import read_class_labels

    labels = read_class_labels(root)
    images = [load_rgb(Path(root) / p) for p in labels.paths]
    return labels.paths, labels.classes, estimator.predict(np.stack(images)), labels.class_names


def histogram_lines(ages: np.ndarray, edges: tuple[int, ...] = (0, 11, 21, 31, 41, 51, 61, 71, 81)) -> list[str]:
    counts, _ = np.histogram(ages, bins=np.asarray(edges, dtype=np.float64))
    return [f"{lo:>2}-{hi - 1:<2} {n:4d} {'#' * int(n)}" for lo, hi, n in zip(edges[:-1], edges[1:], counts)]


def main(argv=None) -> int:
    """``python -m reface_tf.eval.age_sanity``: the numbers of docs/age_estimator.md."""
    import argparse

    from reface_tf.cli import setup_logging
    from reface_tf.faces.age_estimator import AgeEstimator
    from reface_tf.samples import SIMULATED_SUFFIX, demo_age_faces

    parser = argparse.ArgumentParser(prog="python -m reface_tf.eval.age_sanity", description=main.__doc__)
    parser.add_argument("--age-model", default=None, help="a local age-v1.onnx (default: the pinned registry file)")
    args = parser.parse_args(argv)
    setup_logging(False)
    with AgeEstimator.load(args.age_model) as estimator:
        rows = measure_documented_photos(estimator)
        print("photo            subject        age on the day  estimate  error  aligned 256 px")
        for r in rows:
            est = "no face" if r.estimate is None else f"{r.estimate:8.1f}  {r.error:+5.1f}"
            aligned = "-" if r.aligned_estimate is None else f"{r.aligned_estimate:.1f}"
            print(f"{r.photo.sample:16s} {r.photo.subject:14s} {r.photo.age:14.1f}  {est}  {aligned:>8s}")
        print(f"mean absolute error: {mean_absolute_error(rows):.2f} years over {len(rows)} photos (chip from the "
              f"photo); {mean_absolute_error(rows, aligned=True):.2f} (chip from the 256 px aligned face)")
        paths, classes, ages_all, names = measure_class_folder(estimator, demo_age_faces())
    per_class = {name: ages_all[classes == k] for k, name in enumerate(names)}
    for name, ages in per_class.items():
        print(f"\ndemo class '{name}': {len(ages)} faces, estimated age mean {ages.mean():.2f}, median "
              f"{np.median(ages):.2f}, std {ages.std():.2f}, range {ages.min():.1f}-{ages.max():.1f}")
        print("\n".join(histogram_lines(ages)))
    by_path = dict(zip(paths, ages_all))
    older = [p for p, c in zip(paths, classes) if c == 1]
    pairs = [(by_path[p.replace(SIMULATED_SUFFIX, "")], by_path[p]) for p in older if p.replace(SIMULATED_SUFFIX, "") in by_path]
    if pairs:
        diff = np.asarray([b - a for a, b in pairs], dtype=np.float64)  # each simulated copy against its own photo
        print(f"\n'{names[1]}' minus '{names[0]}', photo by photo: mean {diff.mean():+.2f}, median "
              f"{np.median(diff):+.2f} years; older in {int((diff > 0).sum())} of {len(diff)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
