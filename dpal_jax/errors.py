"""Errors a user can act on: each names the field (or file) at fault and the fix."""


class ConfigError(ValueError):
  """A configuration value is invalid or infeasible; the message names the field and the fix."""


class DataError(ValueError):
  """A dataset is missing or malformed; the message names the files and how to provide them."""


class CheckpointError(ValueError):
  """A checkpoint or weights file is unreadable or inconsistent with the run."""


class BudgetExceededError(RuntimeError):
  """A step or query would spend more privacy than the plan allows; raised before spending."""
