import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax.dpsgd import noise


def test_noise_has_mean_zero_and_stddev_sigma_c_independent_of_the_data():
  stddev = 1.3 * 0.7
  tree = {'a': jnp.zeros((200, 50)), 'b': jnp.zeros((7,))}
  keys = jax.random.split(jax.random.key(0), 50)
  draw = jax.jit(jax.vmap(lambda k: noise.add_gaussian_noise(tree, k, stddev)))
  samples = np.concatenate([np.asarray(l).reshape(-1) for l in jax.tree.leaves(draw(keys))])
  n = samples.size
  assert abs(samples.mean()) <= 3 * stddev / np.sqrt(n)
  assert abs(samples.std() - stddev) <= 3 * stddev / np.sqrt(2 * n)
  data = jax.tree.map(lambda l: l + 5.0, tree)
  noisy_data = noise.add_gaussian_noise(data, keys[0], stddev)
  noisy_zero = noise.add_gaussian_noise(tree, keys[0], stddev)
  jax.tree.map(lambda u, v: np.testing.assert_allclose(u - 5.0, v, atol=1e-5), noisy_data, noisy_zero)


def test_coordinates_and_leaves_get_independent_noise():
  tree = {'a': jnp.zeros((1000,)), 'b': jnp.zeros((1000,))}
  noisy = noise.add_gaussian_noise(tree, jax.random.key(3), 1.0)
  assert abs(np.corrcoef(noisy['a'], noisy['b'])[0, 1]) < 0.15
  assert len(np.unique(np.asarray(noisy['a']))) == 1000


def test_zero_stddev_adds_nothing():
  tree = {'a': jnp.arange(5.0)}
  np.testing.assert_array_equal(noise.add_gaussian_noise(tree, jax.random.key(0), 0.0)['a'], tree['a'])


def test_blocked_noise_draws_exactly_jax_random_normal():
  key = jax.random.key(7)
  for shape in [(noise.BLOCK + 1,), (300, 700), (3, 3, 64, 130)]:   # ragged last blocks
    reference = jax.jit(lambda k: jax.random.normal(k, shape))(key)
    got = jax.jit(lambda k: noise._add_noise(jnp.zeros(shape), k, 1.0))(key)
    np.testing.assert_array_equal(got, reference)


def test_blocked_noise_keeps_the_update_memory_small():
  shape = (784, 512)
  draws = {'blocked': lambda l, k: noise.add_gaussian_noise({'w': l}, k, 0.7)['w'],
           'whole': lambda l, k: l + 0.7 * jax.random.normal(k, l.shape)}
  temp = {name: jax.jit(f, donate_argnums=0).lower(jnp.zeros(shape), jax.random.key(0)).compile()
          .memory_analysis().temp_size_in_bytes for name, f in draws.items()}
  leaf_bytes = 784 * 512 * 4
  assert temp['blocked'] <= leaf_bytes < temp['whole']
