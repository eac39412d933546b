"""Vectorised signal primitives for the pocket corpus: shaped noise, additive tones, envelopes.

All functions take a :class:`numpy.random.Generator` when they draw randomness and return
float64 arrays of ``n`` samples at ``rate`` Hz; none of them loops over samples.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import next_fast_len
from scipy.signal import lfilter


def band_noise(
    rng: np.random.Generator, n: int, rate: int, low: float, high: float, *, tilt: float = 0.0
) -> np.ndarray:
    """Gaussian noise band-limited to [low, high] Hz, spectrum ~ f^(-tilt/2) inside the band.

    The spectrum is drawn directly (complex Gaussian bins, one inverse FFT): ``tilt`` 1 gives
    pink, 2 brown noise. Output (n,) with unit RMS.
    """
    size = next_fast_len(n, real=True)  # an FFT size with small prime factors, then crop
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    gain = ((freqs >= low) & (freqs <= high)).astype(np.float32)
    if tilt:
        gain[1:] *= freqs[1:] ** (-tilt / 2)
        gain[0] = 0.0
    bins = freqs.size
    spectrum = np.empty(bins, dtype=np.complex64)  # float32 throughout: half the work
    spectrum.real = rng.standard_normal(bins, dtype=np.float32)
    spectrum.imag = rng.standard_normal(bins, dtype=np.float32)
    out = np.fft.irfft(spectrum * gain, size)[:n].astype(np.float64)
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)


CONTROL_RATE = 200
"""Rate (Hz) at which slow control curves are computed before linear interpolation to audio."""


def smooth_random(rng: np.random.Generator, n: int, rate: int, hz: float) -> np.ndarray:
    """A smooth random curve in [0, 1] changing about ``hz`` times a second: (n,).

    Random knots ``hz`` apart are joined by half-cosine segments at :data:`CONTROL_RATE`,
    then linearly interpolated to the audio rate.
    """
    seconds = n / rate
    knots = max(int(np.ceil(seconds * hz)) + 2, 2)
    values = rng.random(knots)
    x = np.linspace(0, (knots - 1) * 0.999, max(int(seconds * max(CONTROL_RATE, 4 * hz)), 2))
    index = np.floor(x).astype(int)
    frac = (1 - np.cos(np.pi * (x - index))) / 2
    control = values[index] + (values[index + 1] - values[index]) * frac
    return np.interp(np.linspace(0, x.size - 1, n), np.arange(x.size), control)


def additive_tone(
    rng: np.random.Generator, f0_track: np.ndarray, rate: int, ratios: np.ndarray, amps: np.ndarray
) -> np.ndarray:
    """Sum of partials ``amps[k] * sin(ratios[k] * phase)``: (n,), phase = integral of f0.

    ``f0_track`` (n,) is the instantaneous fundamental in Hz; partials that would pass 0.45 *
    ``rate`` anywhere are dropped (no aliasing). Integer ratios (harmonic tones) use the
    Chebyshev recursion sin((k+1)x) = 2 cos(x) sin(kx) - sin((k-1)x): one multiply-add per
    partial and sample instead of a sine; other ratios get a random start phase each.
    """
    ratios, amps = np.asarray(ratios, dtype=float), np.asarray(amps, dtype=float)
    keep = ratios * f0_track.max() < 0.45 * rate
    ratios, amps = ratios[keep], amps[keep]
    phase = np.mod(2 * np.pi * np.cumsum(f0_track) / rate, 2 * np.pi)  # float64 then wrapped
    out = np.zeros(phase.size)
    if ratios.size == 0:
        return out
    if np.all(ratios == np.round(ratios)):
        weights = dict(zip(ratios.astype(int).tolist(), amps.tolist(), strict=True))
        phase32 = phase.astype(np.float32)  # the recursion is accurate enough in float32
        previous, current = np.zeros_like(phase32), np.sin(phase32)
        twice_cos = 2 * np.cos(phase32)
        for k in range(1, max(weights) + 1):
            if k in weights:
                out += weights[k] * current
            previous, current = current, twice_cos * current - previous
        return out
    offsets = rng.uniform(0, 2 * np.pi, ratios.size)
    for ratio, amp, offset in zip(ratios, amps, offsets, strict=True):
        out += amp * np.sin(ratio * phase + offset)
    return out


def pulse_envelope(
    rng: np.random.Generator,
    n: int,
    rate: int,
    pulses_per_s: float,
    decay_s: float,
    *,
    jitter: float = 0.4,
) -> np.ndarray:
    """A train of exponentially decaying pulses with random spacing and heights: (n,)."""
    mean_gap = rate / pulses_per_s
    gaps = mean_gap * rng.uniform(1 - jitter, 1 + jitter, int(n / mean_gap / (1 - jitter)) + 2)
    onsets = (rng.uniform(0, 0.05) * rate + np.concatenate([[0.0], np.cumsum(gaps)])).astype(int)
    onsets = onsets[onsets < n]
    impulses = np.zeros(n)
    impulses[onsets] = rng.uniform(0.5, 1.0, onsets.size)
    decay = np.exp(-1.0 / max(decay_s * rate, 1.0))
    env = lfilter([1.0], [1.0, -decay], impulses)
    return env / (env.max() + 1e-12)


def ramp_envelope(n: int, rate: int, attack_s: float, release_s: float) -> np.ndarray:
    """Linear fade-in over ``attack_s`` and fade-out over ``release_s``: (n,) in [0, 1]."""
    t = np.arange(n) / rate
    attack = np.clip(t / max(attack_s, 1e-4), 0, 1)
    release = np.clip((t[-1] - t) / max(release_s, 1e-4), 0, 1)
    return attack * release


def decay_envelope(n: int, rate: int, decay_s: float, *, attack_s: float = 0.004) -> np.ndarray:
    """Fast attack then exponential decay with time constant ``decay_s``: (n,)."""
    t = np.arange(n) / rate
    return np.clip(t / attack_s, 0, 1) * np.exp(-t / decay_s)
