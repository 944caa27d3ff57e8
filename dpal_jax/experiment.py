"""Kept for callers of `experiment.run`: the loops now live in `dpal_jax.loops`."""

from dpal_jax.loops import run  # noqa: F401
