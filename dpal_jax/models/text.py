"""A BERT-style sentence-pair classifier (`model.name: text_transformer`) over int32 token ids.

Post-LayerNorm encoder as BERT (word + position + segment embeddings, self-attention, GELU MLP, tanh
pooler on the first token), small by default so DP-SGD from scratch is affordable. Inputs follow
`dpal_jax.data.snli`: 0 is padding (masked out of attention), 2 is [SEP]; the segment of each token
(premise 0, hypothesis 1) is derived from the [SEP] positions, so the dataset stays a single array.

A pretrained encoder can be started from a local `.npz` whose keys are the '/'-joined parameter paths
of this module (e.g. `embeddings/word_embeddings/embedding`), with `model.checkpoint`; the classifier
`head` is always fresh.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from dpal_jax.errors import CheckpointError

PAD, SEP = 0, 2


class EncoderLayer(nn.Module):
  """Self-attention and MLP blocks, each followed by dropout, residual and LayerNorm (BERT order)."""
  heads: int
  mlp: int
  dropout: float

  @nn.compact
  def __call__(self, h: jax.Array, mask: jax.Array, train: bool) -> jax.Array:
    drop = nn.Dropout(self.dropout, deterministic=not train)
    width = h.shape[-1]
    split = lambda t: t.reshape(*t.shape[:-1], self.heads, width // self.heads)
    q, k, v = (split(nn.Dense(width, name=n)(h)) for n in ('query', 'key', 'value'))
    logits = jnp.einsum('bqhd,bkhd->bhqk', q, k) / jnp.sqrt(q.shape[-1]).astype(h.dtype)
    logits = jnp.where(mask[:, None, None, :], logits, jnp.finfo(h.dtype).min)
    attention = drop(jax.nn.softmax(logits, axis=-1))
    context = jnp.einsum('bhqk,bkhd->bqhd', attention, v).reshape(h.shape)
    h = nn.LayerNorm(1e-12, name='attention_norm')(
        h + drop(nn.Dense(width, name='attention_output')(context)))
    inner = jax.nn.gelu(nn.Dense(self.mlp, name='intermediate')(h), approximate=False)
    return nn.LayerNorm(1e-12, name='output_norm')(h + drop(nn.Dense(width, name='output')(inner)))


class TextTransformer(nn.Module):
  """Logits for [batch, length] int token ids; `embed` returns the pooled [CLS] features."""
  num_classes: int
  dropout: float = 0.1
  vocab_size: int = 8192
  max_length: int = 128
  hidden: int = 128
  layers: int = 2
  heads: int = 2
  mlp: int = 512

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self._forward(x, train, with_head=True)

  def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self._forward(x, train, with_head=False)

  @nn.compact
  def _forward(self, x: jax.Array, train: bool, with_head: bool) -> jax.Array:
    ids = x.astype(jnp.int32)
    mask = ids != PAD
    is_sep = (ids == SEP).astype(jnp.int32)
    segment = (jnp.cumsum(is_sep, axis=-1) - is_sep > 0).astype(jnp.int32)
    init = nn.initializers.normal(0.02)
    h = (nn.Embed(self.vocab_size, self.hidden, embedding_init=init, name='word_embeddings')(ids)
         + nn.Embed(self.max_length, self.hidden, embedding_init=init,
                    name='position_embeddings')(jnp.arange(ids.shape[-1]))
         + nn.Embed(2, self.hidden, embedding_init=init, name='token_type_embeddings')(segment))
    h = nn.Dropout(self.dropout, deterministic=not train)(
        nn.LayerNorm(1e-12, name='embeddings_norm')(h))
    for i in range(self.layers):
      h = EncoderLayer(self.heads, self.mlp, self.dropout, name=f'layer_{i}')(h, mask, train)
    pooled = jnp.tanh(nn.Dense(self.hidden, name='pooler')(h[:, 0]))
    if not with_head:
      return pooled
    pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
    return nn.Dense(self.num_classes, kernel_init=init, name='head')(pooled)


def pretrained(path: str, *, num_classes: int, key: jax.Array) -> dict:
  """Encoder params from a local `.npz` of '/'-joined paths, with a fresh N(0, 0.02) `head`."""
  try:
    with np.load(path, allow_pickle=False) as archive:
      flat = {tuple(name.split('/')): np.asarray(archive[name], np.float32) for name in archive}
  except (OSError, ValueError) as e:
    raise CheckpointError(f'model.checkpoint {path!r} is not a readable .npz of encoder '
                          f'parameters: {e}') from e
  params = traverse_util.unflatten_dict({k: v for k, v in flat.items() if k[0] != 'head'})
  if 'pooler' not in params or 'word_embeddings' not in params:
    raise CheckpointError(f'model.checkpoint {path!r} holds no text encoder (expected keys like '
                          f'word_embeddings/embedding and pooler/kernel, got {sorted(params)[:5]})')
  hidden = params['pooler']['kernel'].shape[1]
  params['head'] = {'kernel': 0.02 * jax.random.normal(key, (hidden, num_classes), jnp.float32),
                    'bias': jnp.zeros((num_classes,), jnp.float32)}
  return jax.tree.map(jnp.asarray, params)
