"""Active learning: jitted query scores (`uncertainty`), diversity selection (`diversity`), and strategies
by name with the `select` entry point (`strategies`); the private top-k releases are in
`privacy.mechanisms`."""
