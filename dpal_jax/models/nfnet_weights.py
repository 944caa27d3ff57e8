"""The official NFNet weights (DeepMind `F{0..3}_haiku.npz`) read safely and mapped onto the Flax tree.

Despite its `.npz` name the official file is a (dill) pickle of a Haiku params tree:
`{module_path: {param_name: ndarray}}`, whose containers may be Haiku's `FlatMapping`. Unpickling
executes whatever callables the file names, so the reader allows only NumPy array reconstruction and
plain containers (Haiku's `FlatMapping`/`frozendict` are rebuilt as dicts) and refuses anything else
before calling it. The Haiku→Flax mapping is a rename (no transposes): module path split on `/~/` minus
the `NFNet` root, `w`→`kernel`, `b`→`bias`, the classifier `linear`→`head`.
"""

import functools
import pickle
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax import validate
from dpal_jax.errors import CheckpointError
from third_party.nfnets import nfnet

IMAGENET_CLASSES = 1000
_ROOT = 'NFNet/~/'
_PARAM_NAMES = {'w': 'kernel', 'b': 'bias', 'bias': 'bias', 'gain': 'gain', 'skip_gain': 'skip_gain'}
_HAIKU_CONTAINERS = {
    ('haiku._src.data_structures', 'FlatMapping'),
    ('haiku._src.data_structures', 'frozendict'),
    ('haiku.data_structures', 'FlatMapping'),
}
_NUMPY_CONSTRUCTORS = {
    ('numpy.core.multiarray', '_reconstruct'): np._core.multiarray._reconstruct,
    ('numpy._core.multiarray', '_reconstruct'): np._core.multiarray._reconstruct,
    ('numpy.core.multiarray', 'scalar'): np._core.multiarray.scalar,
    ('numpy._core.multiarray', 'scalar'): np._core.multiarray.scalar,
    ('numpy.core.numeric', '_frombuffer'): np._core.numeric._frombuffer,
    ('numpy._core.numeric', '_frombuffer'): np._core.numeric._frombuffer,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
}


def _as_dict(*args, **kwargs) -> dict:
  return dict(*args, **kwargs)


def _create_array(constructor, args, state, npdict=None) -> np.ndarray:
  """dill's `_create_array`, limited to the NumPy constructors the reader already allowed."""
  if constructor not in _NUMPY_CONSTRUCTORS.values() or npdict:
    raise pickle.UnpicklingError('dill._dill._create_array with a non-NumPy constructor or attributes')
  array = constructor(*args)
  array.__setstate__(state)
  return array


class _RestrictedUnpickler(pickle.Unpickler):
  """Resolves only allowed globals; records whether Haiku containers were used."""

  def __init__(self, file):
    super().__init__(file)
    self.saw_flatmapping = False

  def find_class(self, module: str, name: str):
    if (module, name) in _HAIKU_CONTAINERS:
      self.saw_flatmapping = True
      return _as_dict
    if (module, name) in _NUMPY_CONSTRUCTORS:
      return _NUMPY_CONSTRUCTORS[(module, name)]
    if (module, name) == ('dill._dill', '_create_array'):
      return _create_array
    if (module, name) == ('collections', 'OrderedDict'):
      return _as_dict
    raise pickle.UnpicklingError(
        f'refusing to load {module}.{name}: an NFNet weights file holds only NumPy arrays in '
        '(Haiku) mappings, and unpickling anything else could execute code')


def read_haiku_params(path: str) -> tuple[dict[str, dict[str, np.ndarray]], str]:
  """Reads an official-layout weights file: ({module_path: {param: array}}, format name).

  The format is 'haiku-flatmapping-pickle' when the file used Haiku's FlatMapping containers and
  'haiku-dict-pickle' for plain dicts. Raises CheckpointError for anything else.
  """
  try:
    with open(path, 'rb') as f:
      unpickler = _RestrictedUnpickler(f)
      tree = unpickler.load()
  except FileNotFoundError as e:
    raise CheckpointError(f'model.checkpoint: no file at {path!r}') from e
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
          IndexError, KeyError) as e:
    raise CheckpointError(
        f'{path} is not a valid NFNet weights file (a pickle of a Haiku params tree as released '
        f'by DeepMind, e.g. F0_haiku.npz): {e}') from e
  _check_layout(tree, path)
  return tree, 'haiku-flatmapping-pickle' if unpickler.saw_flatmapping else 'haiku-dict-pickle'


def _check_layout(tree, path: str) -> None:
  if not isinstance(tree, Mapping) or not tree:
    raise CheckpointError(f'{path}: expected a mapping module_path -> {{param: array}}, '
                          f'got {type(tree).__name__}')
  for module, params in tree.items():
    if not (isinstance(module, str) and module.startswith(_ROOT)
            and isinstance(params, Mapping)):
      raise CheckpointError(f'{path}: entry {module!r} is not an NFNet module path with params '
                            f'(expected keys like "NFNet/~/stem_conv0")')
    for name, value in params.items():
      if name not in _PARAM_NAMES or not isinstance(value, (np.ndarray, np.generic)):
        raise CheckpointError(f'{path}: {module}/{name} is not an NFNet parameter array')


def variant_of(tree: Mapping) -> str:
  """The variant whose block count matches the number of `nf_block*` modules (F0: 12)."""
  blocks = {m.split('/~/')[1] for m in tree if m.startswith(_ROOT + 'nf_block')}
  for name, spec in nfnet.VARIANTS.items():
    if sum(spec.depths) == len(blocks):
      return name
  raise CheckpointError(f'{len(blocks)} NF blocks match no known variant '
                        f'({", ".join(nfnet.VARIANTS)})')


def haiku_to_flax(tree: Mapping) -> dict:
  """Renames a Haiku NFNet tree into the nested Flax params dict of `third_party.nfnets.NFNet`."""
  params: dict = {}
  for module, leaves in tree.items():
    parts = module.split('/~/')[1:]
    if parts == ['linear']:
      parts = ['head']
    node = params
    for part in parts:
      node = node.setdefault(part, {})
    for name, value in leaves.items():
      node[_PARAM_NAMES[name]] = np.asarray(value)
  return params


def _variant_name(variant: str) -> str:
  """Accepts 'F0' or a registry name 'nfnet_f0'."""
  name = variant.upper().removeprefix('NFNET_')
  if name not in nfnet.VARIANTS:
    raise validate.unknown('NFNet variant', variant, nfnet.VARIANTS, error=CheckpointError)
  return name


@functools.cache
def expected_shapes(variant: str, num_classes: int = IMAGENET_CLASSES) -> dict:
  """Abstract Flax params of the full-size variant (no FLOPs: `jax.eval_shape`)."""
  model = nfnet.NFNet(num_classes=num_classes, variant=variant)
  spec = nfnet.VARIANTS[variant]
  x = jax.ShapeDtypeStruct((1, spec.train_imsize, spec.train_imsize, 3), jnp.float32)
  return jax.eval_shape(model.init, jax.random.key(0), x)['params']


def _paths(tree) -> dict[str, tuple]:
  return {'/'.join(k.key for k in path): tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def check_shapes(params, variant: str, source: str) -> None:
  """Raises CheckpointError listing every missing, unexpected or mis-shaped leaf."""
  got, want = _paths(params), _paths(expected_shapes(variant))
  problems = [f'missing {p}' for p in sorted(want.keys() - got.keys())]
  problems += [f'unexpected {p}' for p in sorted(got.keys() - want.keys())]
  problems += [f'{p}: shape {got[p]} != {want[p]}'
               for p in sorted(want.keys() & got.keys()) if got[p] != want[p]]
  if problems:
    shown = '; '.join(problems[:8]) + (f'; … {len(problems) - 8} more' if len(problems) > 8 else '')
    raise CheckpointError(f'{source} does not match NFNet-{variant}: {shown}')


def load_pretrained(path: str, variant: str, num_classes: int, key: jax.Array) -> dict:
  """Official weights as the Flax `params` dict of NFNet(num_classes, variant) (pass {'params': …}).

  Every leaf's name and shape is checked against the model. With num_classes ≠ 1000 the ImageNet
  classifier is replaced by a fresh one initialised as the model does (kernel N(0, 0.01), bias 0)
  from `key`; everything else is fine-tuned from the pretrained values.
  """
  variant = _variant_name(variant)
  tree, _ = read_haiku_params(path)
  params = haiku_to_flax(tree)
  check_shapes(params, variant, path)
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
  if num_classes != IMAGENET_CLASSES:
    width = params['head']['kernel'].shape[0]
    params['head'] = {
        'kernel': 0.01 * jax.random.normal(key, (width, num_classes), jnp.float32),
        'bias': jnp.zeros((num_classes,), jnp.float32),
    }
  return params


def inspect(path: str) -> dict:
  """{'format', 'variant', 'leaves', 'params'} of a weights file, after full validation."""
  tree, file_format = read_haiku_params(path)
  variant = variant_of(tree)
  params = haiku_to_flax(tree)
  check_shapes(params, variant, path)
  leaves = jax.tree.leaves(params)
  return {'format': file_format, 'variant': variant, 'leaves': len(leaves),
          'params': int(sum(leaf.size for leaf in leaves))}
