"""SNLI through tfds.data_source under tfds.testing.mock_data, and the pair tokeniser."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from dpal_jax import data
from dpal_jax.data import snli
from dpal_jax.errors import DataError


@pytest.fixture
def mock_snli():
  with tfds.testing.mock_data(num_examples=12):
    yield


def test_load_under_mock_data_gives_fixed_length_pairs(mock_snli):
  ds = data.load('snli', max_length=32)
  assert ds.task == 'multiclass' and ds.num_classes == 3
  assert ds.x_train.shape == (12, 32) and ds.x_train.dtype == np.int32
  assert ds.y_train.dtype == np.int32 and set(ds.y_train) <= {0, 1, 2}
  for row in ds.x_train:
    assert row[0] == snli.CLS and (row == snli.SEP).sum() == 2
    length = np.flatnonzero(row == snli.SEP)[-1] + 1
    assert np.all(row[length:] == snli.PAD) and np.all(row[:length] != snli.PAD)
    assert np.all(row < snli.VOCAB_SIZE)


def test_pairs_without_gold_label_are_dropped():
  class Source(list):
    def __getitems__(self, keys):
      return [self[k] for k in keys]

  source = Source([{'premise': b'A dog runs.', 'hypothesis': b'An animal moves.', 'label': 0},
                   {'premise': b'A man.', 'hypothesis': b'Nobody.', 'label': -1},
                   {'premise': 'Two cats.', 'hypothesis': 'Cats.', 'label': 2}])
  x, y = snli._encode_split(source, 16, snli.VOCAB_SIZE)
  np.testing.assert_array_equal(y, [0, 2])
  np.testing.assert_array_equal(x[1], snli.encode_pair('Two cats.', 'Cats.', 16))


def test_tokeniser_is_a_fixed_public_function():
  a = snli.tokenize('A man, a plan: PANAMA!')
  assert a == snli.tokenize('a MAN , a plan : panama !')
  assert len(a) == 8 and a[0] == a[3] and a[1] != a[4]
  assert all(snli.NUM_SPECIAL <= t < snli.VOCAB_SIZE for t in a)
  assert snli.tokenize('word', vocab_size=100)[0] < 100


def test_longer_sentence_is_truncated_first():
  ids = snli.encode_pair(' '.join(['x'] * 50), 'short hypothesis here', max_length=20)
  assert len(ids) == 20 and ids[-1] == snli.SEP
  seps = np.flatnonzero(ids == snli.SEP)
  assert seps[1] - seps[0] - 1 == 3  # the hypothesis kept whole
  assert seps[0] - 1 == 14


def test_unprepared_dataset_names_the_fix(tmp_path):
  with pytest.raises(DataError, match='tfds build snli'):
    data.load('snli', data_dir=str(tmp_path))


@pytest.mark.slow
def test_snli_config_runs_on_mock_data(tmp_path):
  """configs/snli_entropy.py end to end on mock SNLI, shrunk to seconds of training."""
  from configs import snli_entropy
  from dpal_jax import loops
  config = snli_entropy.get_config()
  config.model.name = 'text_transformer'
  config.train.epochs = 1
  config.train.batch_size = config.train.physical_batch_size = 16
  config.al.initial_size, config.al.query_sizes, config.al.labeling_budget = 48, (16,), 64
  config.al.query_batch_size = 64
  with tfds.testing.mock_data(num_examples=96):
    summary = loops.run(config, str(tmp_path / 'run'))
  assert summary['dataset'] == 'snli' and summary['metric'] == 'accuracy'
  assert len(summary['phases']) == 2 and 0.0 <= summary['final_test_metric'] <= 1.0
