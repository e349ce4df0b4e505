"""Evaluation of generators drawn from seeds: KID against real faces with the real-vs-real floor, and the
memorisation check finds a generator that copies its training images."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reface_tf.serve.source import SeedSource


@pytest.fixture(scope="module")
def faces():
    from reface_tf.data.image_folder import decode_faces, find_images
    from reface_tf.samples import demo_faces

    try:
        paths, _ = find_images(__import__("pathlib").Path(demo_faces()))
    except Exception as err:  # no registry access: nothing real to compare with
        pytest.skip(f"demo faces unavailable: {err}")
    images, _, _ = decode_faces(paths[::3], 64)  # 42 faces of every source
    return images[:30], images[30:]  # "training", "held out"


def _source(fn) -> SeedSource:
    return SeedSource(fn, 64, "test-1", "a test generator", "dcgan")


def test_a_copying_generator_is_caught_and_noise_scores_far_above_the_floor(faces, tmp_path):
    pytest.importorskip("scipy")
    from reface_tf.eval.generative import evaluate_generator, summary_line, write_generator_report

    training, held_out = faces
    try:
        copy_report, copies = evaluate_generator(_source(lambda seeds: training[seeds]), held_out, training, ["facenet"],
                                                 samples=20, kid_subsets=10, kid_subset_size=10, progress=False)
    except Exception as err:
        if "facenet" in str(err).lower() and "unavailable" in str(err).lower():
            pytest.skip(str(err))
        raise
    memo = copy_report["generated"]["memorisation"]["facenet"]
    assert memo["nearest_index"] == list(range(20)) and memo["min"] < 1e-6 and memo["median"] < 1e-6
    assert copy_report["generated"]["n_generated"] == 20 and copy_report["floor_real_vs_real"]["n_generated"] == 20
    # FaceNet is 512-d: 20 samples cannot give a Fréchet distance, and the report says why.
    assert copy_report["generated"]["fd_facenet"] is None and "512" in copy_report["generated"]["notes"]["fd_facenet"]

    rng = np.random.default_rng(0)
    noise = lambda seeds: rng.integers(0, 255, (len(seeds), 64, 64, 3), dtype=np.uint8)
    noise_report, generated = evaluate_generator(_source(noise), held_out, training, ["facenet"], samples=20,
                                                 kid_subsets=10, kid_subset_size=10, progress=False)
    floor = noise_report["floor_real_vs_real"]["kid_facenet"]
    assert noise_report["generated"]["kid_facenet"] > 3 * max(floor, 1e-3)
    assert abs(copy_report["generated"]["kid_facenet"] - floor) < 0.5 * noise_report["generated"]["kid_facenet"]

    out = write_generator_report(noise_report, generated, training, tmp_path / "eval")
    assert json.loads((out / "report.json").read_text())["generated"]["kid_facenet"] == noise_report["generated"]["kid_facenet"]
    assert (out / "closest_facenet.png").is_file() and (out / "samples.png").is_file()
    assert "kid_facenet ↓" in (out / "report.md").read_text()
    assert "omitted" in summary_line(noise_report)
