"""PATE privacy analysis on the host (NumPy, SciPy, dp-accounting; no JAX). See docs/pate_analysis.md.

n teachers, trained on disjoint partitions, vote; n_j is the number of votes for class j (Σ_j n_j = n).
The accounting unit is a partition: changing anything in one partition changes at most one teacher's
vote, so one count falls by 1 and another rises by 1.

Data-independent costs (the guaranteed ε; each an exact dp-accounting event):
- GNMax answer argmax_j(n_j + N(0, σ₂²)): post-processing of the noisy histogram, whose L2 sensitivity
  is √2, so it is the Gaussian mechanism with noise multiplier σ₂/√2: RDP α/σ₂² (Papernot et al. 2018,
  Prop. 8).
- Threshold test max_j n_j + N(0, σ₁²) ≥ T (Confident-GNMax, Alg. 1) or max_j(n_j − M·p_j) + N(0, σ₁²) ≥ T
  (Interactive-GNMax, Alg. 2; p is the public student's prediction): the tested value moves by at most 1,
  the Gaussian mechanism with multiplier σ₁: RDP α/(2σ₁²).
- LNMax answer argmax_j(n_j + Lap(b)) (Papernot et al. 2017): post-processing of the noisy histogram; a
  neighbour moves two coordinates by 1 each, so the histogram is two independent sensitivity-1 Laplace
  mechanisms of scale b: `SelfComposedDpEvent(LaplaceDpEvent(b), 2)`, pure ε = 2/b (the 2017 paper's 2γ
  at γ = 1/b), and tighter in RDP and PLD than one Laplace of L1 sensitivity 2.
"""

import dp_accounting


def gnmax_answer_event(sigma2: float) -> dp_accounting.DpEvent:
  """One GNMax answer at vote noise σ₂: `GaussianDpEvent(σ₂/√2)` (RDP α/σ₂²).

  >>> gnmax_answer_event(40.0)
  GaussianDpEvent(noise_multiplier=28.2842712474619)
  """
  return dp_accounting.GaussianDpEvent(float(sigma2) / 2**0.5)


def threshold_event(sigma1: float) -> dp_accounting.DpEvent:
  """One threshold test at noise σ₁ (sensitivity 1): `GaussianDpEvent(σ₁)` (RDP α/(2σ₁²))."""
  return dp_accounting.GaussianDpEvent(float(sigma1))


def lnmax_answer_event(scale: float) -> dp_accounting.DpEvent:
  """One LNMax answer at Laplace scale b on every count: two sensitivity-1 Laplace(b), pure ε = 2/b."""
  return dp_accounting.SelfComposedDpEvent(dp_accounting.LaplaceDpEvent(float(scale)), 2)
