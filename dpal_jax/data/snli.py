"""SNLI (`dataset.name: snli`) from tensorflow-datasets, tokenised into fixed-length int32 ids.

Reads the prepared tfds `snli` dataset through `tfds.data_source` (array_record, no TensorFlow);
nothing here downloads. Pairs without a gold label (label −1) are dropped, as the original does. The
official train split is the pool, the official test split the test set.

Tokeniser: lower-cased words, numbers and punctuation, each hashed into a fixed vocabulary. The
vocabulary is a public function and is never fitted to the data, so building the inputs reveals
nothing about the private pool (a vocabulary built from the pool would). Layout as BERT's pair input:
[CLS] premise [SEP] hypothesis [SEP], the longer sentence truncated first, padded with 0 to `max_length`.
"""

import hashlib
import re

import numpy as np
import tensorflow_datasets as tfds

from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import DataError

PAD, CLS, SEP = 0, 1, 2
NUM_SPECIAL = 3
VOCAB_SIZE = 8192  # small: DP-SGD materialises one embedding gradient per example
MAX_LENGTH = 128
LABELS = ('entailment', 'neutral', 'contradiction')  # tfds' ClassLabel order
_TOKEN = re.compile(r'[a-z0-9]+|[^\sa-z0-9]')
_CHUNK = 4096


def load(*, data_dir: str | None = None, test_size: int | None = None, seed: int = 0,
         max_length: int = MAX_LENGTH, vocab_size: int = VOCAB_SIZE) -> Dataset:
  """Pool = tfds 'train', test = tfds 'test'; `test_size`/`seed` do not apply."""
  del test_size, seed  # official splits
  try:
    train, test = tfds.data_source('snli', split=['train', 'test'], data_dir=data_dir,
                                   download=False)
  except (ValueError, NotImplementedError, OSError) as e:
    folder = data_dir or '~/tensorflow_datasets'
    raise DataError(
        f'dataset snli: no prepared copy under {folder} (dataset.data_dir); prepare it once with '
        f"pip install 'dpal_jax[tf]' && tfds build snli --data_dir={folder} "
        '--file_format=array_record') from e
  x_train, y_train = _encode_split(train, max_length, vocab_size)
  x_test, y_test = _encode_split(test, max_length, vocab_size)
  return Dataset(name='snli', x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                 num_classes=len(LABELS), task='multiclass')


def _encode_split(source, max_length: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
  ids, labels = [], []
  for example in _read(source):
    label = int(example['label'])
    if label < 0:
      continue
    ids.append(encode_pair(_text(example['premise']), _text(example['hypothesis']),
                           max_length, vocab_size))
    labels.append(label)
  if not ids:
    raise DataError('dataset snli: a split has no examples with a gold label; re-prepare it')
  return np.stack(ids), np.asarray(labels, np.int32)


def _read(source):
  """All examples in chunks; single reads where `__getitems__` fails (tfds 4.9.10 mock_data)."""
  n = len(source)
  for start in range(0, n, _CHUNK):
    keys = list(range(start, min(n, start + _CHUNK)))
    try:
      yield from source.__getitems__(keys)
    except TypeError:
      yield from (source[k] for k in keys)


def _text(value) -> str:
  return value.decode('utf-8') if isinstance(value, bytes) else str(value)


def tokenize(text: str, vocab_size: int = VOCAB_SIZE) -> list[int]:
  """Ids in [NUM_SPECIAL, vocab_size) of the lower-cased words/punctuation of `text` (blake2b hash)."""
  buckets = vocab_size - NUM_SPECIAL
  return [NUM_SPECIAL + int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(),
                                       'little') % buckets
          for t in _TOKEN.findall(text.lower())]


def encode_pair(premise: str, hypothesis: str, max_length: int = MAX_LENGTH,
                vocab_size: int = VOCAB_SIZE) -> np.ndarray:
  """[CLS] a [SEP] b [SEP] padded with PAD to `max_length` (int32), truncating the longer first."""
  a, b = tokenize(premise, vocab_size), tokenize(hypothesis, vocab_size)
  while len(a) + len(b) > max_length - 3:
    (a if len(a) >= len(b) else b).pop()
  ids = np.full(max_length, PAD, np.int32)
  tokens = [CLS, *a, SEP, *b, SEP]
  ids[:len(tokens)] = tokens
  return ids
