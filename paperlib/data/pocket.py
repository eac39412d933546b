"""The pocket corpus: synthetic stand-ins for FSDKaggle2018 and TAU 2019, in their layouts.

Nothing is downloaded. :func:`write_pocket_corpus` synthesises, from a seed:

* an FSDKaggle2018-layout folder: ``train_post_competition.csv`` (``fname,label,
  manually_verified,freesound_id,license``) and ``audio_train/<8 hex digits>.wav``, 44.1 kHz
  16-bit mono (FSDKaggle2018's format), 0.3-30 s, about a quarter of
  each class marked ``manually_verified = 0``;
* a TAU2019-layout folder: TAB-separated ``meta.csv`` (``filename,scene_label,identifier,
  source_label``) and ``audio/<scene>-<city>-<location>-<segment>-a.wav``, exactly 10 s,
  32 kHz 16-bit mono (:data:`POCKET_BACKGROUND_FORMAT`: the rate and channel count the
  rendering uses, so a background is stored no larger than the pipeline needs it; TAU's own
  48 kHz stereo 24-bit would be three times as large). The folder declares that format in
  :data:`~paperlib.data.sources.SOURCE_FORMAT_FILE`, which the source check then expects.

Each of the 41 classes has one *stand-in*: a small recipe (tone and/or band noise, envelope,
modulation) with per-clip random pitch, duration, envelope, brightness and noise, so classes
are learnable but overlap (e.g. cello / double bass / violin share pitch ranges). They are not
recordings of the real sounds: :data:`STAND_INS` and :data:`SCENE_DESCRIPTIONS` say in plain
words what each one sounds like (the book renders them as a table). Because the files keep the
real layouts, the readers and the recipe run on them unchanged.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr

from paperlib import atomic
from paperlib.data import synth
from paperlib.data.audio import (
    SAMPLE_RATE,
    ensure_writable_dir,
    resample,
    to_mono,
    wav_bytes,
    write_wav_atomic,
)
from paperlib.data.classes import CLASSES, SCENES
from paperlib.data.parallel import imap
from paperlib.data.sources import (
    FSD_AUDIO_DIR,
    FSD_CSV_NAMES,
    FSD_RATE,
    SOURCE_FORMAT_FILE,
    TAU_COLUMNS,
    TAU_META,
    TAU_RATE,
)

UNVERIFIED_FRACTION = 0.25
"""Share of each class's pocket clips marked ``manually_verified = 0``."""
CITIES: tuple[str, ...] = (
    "barcelona",
    "helsinki",
    "lisbon",
    "london",
    "lyon",
    "milan",
    "paris",
    "prague",
    "stockholm",
    "vienna",
)
LICENSES: tuple[str, ...] = ("Creative Commons 0", "Attribution", "Attribution-NonCommercial")


@dataclass(frozen=True)
class StandIn:
    """Recipe of one synthetic event class (ranges are drawn per clip).

    A clip is ``envelope * modulation * (tone + noise_gain * band_noise)``: the tone has
    fundamental ``f0`` (Hz, log-uniform) and partials at integer multiples (or ``ratios`` for
    bell-like sounds) with amplitude ``k ** -slope``; the pitch moves by ``glide`` semitones over
    the clip (``arch``: up then down) plus a ``vibrato`` (semitones, ~5.5 Hz). ``envelope`` is
    ``sustain`` (fades), ``decay`` (struck, time constant ``decay_s``) or ``pulses``
    (``pulse_rate`` hits/s, each decaying over ``decay_s``). ``mod_hz``/``mod_depth`` add a
    sine (or random, ``mod_random``) amplitude modulation.
    """

    label: str
    description: str
    f0: tuple[float, float] = (0.0, 0.0)
    partials: int = 0
    slope: float = 1.0
    odd_only: bool = False
    ratios: tuple[float, ...] = ()
    vibrato: float = 0.0
    glide: float = 0.0
    arch: bool = False
    noise_gain: float = 0.0
    band: tuple[float, float] = (0.0, 0.0)
    envelope: str = "sustain"
    decay_s: tuple[float, float] = (0.3, 0.8)
    pulse_rate: tuple[float, float] = (2.0, 5.0)
    mod_hz: tuple[float, float] = (0.0, 0.0)
    mod_depth: float = 0.0
    mod_random: bool = False
    duration: tuple[float, float] = (0.5, 3.0)


S = StandIn
STAND_INS: tuple[StandIn, ...] = (
    S("Acoustic_guitar", "plucked harmonic string, bright attack, fast exponential decay", f0=(82, 660), partials=12, slope=1.3, envelope="decay", decay_s=(0.3, 1.0), duration=(0.8, 3.0)),
    S("Applause", "dense random hand-clap clicks of band noise (0.8-9 kHz)", noise_gain=1, band=(800, 9000), envelope="pulses", pulse_rate=(40, 120), decay_s=(0.004, 0.012), duration=(2, 8)),
    S("Bark", "short voiced bursts with a falling pitch and a noisy rasp", f0=(300, 900), partials=10, slope=0.8, glide=-3, noise_gain=0.3, band=(500, 3000), envelope="pulses", pulse_rate=(1.5, 4), decay_s=(0.06, 0.15), duration=(0.5, 3)),
    S("Bass_drum", "low thumps: a sine that drops in pitch, with a little low noise", f0=(45, 90), partials=2, slope=2, glide=-7, noise_gain=0.1, band=(30, 300), envelope="pulses", pulse_rate=(1, 3), decay_s=(0.12, 0.35), duration=(0.4, 3)),
    S("Burping_or_eructation", "low rough voiced sound with a fast flutter", f0=(60, 140), partials=20, slope=0.7, noise_gain=0.4, band=(100, 1500), mod_hz=(20, 40), mod_depth=0.8, duration=(0.4, 1.5)),
    S("Bus", "engine rumble: low harmonic drone that drifts, plus broadband noise", f0=(25, 60), partials=25, slope=0.6, glide=3, noise_gain=0.8, band=(60, 800), duration=(2, 8)),
    S("Cello", "bowed low string: rich harmonics, gentle vibrato, bow noise", f0=(65, 520), partials=14, slope=1.0, vibrato=0.25, noise_gain=0.03, band=(1000, 4000), duration=(1, 4)),
    S("Chime", "bell-like inharmonic partials (1, 2, 3.01, 4.17, 5.43) ringing for seconds", f0=(500, 1500), ratios=(1, 2.0, 3.01, 4.17, 5.43), slope=1.2, envelope="decay", decay_s=(1, 3), duration=(1.5, 4)),
    S("Clarinet", "hollow woodwind: odd harmonics only, steady", f0=(150, 900), partials=9, slope=0.8, odd_only=True, vibrato=0.05, duration=(0.8, 4)),
    S("Computer_keyboard", "irregular light clicks of mid-high band noise", noise_gain=1, band=(1500, 6000), envelope="pulses", pulse_rate=(6, 12), decay_s=(0.01, 0.03), duration=(1, 5)),
    S("Cough", "one to three explosive noise bursts (0.3-3.5 kHz)", noise_gain=1, band=(300, 3500), envelope="pulses", pulse_rate=(1.5, 3), decay_s=(0.08, 0.2), duration=(0.4, 2)),
    S("Cowbell", "two inharmonic partials (1, 1.48) struck a few times, short decay", f0=(540, 820), ratios=(1, 1.48), slope=0.5, envelope="pulses", pulse_rate=(2, 5), decay_s=(0.05, 0.15), duration=(0.3, 2)),
    S("Double_bass", "very low plucked string, slow decay", f0=(41, 250), partials=10, slope=1.4, envelope="decay", decay_s=(0.5, 1.5), duration=(0.8, 3)),
    S("Drawer_open_or_close", "rattling low-mid noise slide that dies away", noise_gain=1, band=(150, 2500), mod_hz=(8, 16), mod_depth=0.5, mod_random=True, envelope="decay", decay_s=(0.3, 0.8), duration=(0.5, 2)),
    S("Electric_piano", "soft mellow harmonic tone with a struck decay and slow tremolo", f0=(110, 880), partials=6, slope=2.0, mod_hz=(3, 6), mod_depth=0.3, envelope="decay", decay_s=(0.4, 1.2), duration=(1, 4)),
    S("Fart", "low buzzy tone with a strong flutter and falling pitch", f0=(70, 180), partials=18, slope=0.6, glide=-4, noise_gain=0.3, band=(80, 800), mod_hz=(25, 45), mod_depth=0.9, duration=(0.3, 1.5)),
    S("Finger_snapping", "sharp single clicks of high band noise", noise_gain=1, band=(1500, 7000), envelope="pulses", pulse_rate=(1, 2.5), decay_s=(0.01, 0.03), duration=(0.3, 2)),
    S("Fireworks", "booming broadband bursts with a crackling tail", noise_gain=1, band=(100, 6000), envelope="pulses", pulse_rate=(0.7, 3), decay_s=(0.2, 0.6), mod_hz=(40, 90), mod_depth=0.7, mod_random=True, duration=(1, 6)),
    S("Flute", "pure tone with few harmonics, vibrato and breath noise", f0=(260, 1800), partials=4, slope=2.2, vibrato=0.3, noise_gain=0.15, band=(2000, 8000), duration=(0.8, 4)),
    S("Glockenspiel", "high metallic bars: inharmonic (1, 2.76, 5.40), ringing decay", f0=(780, 3100), ratios=(1, 2.76, 5.40), slope=1.5, envelope="decay", decay_s=(0.3, 1.0), duration=(0.5, 2.5)),
    S("Gong", "low inharmonic cluster with a long swelling decay", f0=(70, 220), ratios=(1, 1.47, 1.93, 2.54, 3.16, 4.1), slope=0.6, noise_gain=0.05, band=(50, 1000), envelope="decay", decay_s=(1.5, 4), duration=(2, 6)),
    S("Gunshot_or_gunfire", "loud broadband cracks, single or in bursts", noise_gain=1, band=(60, 8000), envelope="pulses", pulse_rate=(0.7, 10), decay_s=(0.08, 0.3), duration=(0.5, 3)),
    S("Harmonica", "reedy bright harmonic tone with light vibrato", f0=(260, 1400), partials=10, slope=0.6, vibrato=0.15, duration=(0.8, 4)),
    S("Hi-hat", "very high short noise ticks (6-16 kHz)", noise_gain=1, band=(6000, 16000), envelope="pulses", pulse_rate=(4, 10), decay_s=(0.02, 0.08), duration=(0.5, 3)),
    S("Keys_jangling", "many tiny metallic clicks: high inharmonic partials and hiss", f0=(2500, 6000), ratios=(1, 1.33, 1.92, 2.41), slope=0.5, noise_gain=0.7, band=(4000, 14000), envelope="pulses", pulse_rate=(15, 40), decay_s=(0.01, 0.04), duration=(0.8, 3)),
    S("Knock", "a few dull low knocks (0.1-1.2 kHz)", noise_gain=1, band=(100, 1200), envelope="pulses", pulse_rate=(3, 7), decay_s=(0.015, 0.04), duration=(0.4, 2)),
    S("Laughter", "rhythmic 'ha-ha' voiced bursts with breathy noise", f0=(180, 400), partials=10, slope=0.9, noise_gain=0.4, band=(500, 3500), envelope="pulses", pulse_rate=(4, 7), decay_s=(0.05, 0.1), duration=(1, 4)),
    S("Meow", "voiced harmonic call whose pitch rises then falls", f0=(400, 900), partials=8, slope=1.0, glide=5, arch=True, vibrato=0.1, duration=(0.5, 1.5)),
    S("Microwave_oven", "steady mains hum with fan noise", f0=(50, 60), partials=20, slope=0.8, noise_gain=0.5, band=(200, 2000), duration=(2, 6)),
    S("Oboe", "nasal woodwind: many strong harmonics, vibrato", f0=(233, 1400), partials=12, slope=0.5, vibrato=0.2, duration=(0.8, 4)),
    S("Saxophone", "breathy reed tone with vibrato", f0=(110, 880), partials=14, slope=0.7, vibrato=0.3, noise_gain=0.05, band=(1500, 6000), duration=(0.8, 4)),
    S("Scissors", "two to five crisp snips of high band noise", noise_gain=1, band=(2000, 9000), envelope="pulses", pulse_rate=(2, 5), decay_s=(0.03, 0.08), duration=(0.4, 2)),
    S("Shatter", "a burst of dense bright clicks that dies away", noise_gain=1, band=(1500, 15000), envelope="pulses", pulse_rate=(25, 60), decay_s=(0.01, 0.04), mod_hz=(1, 3), mod_depth=0.8, mod_random=True, duration=(0.5, 2)),
    S("Snare_drum", "snappy noise hits (1-8 kHz) over a short low tone", f0=(150, 250), partials=2, slope=1, noise_gain=2, band=(1000, 8000), envelope="pulses", pulse_rate=(2, 8), decay_s=(0.05, 0.15), duration=(0.4, 3)),
    S("Squeak", "short high whistle that glides up and down", f0=(1500, 4000), partials=3, slope=1.5, glide=6, arch=True, duration=(0.2, 1.0)),
    S("Tambourine", "shaken jingles: high inharmonic partials and hiss in pulses", f0=(3000, 6000), ratios=(1, 1.41, 1.73), slope=0.5, noise_gain=1, band=(5000, 14000), envelope="pulses", pulse_rate=(3, 8), decay_s=(0.05, 0.15), duration=(0.5, 3)),
    S("Tearing", "crackly mid-band noise with a fast random flutter", noise_gain=1, band=(500, 6000), mod_hz=(30, 80), mod_depth=0.9, mod_random=True, duration=(0.5, 2.5)),
    S("Telephone", "two-tone ringing trill (fast on/off of a pure tone pair)", f0=(380, 520), ratios=(1, 1.1), slope=0, mod_hz=(15, 25), mod_depth=1.0, duration=(1, 4)),
    S("Trumpet", "brassy tone: strong high harmonics, quick attack", f0=(165, 990), partials=16, slope=0.4, vibrato=0.1, duration=(0.8, 4)),
    S("Violin_or_fiddle", "bowed high string: bright harmonics, wide vibrato", f0=(196, 1600), partials=14, slope=0.9, vibrato=0.45, noise_gain=0.02, band=(2000, 6000), duration=(0.8, 4)),
    S("Writing", "scratchy high band noise in pen strokes (slow random modulation)", noise_gain=1, band=(2000, 7000), mod_hz=(3, 8), mod_depth=0.8, mod_random=True, duration=(1, 5)),
)  # fmt: skip
del S

SCENE_DESCRIPTIONS: dict[str, str] = {
    "airport": "ventilation hiss, crowd babble, a chime-and-voice announcement, distant jet rumble",
    "shopping_mall": "dense babble, soft background chords, footsteps, ventilation",
    "metro_station": "rumble, babble, an announcement, a train passing by, rail clacks",
    "street_pedestrian": "a few voices, footsteps, one or two cars passing, birds",
    "public_square": "crowd babble, birds, distant traffic, gusts of wind",
    "street_traffic": "many vehicles passing (rising and falling engine noise) over road rumble",
    "tram": "electric motor hum, rail clacks, rumble and a bell",
    "bus": "drifting diesel engine harmonics, rumble and a couple of voices",
    "metro": "loud rumble, rail clacks, motor hum and wheel squeal glides",
    "park": "wind gusts, bird chirps and a distant voice",
}
"""What each synthetic background scene is made of (10 scenes, all changing over time)."""


def stand_in_table() -> pd.DataFrame:
    """Plain-language description of every pocket stand-in: columns ``class``, ``kind``,
    ``duration_s``, ``description`` (41 rows, class order)."""
    rows = []
    for spec in STAND_INS:
        kind = ("bell-like tone" if spec.ratios else "harmonic tone") if spec.f0[1] else "noise"
        if spec.f0[1] and spec.noise_gain >= 0.3:
            kind += " + noise"
        rows.append(
            {
                "class": spec.label,
                "kind": f"{kind}, {spec.envelope}",
                "duration_s": f"{spec.duration[0]:g}-{spec.duration[1]:g}",
                "description": spec.description,
            }
        )
    return pd.DataFrame(rows)


def scene_table() -> pd.DataFrame:
    """Description of the 10 synthetic background scenes: columns ``scene``, ``description``."""
    return pd.DataFrame(
        {"scene": list(SCENE_DESCRIPTIONS), "description": list(SCENE_DESCRIPTIONS.values())}
    )


# ----------------------------------------------------------------------------- events
def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def synth_event(spec: StandIn, rng: np.random.Generator, rate: int = FSD_RATE) -> np.ndarray:
    """One random clip of a stand-in: (n,) float32 with peak in [0.3, 0.9], 0.3-30 s long."""
    duration = float(np.clip(rng.uniform(*spec.duration) * rng.uniform(0.8, 1.2), 0.3, 30.0))
    n = int(duration * rate)
    t = np.arange(n) / rate
    signal = np.zeros(n)
    if spec.f0[1]:
        f0 = _loguniform(rng, *spec.f0)
        shape = np.sin(np.pi * t / t[-1]) if spec.arch else t / t[-1]
        glide = spec.glide * rng.uniform(0.5, 1.5)
        vibrato = (
            spec.vibrato * rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t)
        )
        f0_track = f0 * 2.0 ** ((glide * shape + vibrato) / 12)
        if spec.ratios:
            ratios = np.asarray(spec.ratios) * rng.uniform(0.99, 1.01, len(spec.ratios))
        else:
            step = 2 if spec.odd_only else 1
            ratios = np.arange(1, step * spec.partials + 1, step, dtype=float)
        slope = spec.slope * rng.uniform(0.75, 1.3)
        amps = ratios**-slope * rng.uniform(0.6, 1.4, ratios.size)
        signal += synth.additive_tone(rng, f0_track, rate, ratios, amps) / np.sqrt(np.sum(amps**2))
    if spec.noise_gain:
        shift = 2.0 ** rng.uniform(-0.3, 0.3)
        low, high = spec.band[0] * shift, min(spec.band[1] * shift, 0.48 * rate)
        gain = spec.noise_gain * rng.uniform(0.6, 1.6)
        signal += gain * 0.7 * synth.band_noise(rng, n, rate, low, high)
    if spec.envelope == "sustain":
        envelope = synth.ramp_envelope(n, rate, rng.uniform(0.01, 0.1), rng.uniform(0.05, 0.3))
    elif spec.envelope == "decay":
        envelope = synth.decay_envelope(n, rate, rng.uniform(*spec.decay_s))
    else:
        envelope = synth.pulse_envelope(
            rng, n, rate, rng.uniform(*spec.pulse_rate), rng.uniform(*spec.decay_s)
        )
    if spec.mod_depth:
        hz = rng.uniform(*spec.mod_hz)
        wave = (
            synth.smooth_random(rng, n, rate, hz)
            if spec.mod_random
            else 0.5 + 0.5 * np.sin(2 * np.pi * hz * t)
        )
        envelope = envelope * (1 - spec.mod_depth * wave)
    clip = signal * envelope
    clip += 10 ** rng.uniform(-3.5, -2.5) * rng.standard_normal(n) * np.abs(clip).max()
    clip *= rng.uniform(0.3, 0.9) / (np.abs(clip).max() + 1e-12)
    return clip.astype(np.float32)


# ----------------------------------------------------------------------- backgrounds
def _babble(rng: np.random.Generator, n: int, rate: int, voices: int) -> np.ndarray:
    speech = synth.band_noise(rng, n, rate, 200, 3500, tilt=1)
    t = np.arange(n) / rate
    out = np.zeros(n)
    for _ in range(voices):
        syllables = synth.smooth_random(rng, n, rate, rng.uniform(3, 6)) ** 2
        turns = synth.smooth_random(rng, n, rate, 0.3) > 0.35
        pitch = rng.uniform(100, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
        voiced = synth.additive_tone(rng, pitch, rate, np.arange(1, 6.0), np.arange(1, 6.0) ** -1.2)
        out += (np.roll(speech, rng.integers(n)) + 0.5 * voiced) * syllables * turns
    return out / max(voices, 1)


def _passing(
    rng: np.random.Generator, n: int, rate: int, count: int, width: float = 2.0
) -> np.ndarray:
    t = np.arange(n) / rate
    noise = synth.band_noise(rng, n, rate, 40, 2500, tilt=1.5)
    out = np.zeros(n)
    for _ in range(count):
        centre, w = rng.uniform(-1, n / rate + 1), width * rng.uniform(0.6, 1.6)
        bump = np.exp(-0.5 * ((t - centre) / w) ** 2)
        engine = rng.uniform(30, 80) * 2 ** (-np.tanh((t - centre) / w) * 0.15)  # Doppler-like fall
        tone = synth.additive_tone(rng, engine, rate, np.arange(1, 7.0), np.arange(1, 7.0) ** -1.0)
        out += bump * (np.roll(noise, rng.integers(n)) + 0.3 * tone)
    return out


def _announcement(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    start = rng.uniform(0, 6.5)
    notes = rng.choice([523.25, 659.25, 783.99, 587.33], size=rng.integers(2, 4))
    out = np.zeros(n)
    for i, freq in enumerate(notes):
        s = int((start + 0.5 * i) * rate)
        m = min(int(1.2 * rate), n - s)
        if m <= 0:
            break
        out[s : s + m] += synth.additive_tone(
            rng, np.full(m, freq), rate, np.array([1.0, 2, 3]), np.array([1.0, 0.3, 0.1])
        ) * synth.decay_envelope(m, rate, 0.4)
    voice_start = int(min(start + 0.5 * len(notes) + 0.3, 9.0) * rate)
    voice = _babble(rng, n - voice_start, rate, 1) if voice_start < n - rate // 10 else 0
    if voice_start < n - rate // 10:
        out[voice_start:] += 0.8 * voice
    return out


def _clacks(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    env = synth.pulse_envelope(rng, n, rate, rng.uniform(1.0, 2.5), 0.03, jitter=0.1)
    return env * synth.band_noise(rng, n, rate, 200, 3000)


def _birds(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    t = np.arange(n) / rate
    sweep = 2500 + 1500 * np.sin(2 * np.pi * rng.uniform(8, 20) * t)
    tone = synth.additive_tone(rng, sweep, rate, np.array([1.0, 2.0]), np.array([1.0, 0.2]))
    return tone * synth.pulse_envelope(rng, n, rate, rng.uniform(1, 4), 0.06) ** 2


def _hum(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    drift = rng.uniform(30, 100) * (1 + 0.15 * (synth.smooth_random(rng, n, rate, 0.2) - 0.5))
    return synth.additive_tone(rng, drift, rate, np.arange(1, 13.0), np.arange(1, 13.0) ** -0.8)


def _music(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    out = np.zeros(n)
    chord_len = int(rng.uniform(1.0, 2.0) * rate)
    for s in range(0, n, chord_len):
        m = min(chord_len, n - s)
        root = 220 * 2 ** (rng.integers(0, 12) / 12)
        for ratio in (1.0, 1.26, 1.5):
            out[s : s + m] += synth.additive_tone(
                rng, np.full(m, root * ratio), rate, np.arange(1, 5.0), np.arange(1, 5.0) ** -1.5
            )
        out[s : s + m] *= synth.ramp_envelope(m, rate, 0.05, 0.2)
    return out / 3


def _squeal(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    glide = 2000 * 2 ** (synth.smooth_random(rng, n, rate, 0.5) - 0.5)
    gate = synth.smooth_random(rng, n, rate, 0.4) > 0.6
    return synth.additive_tone(rng, glide, rate, np.array([1.0, 2.1]), np.array([1, 0.3])) * gate


def _noise(low: float, high: float, tilt: float, wobble: float):
    def make(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
        level = 1 - wobble + wobble * synth.smooth_random(rng, n, rate, rng.uniform(0.1, 0.5))
        return synth.band_noise(rng, n, rate, low, high, tilt=tilt) * level

    return make


RUMBLE, VENT, WIND = _noise(20, 400, 2, 0.4), _noise(50, 12000, 1, 0.1), _noise(20, 1500, 2, 0.9)
# scene -> [(component, relative level in dB)]
SCENE_RECIPES = {
    "airport": [(VENT, 0), (lambda r, n, s: _babble(r, n, s, 4), -2), (_announcement, 0), (RUMBLE, -6)],
    "shopping_mall": [(lambda r, n, s: _babble(r, n, s, 6), 0), (_music, -8), (_clacks, -12), (VENT, -8)],
    "metro_station": [(RUMBLE, 0), (lambda r, n, s: _babble(r, n, s, 3), -3), (_announcement, -2), (lambda r, n, s: _passing(r, n, s, 1, 3.0), 0), (_clacks, -8)],
    "street_pedestrian": [(lambda r, n, s: _babble(r, n, s, 2), 0), (_clacks, -6), (lambda r, n, s: _passing(r, n, s, 2), -3), (_birds, -12)],
    "public_square": [(lambda r, n, s: _babble(r, n, s, 5), 0), (_birds, -8), (lambda r, n, s: _passing(r, n, s, 3, 3.0), -8), (WIND, -6)],
    "street_traffic": [(lambda r, n, s: _passing(r, n, s, 6), 0), (RUMBLE, -3)],
    "tram": [(_hum, -3), (_clacks, -3), (RUMBLE, 0), (_announcement, -8)],
    "bus": [(_hum, 0), (RUMBLE, -2), (lambda r, n, s: _babble(r, n, s, 2), -6)],
    "metro": [(RUMBLE, 0), (_clacks, -4), (_hum, -6), (_squeal, -10)],
    "park": [(WIND, 0), (_birds, -2), (lambda r, n, s: _babble(r, n, s, 1), -12)],
}  # fmt: skip


SYNTH_RATE = 16_000
"""Backgrounds are composed at 16 kHz (cheap), resampled to the output rate with soxr, then
given a full-band 'air' noise layer per channel at that rate."""
POCKET_BACKGROUND_FORMAT: tuple[int, int] = (SAMPLE_RATE, 1)
"""(rate, channels) of the pocket backgrounds: 32 kHz mono, what the rendering uses (TAU's
48 kHz stereo would be averaged and resampled to this anyway); declared in the TAU folder's
:data:`~paperlib.data.sources.SOURCE_FORMAT_FILE`."""
POCKET_SUBTYPE = "PCM_16"
"""Sample format of the pocket WAVs (WAV, as the real datasets: the file names, and so the
plan, stay those of the earlier pocket corpus)."""


def synth_background(
    scene: str, rng: np.random.Generator, *, rate: int = TAU_RATE, seconds: float = 10.0
) -> np.ndarray:
    """One 2-channel background segment of ``scene``: (seconds * rate, 2) float32, peak <= 0.9."""
    n_low = int(seconds * SYNTH_RATE)
    mono = np.zeros(n_low)
    for make, level_db in SCENE_RECIPES[scene]:
        part = make(rng, n_low, SYNTH_RATE)
        part_rms = np.sqrt(np.mean(part**2)) + 1e-12
        mono += part / part_rms * 10 ** ((level_db + rng.uniform(-3, 3)) / 20)
    n = int(seconds * rate)
    mono = soxr.resample(mono, SYNTH_RATE, rate)[:n]
    delay = int(rng.integers(1, 24))
    air = 10 ** (rng.uniform(-22, -14) / 20) * synth.band_noise(
        rng, 2 * n, rate, 100, 20000, tilt=1
    )
    stereo = np.stack([mono + air[:n], np.roll(mono, delay) + air[n:]], axis=1)
    stereo *= 10 ** (rng.uniform(-28, -20) / 20) / np.sqrt(np.mean(stereo**2))
    peak = np.abs(stereo).max()
    if peak > 0.9:
        stereo *= 0.9 / peak
    return stereo.astype(np.float32)


# ------------------------------------------------------------------------ writer
def _event_task(task: tuple[str, int, int, str]) -> None:
    path, seed, class_index, _ = task
    rng = np.random.default_rng([seed, 1, class_index, int(Path(path).stem, 16)])
    audio = synth_event(STAND_INS[class_index], rng)
    write_wav_atomic(Path(path), audio, FSD_RATE, subtype=POCKET_SUBTYPE)


def _background_task(task: tuple[str, int, int, str]) -> None:
    path, seed, index, scene = task
    rng = np.random.default_rng([seed, 2, index])
    write_wav_atomic(Path(path), pocket_background(scene, rng), SAMPLE_RATE, subtype=POCKET_SUBTYPE)


def pocket_background(scene: str, rng: np.random.Generator) -> np.ndarray:
    """A pocket background as the rendering reads it: (320000,) float32 at 32 kHz mono.

    The TAU-format segment (:func:`synth_background`, 48 kHz stereo, rounded to 24 bits as
    the first pocket corpus stored it), then what the rendering does to every background
    (channels averaged, resampled to 32 kHz, :func:`paperlib.data.audio.load_mono`), done once
    here; stored at 16 bits, so the mixtures differ from those of that corpus only by the
    16-bit rounding.
    """
    stereo = synth_background(scene, rng)
    stored, rate = sf.read(io.BytesIO(wav_bytes(stereo, TAU_RATE, subtype="PCM_24")),
                           dtype="float32", always_2d=True)  # fmt: skip
    return resample(to_mono(stored), rate, SAMPLE_RATE)[: round(10.0 * SAMPLE_RATE)]


def _run(tasks: list, fn, workers: int, progress: bool, what: str) -> None:
    for _ in imap(fn, tasks, workers=workers, ordered=False, desc=what, progress=progress):
        pass


def _clear_wavs(folder: Path, keep: Iterable[str]) -> None:
    atomic.clean_orphans(folder)
    keep = set(keep)
    for path in folder.glob("*.wav"):
        if path.name not in keep:
            path.unlink()


def write_pocket_corpus(
    fsd_dir: Path,
    tau_dir: Path,
    *,
    events_per_class: int,
    backgrounds: int,
    seed: int,
    workers: int = 0,
    progress: bool = True,
) -> None:
    """Synthesise the pocket corpus into ``fsd_dir`` and ``tau_dir`` (real layouts and formats).

    The metadata files are written last, so an interrupted run leaves no CSV that lists
    missing audio; WAVs from an earlier corpus that the new one does not list are removed.

    Raises:
        OutputFolderError: a folder that cannot be written.
        ValueError: ``events_per_class`` or ``backgrounds`` below 1.
    """
    if events_per_class < 1 or backgrounds < 1:
        raise ValueError(
            f"events_per_class={events_per_class} and backgrounds={backgrounds}: "
            "expected at least 1 each"
        )
    fsd_dir, tau_dir = Path(fsd_dir), Path(tau_dir)
    event_dir = ensure_writable_dir(fsd_dir / FSD_AUDIO_DIR)
    bg_dir = ensure_writable_dir(tau_dir / "audio")
    rng = np.random.default_rng([seed, 0])

    names = rng.choice(2**32, size=len(CLASSES) * events_per_class, replace=False)
    rows, tasks = [], []
    for c, label in enumerate(CLASSES):
        unverified = set(
            rng.choice(
                events_per_class, int(UNVERIFIED_FRACTION * events_per_class + 0.5), replace=False
            ).tolist()
        )
        for i in range(events_per_class):
            fname = f"{names[c * events_per_class + i]:08x}.wav"
            rows.append(
                {
                    "fname": fname,
                    "label": label,
                    "manually_verified": int(i not in unverified),
                    "freesound_id": int(rng.integers(1000, 400000)),
                    "license": LICENSES[int(rng.integers(len(LICENSES)))],
                }
            )
            tasks.append((str(event_dir / fname), seed, c, label))
    events = pd.DataFrame(rows).sort_values("fname", kind="stable")

    bg_rows, bg_tasks, segments = [], [], {}
    for i in range(backgrounds):
        scene = SCENES[i % len(SCENES)]
        city = CITIES[int(rng.integers(len(CITIES)))]
        location = segments.setdefault((scene, city), [0, 0])
        if location[1] == 3:  # three segments per recording location, as in TAU
            location[0], location[1] = location[0] + 1, 0
        name = f"audio/{scene}-{city}-{location[0]}-{location[1]}-a.wav"
        location[1] += 1
        bg_rows.append(
            {
                "filename": name,
                "scene_label": scene,
                "identifier": f"{city}-{location[0]}",
                "source_label": "a",
            }
        )
        bg_tasks.append((str(tau_dir / name), seed, i, scene))

    for path in (fsd_dir / FSD_CSV_NAMES[0], fsd_dir / FSD_CSV_NAMES[1], tau_dir / TAU_META):
        path.unlink(missing_ok=True)  # no metadata lists half-written audio
    rate, channels = POCKET_BACKGROUND_FORMAT
    atomic.write_json(tau_dir / SOURCE_FORMAT_FILE, {"rate": rate, "channels": channels})
    _clear_wavs(event_dir, events["fname"])
    _clear_wavs(bg_dir, [Path(r["filename"]).name for r in bg_rows])
    _run(tasks, _event_task, workers, progress, "pocket events")
    _run(bg_tasks, _background_task, workers, progress, "pocket backgrounds")
    _write_csv_atomic(events, fsd_dir / FSD_CSV_NAMES[0], sep=",")
    _write_csv_atomic(
        pd.DataFrame(bg_rows, columns=list(TAU_COLUMNS)), tau_dir / TAU_META, sep="\t"
    )


def _write_csv_atomic(frame: pd.DataFrame, path: Path, *, sep: str) -> None:
    atomic.write_text(path, frame.to_csv(sep=sep, index=False, lineterminator="\n"))
