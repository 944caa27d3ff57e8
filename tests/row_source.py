"""A pool array for tests that records which rows each read asked for."""

import numpy as np


class RecordingRows:
  """Wraps an array; `reads` holds, per read, the row numbers it returned (slices or index arrays)."""

  def __init__(self, array):
    self.array, self.reads = array, []
    self.shape, self.dtype = array.shape, array.dtype

  def __len__(self):
    return len(self.array)

  def __getitem__(self, rows):
    self.reads.append(np.arange(len(self.array))[rows].tolist())
    return self.array[rows]
