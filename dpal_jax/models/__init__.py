"""Flax classifiers by name: `models.get('resnet9_gn', num_classes=10)`.

Every model is a `flax.linen.Module` whose `__call__(x, train=False)` returns logits for a batch and
whose `embed(x, train=False)` returns the penultimate features (BADGE, core-set). Its final Dense layer
is named 'head'. `train=True` enables dropout / stochastic depth and needs a 'dropout' PRNG stream.
"""

from dpal_jax import registry
from dpal_jax import validate
from dpal_jax.errors import ConfigError

MODELS = {
    'mlp': 'dpal_jax.models.mlp:MLP',
    'logreg': 'dpal_jax.models.linear:LogisticRegression',
    'mlp_128x2': 'dpal_jax.models.mlp:mlp_128x2',
    'cnn': 'dpal_jax.models.cnn:SmallCNN',
    'resnet9_gn': 'dpal_jax.models.resnet9:ResNet9',
    'nfnet_f0': 'dpal_jax.models.nfnet:nfnet_f0',
    'nfnet_f1': 'dpal_jax.models.nfnet:nfnet_f1',
    'nfnet_f2': 'dpal_jax.models.nfnet:nfnet_f2',
    'nfnet_f3': 'dpal_jax.models.nfnet:nfnet_f3',
    'text_transformer': 'dpal_jax.models.text:TextTransformer',
}


def get(name: str, *, num_classes: int, **kwargs):
  """Builds the model registered under `name` (config field `model.name`)."""
  return registry.resolve(MODELS, name, 'model.name')(num_classes=num_classes, **kwargs)

# Models that can start from a pretrained file (`model.checkpoint`): name -> loader(path, num_classes, key)
# returning a params tree the model accepts.
PRETRAINED = {
    'nfnet_f0': 'dpal_jax.models.nfnet:pretrained_f0',
    'nfnet_f1': 'dpal_jax.models.nfnet:pretrained_f1',
    'nfnet_f2': 'dpal_jax.models.nfnet:pretrained_f2',
    'nfnet_f3': 'dpal_jax.models.nfnet:pretrained_f3',
    'text_transformer': 'dpal_jax.models.text:pretrained',
}


def check_checkpoint(model_config) -> None:
  """Raises ConfigError unless `model.checkpoint` is unset, or a file and `model.name` can load one."""
  if not model_config.get('checkpoint'):
    return
  if model_config.name not in PRETRAINED:
    raise ConfigError(
        f'model.checkpoint is set, but model.name {model_config.name!r} starts from no checkpoint; '
        f'unset model.checkpoint, or choose a model.name that does: {", ".join(sorted(PRETRAINED))}')
  validate.existing_file('model.checkpoint', model_config.checkpoint,
                         hint='give the path of the pretrained weights file')


def pretrained_params(model_config, num_classes: int, key):
  """The params in `model_config.checkpoint`, or None when the config names no checkpoint."""
  check_checkpoint(model_config)
  if not model_config.get('checkpoint'):
    return None
  loader = registry.resolve(PRETRAINED, model_config.name, 'model.name')
  return loader(model_config.checkpoint, num_classes=num_classes, key=key)
