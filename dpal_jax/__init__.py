"""dpal_jax: differentially private active learning in JAX/Flax."""

import os

# XLA:CPU's concurrency-optimised scheduler starts independent work early (the max-pool backward's
# index arrays, the next pass's constants), which keeps them alive across the whole step; the
# memory-minimising scheduler gives the same speed on this project's steps and 21–33 % lower peak
# memory on ResNet9-GN's (the MLP's within 3 %; docs/performance.md). Read when the first JAX
# backend starts, so set here, before any can; a setting of the flag in the user's own XLA_FLAGS
# wins. Scheduling changes no result.
_SCHEDULER_FLAG = 'xla_cpu_enable_concurrency_optimized_scheduler'
if _SCHEDULER_FLAG not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = f"{os.environ.get('XLA_FLAGS', '')} --{_SCHEDULER_FLAG}=false".strip()
