"""Loss terms. The generator's objective is ``lambda_adv * adversarial + sum(term.weight * term)``.

To add a generator term, write a module with ``build_<name>(cfg) -> LossTerm | None`` and list it in
``GENERATOR_TERM_BUILDERS``; the training loop, TensorBoard and metrics.jsonl pick it up by its name.
"""

from __future__ import annotations

from reface_tf.config import Config
from reface_tf.losses.identity import build_identity
from reface_tf.losses.perceptual import build_perceptual
from reface_tf.losses.reconstruction import build_l1
from reface_tf.losses.terms import LossTerm

GENERATOR_TERM_BUILDERS = (build_l1, build_perceptual, build_identity)


def build_generator_terms(cfg: Config) -> list[LossTerm]:
    """The configured generator terms (weight 0 = not built); call inside the strategy scope."""
    return [term for builder in GENERATOR_TERM_BUILDERS if (term := builder(cfg)) is not None]
