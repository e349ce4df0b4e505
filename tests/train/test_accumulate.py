"""Gradient accumulation: a batch of 4 in 2 slices of 2 makes the same update as the batch of 4 at once."""

from __future__ import annotations

import numpy as np
import pytest

from reface_tf.config import validate
from reface_tf.errors import ConfigError
from reface_tf.tasks import load_run, train

TOLERANCE = 1e-5  # one step of Adam at lr 2e-4 moves the weights by up to 2.1e-4


@pytest.mark.slow
def test_two_slices_of_two_update_the_networks_as_one_batch_of_four(tiny_config, tmp_path):
    # Instance norm and no dropout: every term is per example, so only the summation order differs.
    make = lambda name, n: tiny_config(model={"dropout": 0.0, "norm": "instance"},
                                       optim={"batch_size": 4, "epochs": 1, "steps_per_epoch": 2, "accumulate": n},
                                       runtime={"run_dir": str(tmp_path / name)})
    whole, sliced = train(make("whole", 1)), train(make("sliced", 2))
    assert whole.steps_done == sliced.steps_done == 2
    a, b = load_run(tmp_path / "whole"), load_run(tmp_path / "sliced")
    worst = 0.0  # measured 9.2e-7: float32 sums in another order, through Adam's normalisation
    for name in ("generator", "discriminator"):
        for x, y in zip(a.networks[name].variables, b.networks[name].variables):
            worst = max(worst, float(np.abs(x.numpy() - y.numpy()).max()))
    # The tolerance is far below one step's update: the run stopped a step earlier is well outside it.
    one = train(make("one", 1).replace(optim={"steps_per_epoch": 1}))
    c = load_run(one.run_dir)
    step = max(np.abs(x.numpy() - y.numpy()).max() for x, y in zip(a.networks["generator"].variables,
                                                                    c.networks["generator"].variables))
    assert worst <= TOLERANCE < step / 10


def test_accumulate_must_divide_the_batch(tiny_config):
    with pytest.raises(ConfigError, match=r"^--accumulate \(optim.accumulate\): 3: must be at least 1 and divide"):
        validate(tiny_config(optim={"batch_size": 4, "accumulate": 3}), check_paths=False)
