"""The age-edit measures on fakes whose answers are known: an 'editor' that brightens a face by its target class,
an 'estimator' that reads brightness as age, an 'identity model' whose feature is the face's mean colour."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from reface_tf.data.age_labels import class_age_groups
from reface_tf.eval.age_edits import age_edit_report, estimated_classes, markdown_lines, other_person_index

GROUPS = ("0-20", "21-40", "41-60", "61+")


def brighten(faces, classes):
    classes = np.broadcast_to(np.asarray(classes), (len(faces),))
    return np.clip(faces.astype(int) + (20 * classes)[:, None, None, None], 0, 255).astype(np.uint8)


class BrightnessAge:
    """age = mean grey level / 2 (a face of level 100 is 50)."""

    def predict(self, images, landmarks=None):
        assert landmarks is not None and all(lm is None for lm in landmarks)  # the aligned-face template chips
        return np.asarray(images, np.float64).mean(axis=(1, 2, 3)) / 2.0


@dataclass
class ColourIdentity:
    description: str = "mean-colour identity"

    def landmarks(self, rgb):
        return None

    def crop(self, rgb, landmarks):
        return rgb

    def feature(self, crop):
        f = crop.reshape(-1, 3).mean(axis=0) - 100.0
        return f / np.linalg.norm(f)


def faces_of_levels(levels):
    rng = np.random.default_rng(0)
    out = []
    for level in levels:
        face = np.zeros((16, 16, 3))
        face[..., 0], face[..., 1], face[..., 2] = level + 40, level, level - 40
        out.append(np.clip(face + rng.normal(0, 2, face.shape), 0, 255))
    return np.asarray(out, np.uint8)


def test_classes_that_are_age_groups_are_read_as_groups_and_others_are_not():
    groups = class_age_groups(GROUPS)
    assert groups is not None and groups.names == GROUPS
    assert class_age_groups(("original", "simulated older")) is None
    assert class_age_groups(("21-30", "11-20")) is None            # out of order: not age groups
    assert list(estimated_classes(np.array([0.5, 20.9, 21.0, 59.99, 60.0, 95.0]), groups)) == [0, 0, 1, 2, 2, 3]


def test_another_persons_face_is_never_the_same_person():
    assert list(other_person_index(["a", "a", "b", "c", "c"])) == [2, 2, 3, 0, 0]
    assert list(other_person_index(["a", "a"])) == [-1, -1]


def test_report_follows_the_target_classes_and_scores_identity_against_another_person():
    faces = faces_of_levels([70, 80, 90, 100, 110, 120])     # estimated ages 35 .. 60
    persons = ["p0", "p0", "p1", "p1", "p2", "p2"]
    report, grids = age_edit_report(brighten, faces, persons, GROUPS, BrightnessAge(), ColourIdentity())
    rows = report["classes"]
    means = [r["estimated_age"]["mean"] for r in rows]
    assert np.all(np.diff(means) == pytest.approx(10.0, abs=0.3))  # +20 grey levels = +10 years per class
    assert report["spearman_target_age"] > 0.7
    assert rows[0]["age_change"]["mean"] == pytest.approx(0.0, abs=0.2)
    # class 0 (0-20) edits keep ages 35-60: none lands in the group; its centre is 10.5
    assert rows[0]["share_in_target"] == 0.0 and rows[0]["distance_to_centre"] == pytest.approx(np.mean(means[0]) - 10.5, abs=0.3)
    assert rows[3]["share_in_target"] == 1.0                 # +60 levels: ages 65-90, all 61+
    # reconstruction targets the estimated class of the input: faces 35-40 -> 21-40 (+20 levels), 45-60 -> 41-60 (+40)
    assert report["reconstruction"]["own_class"] == "estimated class of the input"
    assert 10 < report["reconstruction"]["psnr"] < 25
    ident = report["identity"]
    assert 0.0 <= ident["other_person"] < 1.0 and ident["kept"] == (ident["input_edit"] > ident["other_person"])
    assert grids["edits"].shape == (6 * 16, 5 * 16, 3)        # rows: faces; columns: input + 4 classes
    text = "\n".join(markdown_lines(report))
    assert "| 61+ |" in text and "100%" in text and "Spearman" in text


def test_named_classes_reconstruct_at_the_recorded_label_and_need_two_faces():
    faces = faces_of_levels([90, 100, 110])
    report, _ = age_edit_report(brighten, faces, None, ("original", "simulated older"), BrightnessAge(),
                                labels=np.array([0, 1, 0]))
    assert "share_in_target" not in report["classes"][0] and "identity" not in report
    recon = report["reconstruction"]
    assert recon["own_class"] == "recorded label of the input" and recon["psnr"] < 100
    identical, _ = age_edit_report(brighten, faces, None, ("a", "b"), BrightnessAge(), labels=np.array([0, 0, 0]))
    assert identical["reconstruction"]["psnr"] == float("inf") or identical["reconstruction"]["psnr"] > 60
    from reface_tf.errors import DataError

    with pytest.raises(DataError, match="at least 2 held-out faces"):
        age_edit_report(brighten, faces[:1], None, GROUPS, BrightnessAge())
