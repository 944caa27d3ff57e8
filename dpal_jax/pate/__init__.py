"""PATE (Papernot et al. 2017, 2018) in dpal_jax: teachers on disjoint partitions of the sensitive data,
a noisy vote, and a student that learns actively from public data (docs/pate.md).

`partition` (the partitions by privacy unit), `teachers` (n teachers as one stacked model, their votes),
`aggregators` (LNMax, GNMax, Confident- and Interactive-GNMax, each with its ledger event), `student`
(the student's training and evaluation), `loop` (loop 'pate' under the run protocol); the privacy
analysis of votes is `privacy.pate_rdp`, its command line `python -m dpal_jax.pate`.
"""
