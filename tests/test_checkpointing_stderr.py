"""After a failed checkpoint save, only the run's own lines reach stderr: what orbax's and tensorstore's
abandoned writers print later, straight to descriptor 2, is dropped (real processes)."""

import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent('''
    import os, sys
    from dpal_jax import checkpointing

    class Closable:
      def close(self):
        os.write(2, b"a writer's traceback while closing\\n")

    try:
      with checkpointing._orbax_errors_silenced(Closable()):
        os.write(2, b"orbax chatter during the save\\n")
        if sys.argv[1] == "fail":
          raise OSError(27, "File too large")
    except OSError:
      pass
    os.write(2, b"a late tensorstore traceback\\n")
    print("error: the run's one line", file=sys.stderr)
''')


def _stderr(outcome: str) -> str:
  done = subprocess.run([sys.executable, '-c', _SCRIPT, outcome], capture_output=True, text=True,
                        timeout=120, check=True)
  return done.stderr


def test_after_a_failed_save_only_the_runs_own_line_reaches_stderr():
  err = _stderr('fail')
  assert "error: the run's one line" in err
  for stray in ('orbax chatter', "a writer's traceback", 'a late tensorstore traceback'):
    assert stray not in err, err


def test_after_a_good_save_stderr_is_restored_and_the_held_output_replayed():
  err = _stderr('succeed')
  assert 'orbax chatter during the save' in err   # replayed after the save
  assert 'a late tensorstore traceback' in err and "error: the run's one line" in err
