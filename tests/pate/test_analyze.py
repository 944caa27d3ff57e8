"""`python -m dpal_jax.pate analyze`: the happy path on a real votes file (JSON fields equal the
library's analysis), and one clear `error: …` line (exit 2, no traceback) for each bad file or flag."""

import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from dpal_jax.errors import ConfigError
from dpal_jax.pate import analyze
from dpal_jax.pate import votes as votes_lib
from dpal_jax.privacy import pate_rdp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIDENT = ['--aggregator=confident_gnmax', '--sigma2=40', '--threshold=200', '--sigma1=150',
             '--delta=1e-5']


def _cli(*args):
  return subprocess.run([sys.executable, '-m', 'dpal_jax.pate', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=120, check=False)


@pytest.fixture(name='votes_file')
def fixture_votes_file(tmp_path):
  votes = np.random.default_rng(0).multinomial(250, [0.85] + [0.15 / 9] * 9, size=80)
  path = tmp_path / 'votes.npy'
  np.save(path, votes)
  return str(path), votes


def test_json_has_the_fields_of_the_analysis(votes_file):
  path, votes = votes_file
  done = _cli('analyze', f'--votes={path}', *CONFIDENT, '--smooth-sensitivity', '--json')
  assert done.returncode == 0, done.stderr
  got = json.loads(done.stdout)
  want = pate_rdp.analyze(votes, aggregator='confident_gnmax', sigma2=40.0, threshold=200.0,
                          sigma1=150.0, delta=1e-5, smooth_sensitivity=True)
  assert got.keys() == want.keys() and got['smooth_sensitivity'].keys() == want['smooth_sensitivity'].keys()
  for field in ('expected_answered', 'epsilon_data_independent', 'order_data_independent',
                'epsilon_data_dependent', 'order_data_dependent'):
    assert got[field] == pytest.approx(want[field], rel=1e-12)
  release = got['smooth_sensitivity']
  for field in ('beta', 'expected_smooth_sensitivity', 'sigma_ss', 'epsilon_with_smooth_sensitivity'):
    assert release[field] == pytest.approx(want['smooth_sensitivity'][field], rel=1e-12)
  assert got['epsilon_data_dependent'] < got['epsilon_data_independent']
  assert 0 < got['expected_answered'] < 80


def test_orders_and_text_output(votes_file):
  path, votes = votes_file
  done = _cli('analyze', f'--votes={path}', '--aggregator=gnmax', '--sigma2=40', '--delta=1e-5',
              '--orders=2,8,32')
  assert done.returncode == 0, done.stderr
  want = pate_rdp.analyze(votes, aggregator='gnmax', sigma2=40.0, delta=1e-5, orders=[2, 8, 32])
  assert f'ε data-dependent           {want["epsilon_data_dependent"]:.4f}' in done.stdout
  assert want['order_data_dependent'] in (2, 8, 32)
  assert 'expected answered          80.00' in done.stdout


def _save(tmp_path, name, value, **kwargs):
  path = tmp_path / name
  np.save(path, value, **kwargs)
  return str(path)


BAD_FILES = {
    'float': (lambda p: _save(p, 'f.npy', np.ones((3, 4))), 'dtype float64 is not an integer type'),
    'bool': (lambda p: _save(p, 'b.npy', np.ones((3, 4), bool)), 'dtype bool is not an integer type'),
    'negative': (lambda p: _save(p, 'n.npy', np.array([[3, 1], [5, -1]])), 'row 1 has a negative count'),
    'totals': (lambda p: _save(p, 't.npy', np.array([[3, 1], [2, 1]])), 'row 1 sums to 3 votes, row 0 to 4'),
    'one_d': (lambda p: _save(p, 'd.npy', np.array([3, 1])), 'shape (2,) is not 2-D'),
    'one_class': (lambda p: _save(p, 'c.npy', np.array([[3], [3]])), 'two classes'),
    'objects': (lambda p: _save(p, 'o.npy', np.array([{'a': 1}], dtype=object), allow_pickle=True),
                'pickled data or objects'),
    'npz': (lambda p: (np.savez(p / 'z.npz', votes=np.ones((2, 2), int)), str(p / 'z.npz'))[1],
            'an .npz archive'),
    'missing': (lambda p: str(p / 'nothing.npy'), 'no such file'),
    'text': (lambda p: (open(p / 'v.csv', 'w').write('1,2\n'), str(p / 'v.csv'))[1], 'not a NumPy .npy'),
}


@pytest.mark.parametrize('name', BAD_FILES)
def test_each_bad_file_is_one_config_error_naming_votes(tmp_path, name):
  make, message = BAD_FILES[name]
  path = make(tmp_path)
  with pytest.raises(ConfigError, match=re.escape(message)) as raised:
    analyze.run(path, aggregator='gnmax', sigma2=40.0, delta=1e-5)
  assert str(raised.value).startswith(f'--votes={path}: ') and '\n' not in str(raised.value)


def test_a_pickle_is_refused_on_the_command_line_without_running_it(tmp_path):
  marker = tmp_path / 'ran'

  class Payload:  # unpickling this would create `marker`
    def __reduce__(self):
      return (open, (str(marker), 'w'))

  path = tmp_path / 'votes.npy'
  path.write_bytes(pickle.dumps(Payload()))
  done = _cli('analyze', f'--votes={path}', '--aggregator=gnmax', '--sigma2=40', '--delta=1e-5')
  assert done.returncode == 2 and not marker.exists()
  assert done.stderr.startswith(f'error: --votes={path}: holds pickled data')
  assert 'Traceback' not in done.stderr
  assert len(done.stderr.strip().splitlines()) == 1


def test_different_totals_and_an_unknown_command_on_the_command_line(tmp_path):
  path = _save(tmp_path, 't.npy', np.array([[3, 1], [2, 1]]))
  done = _cli('analyze', f'--votes={path}', '--aggregator=gnmax', '--sigma2=40', '--delta=1e-5')
  assert (done.returncode, done.stderr) == (2, f'error: --votes={path}: row 1 sums to 3 votes, row 0 to '
                                                '4; every row counts the votes of the same teachers '
                                                '(one vote each)\n')
  done = _cli('summarise')
  assert done.returncode == 2 and done.stderr.startswith("error: name a command (got 'summarise')")


@pytest.mark.parametrize('kwargs, match', [
    ({'aggregator': 'lnmax'}, "--aggregator 'lnmax' is unknown"),
    ({'aggregator': 'confident_gnmax'}, '--aggregator=confident_gnmax needs --threshold and --sigma1'),
    ({'sigma2': 0.0}, r'--sigma2 \(0.0\) must be'),
    ({'delta': 1.0}, r'--delta \(1.0\) must be'),
    ({'threshold': 200.0}, 'runs no threshold test'),
    ({'orders': ['2', 'x']}, 'must be numbers > 1'),
    ({'orders': ['1', '2']}, r'--orders \(1.0\) must be'),
    ({'beta': 0.01}, 'only with --smooth-sensitivity'),
    ({'beta': 0.2, 'smooth_sensitivity': True}, r'--beta \(0.2\).*outside'),
])
def test_bad_flags_are_config_errors(votes_file, kwargs, match):
  path, _ = votes_file
  args = {'aggregator': 'gnmax', 'sigma2': 40.0, 'delta': 1e-5} | kwargs
  with pytest.raises(ConfigError, match=match):
    analyze.run(path, **args)


def test_check_accepts_any_integer_dtype():
  got = votes_lib.check(np.array([[3, 1], [0, 4]], dtype=np.uint8))
  assert got.dtype == np.int64 and got.tolist() == [[3, 1], [0, 4]]
