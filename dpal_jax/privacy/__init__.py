"""Privacy math on the host (NumPy + dp-accounting, no JAX).

`planner.make_plan(config)` derives the Plan (`plan.py`): per-phase steps, σ and one Poisson rate per
cohort, in one of the modes of `modes.py` (the original's four) or `cohort_exact.py`; `ledger.Ledger`
records what is actually spent and gives each cohort's ε; `accounting.py` composes dp-accounting events
(with cached RDP vectors), `calibrate.py` solves for σ / rate / steps, `query_events.py` maps private
selection rounds to events.
"""
