"""The DP-SGD engine: Poisson sampling with per-example rates, clipped per-example gradients, noise.

`sampler` (host, NumPy) → `clipped_grad` (vmap, any model) or `ghost_norm` (Dense-only models)
→ `noise` → `trainer.Trainer` (the phase loop, jitted steps, `sharding` over devices).
It consumes the Plan's rates and noise multipliers and never re-derives them.
"""
