"""The wavelet scattering features: shapes, the filters, agreement with a direct full-resolution
computation, per-image normalisation, and that each row depends on its own image only (the privacy
argument: a fixed per-record map)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from dpal_jax import data
from dpal_jax.data import scattering
from dpal_jax.dpsgd import clipped_grad, ghost_norm, losses
from dpal_jax.errors import ConfigError
from dpal_jax.models.linear import LogisticRegression


def _images(n, size=28, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 1)).astype(np.float32)


def _direct(x, J, L):
  """Order ≤ 2 scattering without intermediate subsampling: every convolution at full resolution,
  the low-pass output sampled every 2^J pixels at the end."""
  step = 2 ** J
  x = np.pad(x[..., 0].astype(np.float64), ((0, 0), (step, step), (step, step)), mode='reflect')
  phi, psi = scattering.filter_bank(x.shape[1], J, L)
  conv = lambda u, f: np.fft.ifft2(np.fft.fft2(u) * f)
  crop = slice(1, 1 + (x.shape[1] - 2 * step) // step)
  low = lambda u: np.real(conv(u, phi))[:, ::step, ::step][:, crop, crop]
  maps = [low(x)]
  for j1 in range(J):
    for l1 in range(L):
      u1 = np.abs(conv(x, psi[j1, l1]))
      maps.append(low(u1))
      for j2 in range(j1 + 1, J):
        for l2 in range(L):
          maps.append(low(np.abs(conv(u1, psi[j2, l2]))))
  return np.stack(maps, axis=-1)


@pytest.mark.parametrize('size, J, L, shape', [(28, 2, 8, (7, 7, 81)), (8, 2, 8, (2, 2, 81)),
                                              (16, 1, 4, (8, 8, 5)), (16, 3, 4, (2, 2, 61))])
def test_shape_is_the_subsampled_grid_times_the_order_two_channels(size, J, L, shape):
  out = scattering.scatter(_images(3, size), J=J, L=L, groups=0)
  assert out.shape == (3, *shape) and out.dtype == np.float32
  assert shape[-1] == scattering.num_channels(J, L)
  assert np.isfinite(out).all()


def test_wavelets_have_zero_mean_and_the_low_pass_unit_mass():
  phi, psi = scattering.filter_bank(36, 2, 8)
  assert phi[0, 0] == pytest.approx(1.0, abs=1e-6)
  for wave in psi.values():
    assert abs(wave[0, 0]) < 1e-9
  # Distinct orientations are distinct filters (an orientation bug would repeat one).
  assert not np.allclose(np.abs(psi[0, 0]), np.abs(psi[0, 2]), atol=1e-3)


def test_matches_the_direct_computation():
  x = _images(4)
  fast, direct = scattering.scatter(x, groups=0), _direct(x, 2, 8)
  # Order 0 and 1 (including the first-order channels of scale 1) are exact up to float32 rounding;
  # the second order is sampled every 2 pixels after its modulus, an approximation.
  order_one = [0] + [1 + l * 9 for l in range(8)] + list(range(73, 81))
  np.testing.assert_allclose(fast[..., order_one], direct[..., order_one], atol=2e-4, rtol=1e-3)
  order_two = [c for c in range(81) if c not in order_one]
  error = np.abs(fast[..., order_two] - direct[..., order_two]).mean()
  assert error < 0.05 * np.abs(direct[..., order_two]).mean()


def test_each_group_is_normalised_per_image():
  out = scattering.scatter(_images(3) * np.array([1, 10, 100], np.float32)[:, None, None, None])
  groups = out.reshape(3, 7, 7, 27, 3)
  np.testing.assert_allclose(groups.mean(axis=(1, 2, 4)), 0, atol=1e-4)
  np.testing.assert_allclose(groups.std(axis=(1, 2, 4)), 1, atol=0.01)  # std + 1e-5 divides
  blank = scattering.scatter(np.full((2, 28, 28, 1), -1, np.float32))  # the 'blank' noise setting's images
  assert np.isfinite(blank).all() and np.abs(blank).max() < 10


def test_a_row_depends_on_its_own_image_only():
  """Replacing or reordering other rows leaves a row's features unchanged (no pool statistics)."""
  x = _images(6)
  other = x.copy()
  other[1:] = _images(5, seed=1)
  base = scattering.scatter(x, block=4)
  np.testing.assert_array_equal(scattering.scatter(other, block=4)[0], base[0])
  order = np.array([5, 3, 0, 1, 4, 2])
  np.testing.assert_allclose(scattering.scatter(x[order], block=4), base[order], atol=1e-6)


def test_refuses_images_it_cannot_transform():
  with pytest.raises(ConfigError, match='dataset.features'):
    scattering.scatter(np.zeros((2, 32, 32, 3), np.float32))
  with pytest.raises(ConfigError, match='dataset.features'):
    scattering.scatter(np.zeros((2, 30, 30, 1), np.float32))


def test_dataset_features_applies_to_pool_and_test_and_names_unknown_ones():
  config = default.get_config().dataset
  config.name, config.test_size, config.features = 'digits', 297, 'pixels'
  pixels = data.load_from_config(config)
  config.features = 'scattering'
  features = data.load_from_config(config)
  assert features.x_train.shape == (1500, 2, 2, 81) and features.x_test.shape == (297, 2, 2, 81)
  np.testing.assert_array_equal(features.y_train, pixels.y_train)
  np.testing.assert_allclose(features.x_train[:5], scattering.scatter(pixels.x_train[:5]), atol=1e-6)
  with pytest.raises(ConfigError, match=r"dataset.features 'pca'.*pixels.*scattering"):
    data.apply_features(pixels, 'pca')


def test_the_linear_model_on_features_takes_the_exact_ghost_path():
  """'auto' picks ghost norms for logreg on [7, 7, 81] features; its clipped sum is the vmap one."""
  x = jnp.asarray(scattering.scatter(_images(6)) * np.linspace(0.1, 3, 6)[:, None, None, None])
  y = jnp.asarray(np.arange(6) % 10)
  mask = jnp.array([True, True, False, True, True, True])
  model = LogisticRegression(num_classes=10)
  params = model.init(jax.random.key(0), x[:1])['params']
  apply = lambda p, xb, k: model.apply({'params': p}, xb, train=True, rngs={'dropout': k})
  assert ghost_norm.is_dense_only(apply, params, x[:1], jax.random.key(1))
  args = (apply, losses.per_example_loss('multiclass'), params, x, y, mask,
          jax.random.split(jax.random.key(1), 6), 0.5)
  ghost, _ = jax.jit(ghost_norm.ghost_clipped_grad_sum, static_argnums=(0, 1))(*args)
  vmap, _ = jax.jit(clipped_grad.clipped_grad_sum, static_argnums=(0, 1))(*args)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), ghost, vmap)
