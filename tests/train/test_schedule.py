"""Learning-rate policies at hand-chosen epochs with hand-computed factors."""

from __future__ import annotations

import math

import pytest

from reface_tf.config import OptimConfig
from reface_tf.train.schedule import lr_factor


def _optim(**kw) -> OptimConfig:
    o = OptimConfig()
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def test_constant_is_one_everywhere():
    o = _optim(lr_policy="constant", epochs=10)
    assert [lr_factor(o, e) for e in (0, 5, 9, 100)] == [1.0, 1.0, 1.0, 1.0]


def test_linear_constant_then_decay_to_zero():
    # 10 epochs, 4 of decay: epochs 0..5 at 1, then 1 - k/5 for k = 1..4 (0.8, 0.6, 0.4, 0.2); 0 would be epoch 10.
    o = _optim(lr_policy="linear", epochs=10, epochs_decay=4)
    got = [lr_factor(o, e) for e in range(10)]
    assert got == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2], abs=1e-12)


def test_linear_all_epochs_decaying():
    # junyanz style with no constant part: epochs 4, decay 4 -> 1 - (e+1)/5.
    o = _optim(lr_policy="linear", epochs=4, epochs_decay=4)
    assert [lr_factor(o, e) for e in range(4)] == pytest.approx([0.8, 0.6, 0.4, 0.2], abs=1e-12)


def test_linear_junyanz_200_epochs():
    # 100 constant + 100 decay: epoch 99 is still 1, epoch 100 is 1 - 1/101, the last epoch 1 - 100/101.
    o = _optim(lr_policy="linear", epochs=200, epochs_decay=100)
    assert lr_factor(o, 0) == 1.0 and lr_factor(o, 99) == 1.0
    assert lr_factor(o, 100) == pytest.approx(100 / 101, abs=1e-12)
    assert lr_factor(o, 199) == pytest.approx(1 / 101, abs=1e-12)


def test_step_decays_by_gamma_every_n_epochs():
    o = _optim(lr_policy="step", epochs=100, lr_step_epochs=3, lr_gamma=0.5)
    got = [lr_factor(o, e) for e in (0, 2, 3, 5, 6, 9, 10)]
    assert got == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.125, 0.125], abs=1e-12)
    o = _optim(lr_policy="step", epochs=200, lr_step_epochs=50, lr_gamma=0.1)
    assert [lr_factor(o, e) for e in (49, 50, 100, 150)] == pytest.approx([1.0, 0.1, 0.01, 0.001], rel=1e-12)


def test_cosine_half_cosine_over_all_epochs():
    o = _optim(lr_policy="cosine", epochs=4)
    # 0.5 (1 + cos(pi e / 4)): 1, (1 + sqrt(2)/2)/2, 1/2, (1 - sqrt(2)/2)/2
    r = math.sqrt(2) / 2
    assert [lr_factor(o, e) for e in range(4)] == pytest.approx([1.0, (1 + r) / 2, 0.5, (1 - r) / 2], abs=1e-12)
    o = _optim(lr_policy="cosine", epochs=6)
    assert lr_factor(o, 2) == pytest.approx(0.75, abs=1e-12)   # cos(pi/3) = 1/2
    assert lr_factor(o, 4) == pytest.approx(0.25, abs=1e-12)   # cos(2pi/3) = -1/2


def test_unknown_policy_raises():
    with pytest.raises(ValueError):
        lr_factor(_optim(lr_policy="exp", epochs=3), 0)
