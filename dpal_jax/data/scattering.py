"""Wavelet scattering features (a ScatterNet): a fixed, data-independent transform of each image.

For an image x (one channel, H×W), with Morlet wavelets ψ_{j,θ} at scales j < J and L orientations θ,
and a Gaussian low-pass φ_J of width 0.8·2^J, the scattering coefficients up to order 2 are

  S0 x = x ⋆ φ_J,   S1 x = |x ⋆ ψ_{j1,θ1}| ⋆ φ_J,   S2 x = ||x ⋆ ψ_{j1,θ1}| ⋆ ψ_{j2,θ2}| ⋆ φ_J  (j1 < j2),

each sampled every 2^J pixels: 1 + J·L + L²·J(J−1)/2 channels of (H/2^J)×(W/2^J) values; J = 2, L = 8
turns a 28×28 digit into 81×7×7 (Mallat, "Group invariant scattering", 2012; Bruna & Mallat 2013). The
convolutions are products in the Fourier domain of the image reflect-padded by 2^J pixels a side, with
the filters defined on that padded grid (periodised Gaussians, the Morlet made zero-mean), in float32.
Orders 0 and 1 are computed at full resolution; the second-order modulus is taken on every 2nd pixel
(the wavelet output sampled exactly through its spectrum), as the standard fast algorithm does.

The features are then normalised per image: the channels in `groups` consecutive groups, each group to
zero mean and unit variance over its channels and pixels (a GroupNorm without parameters). Tramèr &
Boneh ("Differentially private learning needs better features (or much more data)", ICLR 2021) show
that DP-SGD on normalised scattering features beats end-to-end CNNs at small ε and n (docs/selection.md).

**Why it is private.** The filters are public constants (functions of J, L and the image size only) and
every output row is a function of its own input row only: nothing is fitted to, or estimated from, the
pool. Replacing one record changes one feature row, so any DP guarantee of a computation on the rows
holds unchanged for the same computation on the features (post-processing of each record by a fixed map).
"""

import functools

import numpy as np
from scipy import fft as sfft

from dpal_jax.errors import ConfigError


def _gabor(size: int, sigma: float, theta: float, xi: float, slant: float) -> np.ndarray:
  """A Gabor filter on a size×size grid centred at the origin, periodised over ±2 grid copies."""
  c, s = np.cos(theta), np.sin(theta)
  rot = np.array([[c, -s], [s, c]])
  curv = rot @ np.diag([1.0, slant ** 2]) @ rot.T / (2 * sigma ** 2)
  grid = np.arange(size, dtype=np.float64)
  out = np.zeros((size, size), np.complex128)
  for ex in range(-2, 3):
    for ey in range(-2, 3):
      xx, yy = np.meshgrid(grid + ex * size, grid + ey * size, indexing='ij')
      quad = curv[0, 0] * xx ** 2 + (curv[0, 1] + curv[1, 0]) * xx * yy + curv[1, 1] * yy ** 2
      out += np.exp(-quad + 1j * xi * (xx * c + yy * s))
  return out * slant / (2 * np.pi * sigma ** 2)


@functools.lru_cache(maxsize=8)
def filter_bank(size: int, J: int, L: int):
  """(φ̂, {(j, θ): ψ̂}) in the Fourier domain of a size×size grid: the low-pass and the Morlet wavelets.

  ψ_{j,θ} = Gabor(σ = 0.8·2^j, ξ = 3π/4 / 2^j, slant 4/L, angle θ = πl/L) minus the Gaussian envelope
  times the constant that gives it zero mean; φ_J = Gaussian of σ = 0.8·2^J. Public constants.
  """
  phi = np.real(np.fft.fft2(_gabor(size, 0.8 * 2 ** J, 0.0, 0.0, 1.0)))
  psi = {}
  for j in range(J):
    sigma, xi, slant = 0.8 * 2 ** j, 3 * np.pi / 4 / 2 ** j, 4.0 / L
    for l in range(L):
      theta = np.pi * l / L
      wave = _gabor(size, sigma, theta, xi, slant)
      envelope = _gabor(size, sigma, theta, 0.0, slant)
      psi[j, l] = np.fft.fft2(wave - envelope * (wave.sum() / envelope.sum()))
  return phi, psi


def num_channels(J: int, L: int) -> int:
  """1 + J·L + L²·J(J−1)/2: the channels of an order-2 scattering."""
  return 1 + J * L + L * L * J * (J - 1) // 2


def scatter(images: np.ndarray, J: int = 2, L: int = 8, groups: int = 27,
            block: int = 512) -> np.ndarray:
  """[N, H, W, 1] images -> [N, H/2^J, W/2^J, 1 + J·L + L²·J(J−1)/2] normalised scattering features.

  Args:
    images: one-channel images, H and W multiples of 2^J.
    J: the number of scales (the output is sampled every 2^J pixels).
    L: the number of orientations.
    groups: the per-image normalisation groups of consecutive channels (must divide the channel count);
      0: no normalisation.
    block: images transformed at once (bounds the peak memory).

  Returns:
    float32 features; row i depends on `images[i]` and the public constants only.
  """
  n, h, w, c = images.shape
  channels = num_channels(J, L)
  step = 2 ** J
  if c != 1 or h != w or h % step:
    raise ConfigError(f'dataset.features scattering needs square one-channel images whose side is a '
                      f'multiple of 2^J = {step}; got {h}×{w}×{c}: use another dataset.features')
  if groups and channels % groups:
    raise ConfigError(f'scattering: groups ({groups}) must divide the {channels} channels')
  out = np.empty((n, h // step, w // step, channels), np.float32)
  for start in range(0, n, block):
    out[start:start + block] = _scatter_block(images[start:start + block, :, :, 0], J, L, groups)
  return out


def _subsample(u_hat: np.ndarray, k: int) -> np.ndarray:
  """The spectrum of u[::k, ::k] from the spectrum of u (the mean of its k×k aliases): exact."""
  n, m = u_hat.shape[0], u_hat.shape[1] // k
  return u_hat.reshape(n, k, m, k, m).mean(axis=(1, 3))


def _scatter_block(x: np.ndarray, J: int, L: int, groups: int) -> np.ndarray:
  step = 2 ** J
  x = np.pad(x.astype(np.float32), ((0, 0), (step, step), (step, step)), mode='reflect')
  size = x.shape[1]
  phi, psi = filter_bank(size, J, L)
  phi, psi = phi.astype(np.float32), {k: v.astype(np.complex64) for k, v in psi.items()}
  phi_half = phi[np.ix_(*[np.fft.fftfreq(size // 2, 2 / size).astype(int) % size] * 2)]
  crop = slice(1, 1 + (size - 2 * step) // step)
  fft, ifft = functools.partial(sfft.fft2, workers=-1), functools.partial(sfft.ifft2, workers=-1)
  low = lambda u_hat, k: np.real(ifft(_subsample(u_hat, k)))[:, crop, crop]
  x_hat = fft(x)
  maps = [low(x_hat * phi, step)]
  for j1 in range(J):
    for l1 in range(L):
      u1_hat = fft(np.abs(ifft(x_hat * psi[j1, l1])))
      maps.append(low(u1_hat * phi, step))
      for j2 in range(j1 + 1, J):
        for l2 in range(L):
          u2 = np.abs(ifft(_subsample(u1_hat * psi[j2, l2], 2)))
          maps.append(low(fft(u2) * phi_half, step // 2))
  s = np.stack(maps, axis=-1)
  if groups:
    g = s.reshape(*s.shape[:3], groups, -1)
    mean = g.mean(axis=(1, 2, 4), keepdims=True)
    std = g.std(axis=(1, 2, 4), keepdims=True)
    s = ((g - mean) / (std + 1e-5)).reshape(s.shape)
  return s.astype(np.float32)
