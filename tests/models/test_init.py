"""models: `model.checkpoint` is checked against the model and the file system before any load."""

import pytest

from configs import default
from dpal_jax import models
from dpal_jax.errors import ConfigError


def _model_config(name, checkpoint):
  config = default.get_config().model
  config.name, config.checkpoint = name, checkpoint
  return config


def test_no_checkpoint_needs_no_file():
  models.check_checkpoint(_model_config('mlp', None))
  assert models.pretrained_params(_model_config('mlp', None), num_classes=10, key=None) is None


def test_a_model_without_pretrained_weights_says_so(tmp_path):
  path = tmp_path / 'weights.npz'
  path.write_bytes(b'x')
  with pytest.raises(ConfigError) as e:
    models.pretrained_params(_model_config('mlp', str(path)), num_classes=10, key=None)
  message = str(e.value)
  assert message.startswith("model.checkpoint is set, but model.name 'mlp' starts from no checkpoint")
  assert 'unknown' not in message and 'nfnet_f0' in message and 'text_transformer' in message


def test_a_directory_or_a_missing_file_is_refused_before_loading(tmp_path):
  with pytest.raises(ConfigError, match='model.checkpoint .* must be a file, not a directory'):
    models.check_checkpoint(_model_config('nfnet_f0', str(tmp_path)))
  with pytest.raises(ConfigError, match="model.checkpoint: no file at '.*F0_haiku.npz'"):
    models.pretrained_params(_model_config('nfnet_f0', str(tmp_path / 'F0_haiku.npz')),
                             num_classes=10, key=None)
