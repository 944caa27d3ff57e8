"""The run's figures: test metric against the number of labels, and ε of each cohort over the phases."""

import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top


def write_all(folder: str, history: list[dict], *, metric_name: str, target_epsilon: float) -> None:
  os.makedirs(folder, exist_ok=True)
  _metric_vs_labels(os.path.join(folder, 'test_metric.png'), history, metric_name)
  _epsilon_per_cohort(os.path.join(folder, 'epsilon_per_cohort.png'), history, target_epsilon)


def _save(fig, path: str) -> None:
  tmp = path + '.tmp.png'
  fig.savefig(tmp, dpi=120, bbox_inches='tight')
  plt.close(fig)
  os.replace(tmp, path)


def _metric_vs_labels(path: str, history: list[dict], metric_name: str) -> None:
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ax.plot([r['num_labeled'] for r in history], [r['test_metric'] for r in history], 'o-')
  ax.set_xlabel('labeled examples')
  ax.set_ylabel(f'test {metric_name}')
  ax.grid(alpha=0.3)
  _save(fig, path)


def _epsilon_per_cohort(path: str, history: list[dict], target_epsilon: float) -> None:
  fig, ax = plt.subplots(figsize=(5, 3.5))
  num_cohorts = len(history[-1]['epsilon_per_cohort'])
  for cohort in range(num_cohorts):
    points = [(r['phase'], r['epsilon_per_cohort'][cohort]) for r in history
              if cohort < len(r['epsilon_per_cohort'])]
    ax.plot(*zip(*points), 'o-', label=f'cohort {cohort}')
  if target_epsilon != float('inf'):
    ax.axhline(target_epsilon, color='k', ls='--', lw=1, label='target ε')
  ax.set_xlabel('phase')
  ax.set_ylabel('ε spent (incl. queries)')
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  _save(fig, path)
