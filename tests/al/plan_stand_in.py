"""A stand-in for `dpal_jax.privacy.plan.Query`: `al` reads only these duck-typed attributes."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Query:
  mechanism: str
  epsilon: float | None = None
  noise_multiplier: float | None = None
  sample_rate: float | None = None
