"""Registry factories for the NFNet variants (`model.name` 'nfnet_f0' … 'nfnet_f3').

The model itself lives in `third_party/nfnets` (architecture after DeepMind's release); pretrained
weights load with `dpal_jax.models.nfnet_weights.load_pretrained` (config field `model.checkpoint`).
"""

import jax

from dpal_jax.models import nfnet_weights
from third_party.nfnets.nfnet import NFNet


def _factory(variant: str):
  def build(*, num_classes: int, dropout: float | None = None, **kwargs) -> NFNet:
    return NFNet(num_classes=num_classes, variant=variant, dropout=dropout, **kwargs)
  build.__doc__ = (f'NFNet-{variant}; `dropout=None` keeps the variant\'s head dropout, other '
                   'keywords (stochdepth_rate, width_multiplier, group_width, depths) go to NFNet.')
  return build


def _pretrained(variant: str):
  def load(path: str, *, num_classes: int, key: jax.Array) -> dict:
    return nfnet_weights.load_pretrained(path, variant, num_classes, key)
  load.__doc__ = f'Official NFNet-{variant} weights as a Flax `params` dict (`models.PRETRAINED`).'
  return load


nfnet_f0, pretrained_f0 = _factory('F0'), _pretrained('F0')
nfnet_f1, pretrained_f1 = _factory('F1'), _pretrained('F1')
nfnet_f2, pretrained_f2 = _factory('F2'), _pretrained('F2')
nfnet_f3, pretrained_f3 = _factory('F3'), _pretrained('F3')
