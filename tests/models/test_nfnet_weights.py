"""The official NFNet-F0 weights layout, written by the test from the published module table."""

import os
import pickle
import sys
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dpal_jax import models
from dpal_jax.errors import CheckpointError
from dpal_jax.models import nfnet_weights

# Block (in, out, width, stride, has conv_shortcut) of F0, from DeepMind's module table.
F0_BLOCKS = [(128, 256, 128, 1, True), (256, 512, 256, 2, True), (512, 512, 256, 1, False),
             (512, 1536, 768, 2, True)] + [(1536, 1536, 768, 1, False)] * 5 + [
                 (1536, 1536, 768, 2, True), (1536, 1536, 768, 1, False),
                 (1536, 1536, 768, 1, False)]


def official_f0_tree(rng):
  """{haiku module path: {param: float32 array}} with the official F0 names and shapes."""
  tree = {}

  def conv(path, shape):
    tree[path] = {'w': rng.normal(size=shape).astype(np.float32),
                  'gain': np.ones(shape[-1], np.float32), 'bias': np.zeros(shape[-1], np.float32)}

  def linear(path, n_in, n_out):
    tree[path] = {'w': rng.normal(size=(n_in, n_out)).astype(np.float32),
                  'b': rng.normal(size=n_out).astype(np.float32)}

  for i, (cin, cout) in enumerate([(3, 16), (16, 32), (32, 64), (64, 128)]):
    conv(f'NFNet/~/stem_conv{i}', (3, 3, cin, cout))
  for i, (cin, cout, width, _, shortcut) in enumerate(F0_BLOCKS):
    block = 'NFNet/~/nf_block' + (f'_{i}' if i else '')
    tree[block] = {'skip_gain': np.asarray(rng.normal(), np.float32)}
    conv(f'{block}/~/conv0', (1, 1, cin, width))
    conv(f'{block}/~/conv1', (3, 3, 128, width))
    conv(f'{block}/~/conv1b', (3, 3, 128, width))
    conv(f'{block}/~/conv2', (1, 1, width, cout))
    if shortcut:
      conv(f'{block}/~/conv_shortcut', (1, 1, cin, cout))
    linear(f'{block}/~/squeeze_excite/~/linear', cout, cout // 2)
    linear(f'{block}/~/squeeze_excite/~/linear_1', cout // 2, cout)
  conv('NFNet/~/final_conv', (1, 1, 1536, 3072))
  linear('NFNet/~/linear', 3072, 1000)
  return tree


def write_flatmapping_pickle(path, tree):
  """Pickles `tree` as Haiku (2020-08 … 2021-12) did: nested FlatMappings reduced to the class."""
  module = types.ModuleType('haiku._src.data_structures')

  class FlatMapping(dict):
    def __reduce__(self):
      return FlatMapping, (dict(self),)

  FlatMapping.__module__, FlatMapping.__qualname__ = module.__name__, 'FlatMapping'
  module.FlatMapping = FlatMapping
  names = ['haiku', 'haiku._src', 'haiku._src.data_structures']
  saved = {name: sys.modules.get(name) for name in names}
  sys.modules.update({name: types.ModuleType(name) for name in names[:2]})
  sys.modules[names[2]] = module
  try:
    with open(path, 'wb') as f:
      pickle.dump(FlatMapping({k: FlatMapping(v) for k, v in tree.items()}), f, protocol=4)
  finally:
    for name, old in saved.items():
      if old is None:
        sys.modules.pop(name, None)
      else:
        sys.modules[name] = old


@pytest.fixture(scope='module')
def f0_files(tmp_path_factory):
  tree = official_f0_tree(np.random.default_rng(0))
  folder = tmp_path_factory.mktemp('weights')
  write_flatmapping_pickle(folder / 'F0_haiku.npz', tree)
  with open(folder / 'F0_dict.pkl', 'wb') as f:
    pickle.dump(tree, f)
  return tree, folder / 'F0_haiku.npz', folder / 'F0_dict.pkl'


def test_the_written_file_really_references_haiku_flatmapping(f0_files):
  _, flat, plain = f0_files
  with open(flat, 'rb') as f:
    assert b'haiku._src.data_structures' in f.read(200)
  with open(plain, 'rb') as f:
    assert b'haiku' not in f.read()


@pytest.mark.parametrize('which,fmt', [(1, 'haiku-flatmapping-pickle'), (2, 'haiku-dict-pickle')])
def test_inspect_counts_the_official_leaves(f0_files, which, fmt):
  summary = nfnet_weights.inspect(str(f0_files[which]))
  assert summary == {'format': fmt, 'variant': 'F0', 'leaves': 233, 'params': 71_489_284}


def test_load_maps_names_and_values_without_transposes(f0_files):
  tree, path, _ = f0_files
  params = nfnet_weights.load_pretrained(str(path), 'nfnet_f0', 1000, jax.random.key(0))
  np.testing.assert_array_equal(params['stem_conv0']['kernel'], tree['NFNet/~/stem_conv0']['w'])
  np.testing.assert_array_equal(params['nf_block_9']['conv_shortcut']['gain'],
                                tree['NFNet/~/nf_block_9/~/conv_shortcut']['gain'])
  np.testing.assert_array_equal(params['nf_block_4']['squeeze_excite']['linear_1']['kernel'],
                                tree['NFNet/~/nf_block_4/~/squeeze_excite/~/linear_1']['w'])
  assert float(params['nf_block']['skip_gain']) == float(tree['NFNet/~/nf_block']['skip_gain'])
  np.testing.assert_array_equal(params['head']['kernel'], tree['NFNet/~/linear']['w'])


def test_new_classifier_is_reinitialised_and_the_model_accepts_the_tree(f0_files):
  tree, path, _ = f0_files
  config = ml_collections.ConfigDict({'name': 'nfnet_f0', 'checkpoint': str(path)})
  params = models.pretrained_params(config, num_classes=14, key=jax.random.key(0))
  head = params['head']
  assert head['kernel'].shape == (3072, 14) and head['bias'].shape == (14,)
  assert 0.005 < float(jnp.std(head['kernel'])) < 0.015 and not jnp.any(head['bias'])
  np.testing.assert_array_equal(params['final_conv']['kernel'], tree['NFNet/~/final_conv']['w'])
  model = models.get('nfnet_f0', num_classes=14)
  out = jax.eval_shape(model.apply, {'params': params}, jnp.zeros((2, 192, 192, 3)))
  assert out.shape == (2, 14)


def test_arrays_pickled_by_dill_load(tmp_path):
  """dill wraps ndarrays as `dill._dill._create_array(reconstructor, args, state, npdict)`."""
  module = types.ModuleType('dill._dill')

  def _create_array(f, args, state, npdict=None):
    raise AssertionError('never called at load time')

  class DillArray:
    def __init__(self, array):
      self.array = array

    def __reduce__(self):
      return _create_array, (*self.array.__reduce__(), None)

  _create_array.__module__, _create_array.__qualname__ = 'dill._dill', '_create_array'
  module._create_array = _create_array
  value = np.arange(6, dtype=np.float32).reshape(2, 3)
  sys.modules.update({'dill': types.ModuleType('dill'), 'dill._dill': module})
  try:
    data = pickle.dumps({'NFNet/~/linear': {'w': DillArray(value)}})
  finally:
    del sys.modules['dill._dill'], sys.modules['dill']
  path = tmp_path / 'dill.pkl'
  path.write_bytes(data)
  tree, _ = nfnet_weights.read_haiku_params(str(path))
  np.testing.assert_array_equal(tree['NFNet/~/linear']['w'], value)


def test_every_leaf_shape_is_checked(tmp_path):
  tree = official_f0_tree(np.random.default_rng(1))
  tree['NFNet/~/nf_block_3/~/conv1']['w'] = np.zeros((3, 3, 64, 768), np.float32)
  del tree['NFNet/~/nf_block_7/~/conv2']['gain']
  path = tmp_path / 'bad.pkl'
  with open(path, 'wb') as f:
    pickle.dump(tree, f)
  with pytest.raises(CheckpointError, match=r'missing nf_block_7/conv2/gain.*'
                     r'nf_block_3/conv1/kernel: shape \(3, 3, 64, 768\) != \(3, 3, 128, 768\)'):
    nfnet_weights.load_pretrained(str(path), 'F0', 10, jax.random.key(0))


class _Exploit:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return os.system, (f'touch {self.marker}',)


@pytest.mark.parametrize('payload', ['os_system', 'haiku_other', 'eval'])
def test_pickles_naming_other_callables_are_refused_without_running(tmp_path, payload):
  marker = tmp_path / 'executed'
  path = tmp_path / 'evil.npz'
  if payload == 'os_system':
    data = pickle.dumps({'NFNet/~/stem_conv0': {'w': _Exploit(marker)}})
  elif payload == 'haiku_other':
    data = b'chaiku._src.data_structures\nto_mutable_dict\n(tR.'
  else:
    data = b'cbuiltins\neval\n(Vprint(1)\ntR.'
  path.write_bytes(data)
  with pytest.raises(CheckpointError, match='refusing to load'):
    nfnet_weights.read_haiku_params(str(path))
  assert not marker.exists()


def test_not_a_pickle_is_a_clear_error(tmp_path):
  path = tmp_path / 'weights.npz'
  np.savez(path, w=np.zeros(3))
  with pytest.raises(CheckpointError, match='not a valid NFNet weights file'):
    nfnet_weights.read_haiku_params(str(path))
  with pytest.raises(CheckpointError, match='model.checkpoint: no file'):
    nfnet_weights.read_haiku_params(str(tmp_path / 'missing.npz'))
