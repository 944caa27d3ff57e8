"""The mechanism registry: every name resolves to a mechanism whose plain data round-trips."""

import hypothesis
import pytest
from hypothesis import strategies as st

from dpal_jax.errors import ConfigError
from dpal_jax.privacy import mechanisms
from dpal_jax.privacy.mechanisms.gaussian_top_k import GaussianTopK
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK

MECHANISM = st.one_of(
    st.builds(LaplaceTopK, st.floats(0.0, 100.0)),
    st.builds(GaussianTopK, st.floats(1e-3, 100.0), st.none() | st.floats(1e-3, 1.0)))


def test_every_name_resolves_to_its_class():
  for name in mechanisms.MECHANISMS:
    assert mechanisms.get(name).name == name
  with pytest.raises(ConfigError, match="privacy.query_mechanism 'exponential' is unknown.*gaussian"):
    mechanisms.get('exponential')


@hypothesis.settings(max_examples=50, deadline=None)
@hypothesis.given(mechanism=MECHANISM)
def test_plain_data_round_trips_and_keeps_the_event(mechanism):
  data = mechanisms.to_dict(mechanism)
  assert data['mechanism'] == mechanism.name and None not in data.values()
  again = mechanisms.from_dict(data)
  assert again == mechanism and again.dp_event() == mechanism.dp_event()
