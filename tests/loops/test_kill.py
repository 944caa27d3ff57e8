"""SIGKILL at random points, seeded and unseeded: every result ever printed or written is the one the
ledger counts — one released version per stage, never a second one after a restart."""

import collections
import json
import os
import time

import numpy as np
import pytest

from tests.loops import runs

CONFIGS = {'seeded': 'tests/configs/tiny.py', 'unseeded': 'tests/configs/tiny_unseeded.py'}


def _campaign(workdir, config, kills: int, rng) -> tuple[dict, dict, int]:
  """Starts and SIGKILLs the run up to `kills` times at random moments, then lets it finish; returns
  every (stage → released values) pair seen in logs and files, the final ledger and the kills done."""
  seen = collections.defaultdict(set)
  done = 0
  while done < kills:
    process = runs.start(workdir, config=config)
    time.sleep(rng.uniform(1.0, 9.0))  # start-up ≈ 3–4 s, the whole tiny run ≈ 5–10 s
    killed = process.poll() is None
    if killed:
      process.kill()
    code, _, err = runs.finish(process)
    assert code == (-9 if killed else 0), err[-2000:]
    for name, value in runs.releases(err) | runs.written_releases(workdir):
      seen[name].add(value)
    if not killed:
      break
    done += 1
  code, _, err = runs.run(workdir, config=config)
  assert code == 0, err[-2000:]
  for name, value in runs.releases(err) | runs.written_releases(workdir):
    seen[name].add(value)
  with open(os.path.join(workdir, 'ledger.json')) as f:
    return seen, json.load(f), done


def _check(seen, ledger):
  counted = {f'Phase {p["phase"]}' for p in ledger['phases']} | {
      f'Query {q["after_phase"] + 1}' for q in ledger['queries']}
  assert set(seen) == counted, (sorted(seen), sorted(counted))
  assert all(len(values) == 1 for values in seen.values()), dict(seen)


def _kill_campaigns(tmp_path, points_per_config: int, seed: int):
  rng = np.random.default_rng(seed)
  total = 0
  for name, config in CONFIGS.items():
    killed = campaigns = 0
    while killed < points_per_config:
      campaigns += 1  # a fresh workdir each time, even when a campaign ended before its first kill
      seen, ledger, done = _campaign(str(tmp_path / f'{name}{campaigns}'), config,
                                     min(points_per_config - killed, 4), rng)
      _check(seen, ledger)
      killed += done
    total += killed
  return total


def test_kill_nine_at_random_points_releases_each_result_once(tmp_path):
  assert _kill_campaigns(tmp_path, points_per_config=2, seed=1) == 4


@pytest.mark.slow
def test_kill_nine_at_twenty_four_random_points(tmp_path):
  assert _kill_campaigns(tmp_path, points_per_config=12, seed=2) == 24
