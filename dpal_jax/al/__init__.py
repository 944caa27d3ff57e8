"""Active learning: jitted query scores (`uncertainty`), diversity selection (`diversity`), private
top-k mechanisms (`select`), and strategies by name with the `query` entry point (`strategies`)."""
