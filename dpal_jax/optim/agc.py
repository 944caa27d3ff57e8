"""Adaptive gradient clipping (Brock et al. 2021) and SGD with it, the original's `sgd_agc`.

AGC rescales each unit's update so that ‖G_unit‖ ≤ λ·max(‖W_unit‖, eps): per output channel for
HWIO convs (norm over h, w, in), per output unit for Dense kernels (over in), whole tensor for
vectors and scalars. The classifier (`head`) is excluded, as in the official NFNet recipe (the
original DPAL meant to exclude it but its name match never fired).

Privacy: under DP-SGD, AGC acts on the already clipped, summed and noised update and the public
parameters, so it is post-processing and costs no privacy; per-example clipping is what bounds the
sensitivity, not AGC.
"""

from collections.abc import Sequence

import jax
import optax

CLIPPING = 0.01  # λ of the official NFNet fine-tuning recipe
EPS = 1e-3


def _not_excluded(params, exclude: Sequence[str]):
  return jax.tree_util.tree_map_with_path(
      lambda path, _: not any(getattr(k, 'key', None) in exclude for k in path), params)


def adaptive_grad_clip(clipping: float = CLIPPING, eps: float = EPS,
                       exclude: Sequence[str] = ('head',)) -> optax.GradientTransformation:
  """Unit-wise AGC on every parameter except those under a module named in `exclude`.

  The update needs `params` (optax passes them as the third argument of `update`).
  """
  return optax.masked(optax.adaptive_grad_clip(clipping, eps),
                      lambda params: _not_excluded(params, tuple(exclude)))


def sgd_agc(learning_rate: float, clipping: float = CLIPPING) -> optax.GradientTransformation:
  """Plain SGD (no momentum, no weight decay) on AGC-clipped updates (`train.optimizer: sgd_agc`)."""
  return optax.chain(adaptive_grad_clip(clipping), optax.sgd(learning_rate))
