"""Random streams of a run: one NumPy Generator (sampling, query noise) and one JAX key (DP noise, dropout).

With `config.seed = None` both are seeded from OS entropy and their states are never written anywhere: a
resumed run draws fresh entropy. That is sound because a stage's result is released only after the
checkpoint that commits it; a stage interrupted before its commit released nothing, so redoing it with
new noise gives one released result per stage, each with its own fresh noise, exactly as accounted.
With a fixed seed the run (and its noise) is reproducible by anyone who knows the seed, which the log
says: the states are then saved in every checkpoint so that a resumed run continues the same streams
(they reveal nothing the seed does not).
"""

import dataclasses

import jax
import numpy as np


@dataclasses.dataclass
class RunRandomness:
  rng: np.random.Generator
  key: jax.Array
  reproducible: bool

  @classmethod
  def create(cls, seed: int | None, reproducible: bool | None = None) -> 'RunRandomness':
    """Streams from `seed` (None: OS entropy). `reproducible` defaults to `seed is not None`; a seed
    drawn from OS entropy and shared between processes (`distributed.shared_seed`) is not."""
    seq = np.random.SeedSequence(seed)
    host_seq, device_seq = seq.spawn(2)
    raw_key = jax.numpy.asarray(device_seq.generate_state(2, dtype=np.uint32))  # a full 64-bit threefry key
    return cls(rng=np.random.Generator(np.random.PCG64(host_seq)), key=raw_key,
               reproducible=seed is not None if reproducible is None else reproducible)

  def next_key(self) -> jax.Array:
    self.key, sub = jax.random.split(self.key)
    return sub

  def to_json(self) -> dict | None:
    """The states to checkpoint: None for an unseeded run (its noise must stay secret)."""
    if not self.reproducible:
      return None
    return {'rng': self.rng.bit_generator.state,
            'key': np.asarray(jax.random.key_data(self.key)).tolist(),
            'reproducible': self.reproducible}

  @classmethod
  def from_json(cls, d: dict) -> 'RunRandomness':
    """The saved streams of a seeded run."""
    bit_generator = np.random.PCG64()
    bit_generator.state = d['rng']
    return cls(rng=np.random.Generator(bit_generator),
               key=jax.numpy.asarray(d['key'], dtype=jax.numpy.uint32),
               reproducible=bool(d['reproducible']))
