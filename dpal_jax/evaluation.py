"""Test-set evaluation: accuracy for single-label tasks, mean AUC over labels for multi-label ones."""


from dpal_jax import metrics
from dpal_jax.data.dataset import Dataset
from dpal_jax.models import inference


def metric_name(task: str) -> str:
  return 'mean_auc' if task == 'multilabel' else 'accuracy'


def evaluate(model, params, dataset: Dataset, *, batch_size: int) -> tuple[str, float]:
  """(metric name, value) of `model` on the test split, with one compiled forward shape.

  Multi-label: mean AUC over `dataset.metric_labels` (CheXpert: the five competition labels).
  """
  logits = inference.predict(model, params, dataset.x_test, batch_size=batch_size)
  name = metric_name(dataset.task)
  if dataset.task == 'multilabel':
    return name, float(metrics.mean_auc(dataset.y_test, logits, columns=dataset.metric_labels))
  return name, float(metrics.accuracy(dataset.y_test, logits))
