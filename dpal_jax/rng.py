"""Random streams of a run: one NumPy Generator (sampling, query noise) and one JAX key (DP noise, dropout).

With `config.seed = None` both are seeded from OS entropy, so the DP noise cannot be reproduced by anyone
who knows the config; with a fixed seed the run (and its noise) is reproducible, which the log says.
Both states are saved in every checkpoint so that a resumed run continues the same streams.
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
  def create(cls, seed: int | None) -> 'RunRandomness':
    seq = np.random.SeedSequence(seed)
    host_seq, device_seq = seq.spawn(2)
    raw_key = jax.numpy.asarray(device_seq.generate_state(2, dtype=np.uint32))  # a full 64-bit threefry key
    return cls(rng=np.random.Generator(np.random.PCG64(host_seq)), key=raw_key,
               reproducible=seed is not None)

  def next_key(self) -> jax.Array:
    self.key, sub = jax.random.split(self.key)
    return sub

  def to_json(self) -> dict:
    return {'rng': self.rng.bit_generator.state,
            'key': np.asarray(jax.random.key_data(self.key)).tolist(),
            'reproducible': self.reproducible}

  @classmethod
  def from_json(cls, d: dict) -> 'RunRandomness':
    bit_generator = np.random.PCG64()
    bit_generator.state = d['rng']
    return cls(rng=np.random.Generator(bit_generator),
               key=jax.numpy.asarray(d['key'], dtype=jax.numpy.uint32),
               reproducible=bool(d['reproducible']))
