"""Peer Study Learning (loop 'psl'): peer students, their study losses, the protected split (docs/psl.md)."""
