"""Flax classifiers by name: `models.get('resnet9_gn', num_classes=10)`.

Every model is a `flax.linen.Module` whose `__call__(x, train=False)` returns logits for a batch and
whose `embed(x, train=False)` returns the penultimate features (BADGE, core-set). Its final Dense layer
is named 'head'. `train=True` enables dropout / stochastic depth and needs a 'dropout' PRNG stream.
"""

from dpal_jax import registry

MODELS = {
    'mlp': 'dpal_jax.models.mlp:MLP',
    'cnn': 'dpal_jax.models.cnn:SmallCNN',
    'resnet9_gn': 'dpal_jax.models.resnet9:ResNet9',
}


def get(name: str, *, num_classes: int, **kwargs):
  """Builds the model registered under `name` (config field `model.name`)."""
  return registry.resolve(MODELS, name, 'model.name')(num_classes=num_classes, **kwargs)
