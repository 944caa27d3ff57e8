"""Privacy math on the host (NumPy + dp-accounting, no JAX).

`planner.make_plan(config)` derives the Plan (`plan.py`): per-phase steps, σ and one Poisson rate per
cohort, in one of the modes of `modes.py` (the original's four) or `cohort_exact.py`. Every spend is a
privacy event over accounting units (`events.py`: a DP-SGD phase, a query round), the same objects in the
Plan and in `ledger.Ledger`, which records what is actually spent and gives each unit's ε.
`mechanisms/` holds each private release beside the dp-accounting event that pays for it (the top-k
selections); `accounting.py` composes dp-accounting events (with cached RDP vectors), `calibrate.py`
solves for σ / rate / steps. `pate_rdp.py` / `pate_smooth.py` are PATE's analysis: the data-independent
events of its votes (`events.PateRound`), the data-dependent RDP and its smooth-sensitivity release.
"""
