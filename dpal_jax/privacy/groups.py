"""Per-group budgets: public groups of pool examples (site, modality), each with its own ε target.

A dataset may name the groups of each pool example (`Dataset.groups`: str [N] for one grouping, or
[N, M] for M groupings such as site and modality). Membership must be public: it may not depend on labels
or on anything computed from private data. `privacy.group_epsilon` maps group names to targets ε_g in
(0, privacy.epsilon]; a group it does not name gets privacy.epsilon.

An example in several groups is charged in each: its ε counts towards every one of its groups, and a
group's ε is the largest ε of its members, ε(g) = max_{i ∈ g} ε(i). So its target is the tightest of its
groups, t(i) = min_{g ∋ i} ε_g, and ε(i) ≤ t(i) for every i gives ε(g) ≤ ε_g for every g.

Examples with the same set of groups (their *signature* s) share a target t_s. The accounting units of a
run with groups are (cohort c, signature s) and (never labeled, s), in slot order c·G + s (G signatures),
so phase k's sample rates are the (k + 1)·G slots of cohorts 0..k; the never-labeled units follow. Each
unit gets its own Poisson rate (individualised DP-SGD, `cohort_exact.schedule` with one target per unit),
and a group ends at its target when some unit of its tightest signature does (a group whose every member
also sits in a tighter group ends below its own target, at the tightest target of its members).
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from dpal_jax.errors import ConfigError

FIELD = 'privacy.group_epsilon'


@dataclasses.dataclass(frozen=True)
class Groups:
  """The group signatures of a pool and their targets.

  signatures: per signature s, the sorted tuple of its group names.
  targets: per signature s, t_s = min of its groups' ε targets.
  signature_of: int32 [N], the signature of each pool example.
  group_targets: {group name: ε_g} for every group of the pool.
  """
  signatures: tuple
  targets: tuple
  signature_of: np.ndarray
  group_targets: Mapping

  @property
  def num_signatures(self) -> int:
    return len(self.signatures)

  def shares(self) -> np.ndarray:
    """π_s: the share of the pool with signature s (public: membership is public)."""
    counts = np.bincount(self.signature_of, minlength=self.num_signatures)
    return counts / counts.sum()


def from_labels(labels: np.ndarray, group_epsilon: Mapping | None, epsilon: float) -> Groups:
  """The `Groups` of a pool whose example i belongs to the groups in row i of `labels`.

  Args:
    labels: [N] or [N, M] group names (any values; compared as strings).
    group_epsilon: {group name: ε_g} (`privacy.group_epsilon`); unnamed groups get `epsilon`.
    epsilon: privacy.epsilon, the cap of every target.

  Raises:
    ConfigError: a name in `group_epsilon` that is no group of the pool, or a target outside
      (0, epsilon]; the message names the field and lists the pool's groups.
  """
  labels = np.asarray(labels).astype(str)
  if labels.ndim == 1:
    labels = labels[:, None]
  if labels.ndim != 2 or not labels.size:
    raise ConfigError(f'dataset groups must be an array [N] or [N, M] of group names, got shape '
                      f'{labels.shape}')
  return from_sets([set(row) for row in labels.tolist()], group_epsilon, epsilon)


def from_sets(memberships: Sequence, group_epsilon: Mapping | None, epsilon: float) -> Groups:
  """`from_labels` for pool items given as sets of group names (e.g. a person: the groups of all its
  records); same checks."""
  memberships = [frozenset(str(g) for g in m) for m in memberships]
  if not memberships or not all(memberships):
    raise ConfigError('every pool item must belong to at least one group (Dataset.groups)')
  names = sorted(set().union(*memberships))
  given = dict(group_epsilon or {})
  unknown = sorted(set(given) - set(names))
  if unknown:
    raise ConfigError(f'{FIELD} names {unknown}, which are no groups of the dataset; its groups are '
                      f'{names}')
  for name, value in given.items():
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= epsilon:
      raise ConfigError(f'{FIELD}[{name!r}] ({value!r}) must be a number in (0, privacy.epsilon = '
                        f'{epsilon}]; lower it, or raise privacy.epsilon')
  group_targets = {name: float(given.get(name, epsilon)) for name in names}
  rows = [tuple(sorted(m)) for m in memberships]
  signatures = sorted(set(rows))
  index = {s: i for i, s in enumerate(signatures)}
  signature_of = np.asarray([index[r] for r in rows], np.int32)
  targets = tuple(min(group_targets[g] for g in s) for s in signatures)
  return Groups(tuple(signatures), targets, signature_of, group_targets)


def unit_layout(num_cohorts: int, signatures: Sequence = (), targets: Sequence = ()
                ) -> tuple[tuple, tuple, tuple]:
  """(labeled_at, targets, unit_groups) of the ledger units, in slot order (see the module docstring).

  Without signatures: cohorts 0..C−1 and the never-labeled, no per-unit targets, no unit groups.

  >>> unit_layout(2, (('a',), ('b',)), (1.0, 0.5))
  ((0, 0, 1, 1, None, None), (1.0, 0.5, 1.0, 0.5, 1.0, 0.5), (('a',), ('b',), ('a',), ('b',), ('a',), \
('b',)))
  """
  if not signatures:
    return (*range(num_cohorts), None), (), ()
  labeled_at = tuple(c for c in (*range(num_cohorts), None) for _ in signatures)
  signatures = tuple(tuple(s) for s in signatures)
  return labeled_at, tuple(targets) * (num_cohorts + 1), signatures * (num_cohorts + 1)


def item_slots(cohorts: np.ndarray, signature_of: np.ndarray, num_signatures: int) -> np.ndarray:
  """The unit slot c·G + s of each labeled item from its cohort c and signature s (`unit_layout` order)."""
  return np.asarray(cohorts, np.int64) * num_signatures + np.asarray(signature_of, np.int64)


def expected_unit_sizes(cohort_sizes: Sequence[int], groups: Groups) -> list[float]:
  """n_{c,s} = |cohort c|·π_s, the sizes a schedule is planned for (slot order c·G + s).

  Exact in expectation for the uniformly drawn initial cohort; a query may pick other shares, and the
  loop divides by the realised Σ_u q_u·|u| (public: the picks are a DP release, membership is public).
  """
  shares = groups.shares()
  return [float(n * p) for n in cohort_sizes for p in shares]


def epsilon_per_group(epsilons: Sequence[float], unit_groups: Sequence[Sequence[str]]) -> dict:
  """{group: ε(g)} = the largest ε of the units that hold members of g."""
  out = {}
  for eps, names in zip(epsilons, unit_groups):
    for name in names:
      out[name] = max(out.get(name, -math.inf), eps)
  return dict(sorted(out.items()))
