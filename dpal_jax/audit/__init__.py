"""Empirical privacy audit: canaries in one run, an ε lower bound beside every claimed ε.

  canaries   — the planted records (input-space training canaries, planted-score query canaries), coins
  scoring    — training canaries scored by gradient alignment with the released iterates
  statistics — scores → ε lower bound (Steinke, Nasr, Jagielski 2023, via jax_privacy.auditing)
  loop       — loop 'audit' (`loops.LOOPS`): the audit as a protocol run, writing audit.json

Run it with `python -m dpal_jax.audit --config=configs/audit.py [--workdir=DIR]`.
"""
