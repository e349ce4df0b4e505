"""Does a class-conditional generator's class show in the age of its faces? The pinned offline age estimator
(``reface_tf.faces.age_estimator``) on ``n`` samples per class (seeds 0..n-1), against the same estimator on the
held-out real faces of that class.

Both sets are cut into the estimator's chip with the aligned-face template (no landmark detection), so generated
faces at 32-64 px, where MediaPipe rarely finds a face, and real faces are measured the same way. Reported per
class: mean and standard deviation of the estimated ages; over all: the Spearman correlation between the class
index and the estimated age (classes are ordered age groups, so a generator that follows its classes scores as
the real faces do), and the mean absolute gap between the generated and the real class means.
"""

from __future__ import annotations

import numpy as np

from reface_tf.serve.source import SeedSource


def _spearman(classes: np.ndarray, ages: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(np.unique(classes)) < 2 or len(np.unique(ages)) < 2:
        return None
    return float(spearmanr(classes, ages).statistic)


def _stats(ages: np.ndarray) -> dict:
    ages = np.asarray(ages, np.float64)
    return {"n": int(len(ages)), "mean": float(ages.mean()) if len(ages) else None,
            "std": float(ages.std()) if len(ages) else None}


def class_age_agreement(source: SeedSource, estimator, samples: int = 64, real: np.ndarray | None = None,
                        real_classes: np.ndarray | None = None) -> dict:
    """The per-class age report (JSON types) of ``source``'s classes; ``real`` with ``real_classes`` adds the
    held-out faces' row per class."""
    if source.generate_class is None:
        raise ValueError("class_age_agreement needs a class-conditional generator")
    seeds = np.arange(samples, dtype=np.int64)
    estimate = lambda images: estimator.predict(images, landmarks=[None] * len(images))
    rows, gen_classes, gen_ages = [], [], []
    for k, name in enumerate(source.class_names):
        ages = estimate(source.generate_class(seeds, k))
        gen_classes += [k] * len(ages)
        gen_ages += list(ages)
        row = {"class": name, "generated": _stats(ages)}
        if real is not None:
            mine = real[np.asarray(real_classes) == k]
            row["real"] = _stats(estimate(mine)) if len(mine) else _stats(np.zeros(0))
        rows.append(row)
    report = {"samples_per_class": samples, "chip": "aligned-face template", "classes": rows,
              "spearman_generated": _spearman(np.asarray(gen_classes), np.asarray(gen_ages))}
    if real is not None and len(real):
        real_ages = estimate(real)
        report["spearman_real"] = _spearman(np.asarray(real_classes), real_ages)
        gaps = [abs(r["generated"]["mean"] - r["real"]["mean"]) for r in rows if r["real"]["n"]]
        report["mean_abs_gap_years"] = float(np.mean(gaps)) if gaps else None
    return report


def markdown_lines(report: dict) -> list[str]:
    fmt = lambda s: f"{s['mean']:.1f} ± {s['std']:.1f} (n={s['n']})" if s["n"] else "—"
    lines = ["", f"## Estimated age per class ({report['samples_per_class']} samples per class; chips from the "
             f"{report['chip']})", "", "| class | generated | held-out real |", "|---|---|---|"]
    lines += [f"| {r['class']} | {fmt(r['generated'])} | {fmt(r['real']) if 'real' in r else '—'} |"
              for r in report["classes"]]
    num = lambda v: "—" if v is None else f"{v:.3f}"
    lines += ["", f"Spearman(class, estimated age): generated {num(report['spearman_generated'])}, held-out real "
              f"{num(report.get('spearman_real'))}; mean |generated - real| of the class means: "
              f"{num(report.get('mean_abs_gap_years'))} years"]
    return lines
