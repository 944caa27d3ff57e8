"""dpal_jax: differentially private active learning in JAX/Flax."""
