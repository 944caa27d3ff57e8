import dp_accounting
import pytest

from dpal_jax.errors import ConfigError
from dpal_jax.privacy import accounting
from dpal_jax.privacy.plan import Query
from dpal_jax.privacy.query_events import make_queries
from dpal_jax.privacy.query_events import query_event


def test_events_of_each_mechanism():
  assert query_event(Query(0, 'laplace', epsilon=0.5)) == dp_accounting.LaplaceDpEvent(2.0)
  assert query_event(Query(0, 'gaussian', noise_multiplier=3.0)) == dp_accounting.GaussianDpEvent(3.0)
  assert query_event(Query(0, 'gaussian', noise_multiplier=3.0, sample_rate=0.2)) == (
      dp_accounting.PoissonSampledDpEvent(0.2, dp_accounting.GaussianDpEvent(3.0)))
  with pytest.raises(ValueError, match='unknown'):
    query_event(Query(0, 'exponential', epsilon=1.0))


def test_laplace_budget_is_spread_over_the_rounds():
  queries = make_queries('laplace', 2.0, 4, 1e-5)
  assert [q.after_phase for q in queries] == [0, 1, 2, 3]
  assert all(q.epsilon == 0.5 for q in queries)


@pytest.mark.parametrize('accountant', ['rdp', 'pld'])
def test_gaussian_rounds_cost_what_the_laplace_rounds_would(accountant):
  laplace = [query_event(q) for q in make_queries('laplace', 2.0, 4, 1e-5, accountant)]
  gaussian = [query_event(q) for q in make_queries('gaussian', 2.0, 4, 1e-5, accountant)]
  assert accounting.epsilon(gaussian, 1e-5, accountant) == pytest.approx(
      accounting.epsilon(laplace, 1e-5, accountant), abs=1e-4)


def test_unknown_mechanism_names_the_field():
  with pytest.raises(ConfigError, match='privacy.query_mechanism'):
    make_queries('exponential', 2.0, 4, 1e-5)
