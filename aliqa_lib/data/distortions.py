"""Synthetic distortions at five levels, KADID-style, on float RGB images in [0, 1].

Every function takes (image (H, W, 3) float32, level 1..5, numpy Generator) and returns a new
float32 image in [0, 1]. The parameter per level is listed in LEVELS so notebooks can show it.
"""
from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image
from scipy import ndimage, signal

Distortion = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

LEVELS: dict[str, tuple[float, ...]] = {
    "gaussian_blur": (0.6, 1.2, 2.2, 3.8, 7.0),         # sigma in pixels
    "motion_blur": (3, 7, 13, 23, 41),                   # kernel length in pixels
    "gaussian_noise": (0.025, 0.05, 0.085, 0.13, 0.19),  # std of additive white noise
    "impulse_noise": (0.004, 0.02, 0.06, 0.13, 0.25),     # share of salt-and-pepper pixels
    "speckle_noise": (0.06, 0.15, 0.3, 0.55, 0.9),        # std of multiplicative noise
    "jpeg": (40, 22, 12, 7, 3),                          # JPEG quality
    "jpeg2000": (15, 45, 110, 260, 600),                 # compression ratio (levels 4-5 merge below ~200 px)
    "brighten": (1.25, 1.6, 2.2, 3.1, 4.5),              # inverse gamma
    "darken": (1.25, 1.6, 2.2, 3.1, 4.5),                # gamma
    "contrast": (0.7, 0.52, 0.37, 0.25, 0.15),           # contrast factor around the mean
    "color_shift": (0.06, 0.16, 0.3, 0.48, 0.7),         # red/blue gain offset
    "pixelate": (2, 3, 5, 8, 13),                         # block size
    "quantize": (20, 12, 7, 4, 3),                       # grey levels per channel
    "blur_noise": (1, 2, 3, 4, 5),                       # gaussian_blur and gaussian_noise at this level - 1
}


def _param(name: str, level: int) -> float:
    """The parameter of a distortion at level 1..5."""
    if not 1 <= level <= 5:
        raise ValueError(f"level must be 1..5, got {level}")
    return LEVELS[name][level - 1]


def _pil(img: np.ndarray) -> Image.Image:
    """Float image to 8-bit PIL image."""
    return Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))


def _codec(img: np.ndarray, fmt: str, **options) -> np.ndarray:
    """Round-trip an image through a PIL codec in memory."""
    buf = io.BytesIO()
    _pil(img).save(buf, format=fmt, **options)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255.0


def gaussian_blur(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Isotropic Gaussian blur."""
    return ndimage.gaussian_filter(img, sigma=(_param("gaussian_blur", level),) * 2 + (0,), mode="reflect")


def motion_blur(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Linear motion blur along a random direction."""
    length = int(_param("motion_blur", level))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    kernel = ndimage.rotate(kernel, rng.uniform(0, 180), reshape=False, order=1)
    kernel /= kernel.sum()
    pad = length // 2 + 1
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = signal.fftconvolve(padded, kernel[:, :, None], mode="same", axes=(0, 1))
    return out[pad:-pad, pad:-pad]


def gaussian_noise(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise, independent per channel."""
    return img + rng.normal(0, _param("gaussian_noise", level), img.shape).astype(np.float32)


def impulse_noise(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise on a share of the pixels."""
    out = img.copy()
    hit = rng.random(img.shape[:2]) < _param("impulse_noise", level)
    out[hit] = rng.integers(0, 2, size=(int(hit.sum()), 1)).astype(np.float32)
    return out


def speckle_noise(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative Gaussian noise (brighter areas get noisier)."""
    noise = rng.normal(0, _param("speckle_noise", level), img.shape).astype(np.float32)
    return img * (1 + noise) + 0.02 * noise


def jpeg(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG compression."""
    return _codec(img, "JPEG", quality=int(_param("jpeg", level)))


def jpeg2000(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG 2000 compression at a fixed compression ratio."""
    return _codec(img, "JPEG2000", quality_mode="rates", quality_layers=[_param("jpeg2000", level)])


def brighten(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Non-linear brightening (gamma below one), washing out highlights."""
    return np.power(img, 1.0 / _param("brighten", level))


def darken(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Non-linear darkening (gamma above one), crushing shadows."""
    return np.power(img, _param("darken", level)) * (1 - 0.04 * level)


def contrast(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Contrast reduction towards the image mean."""
    mean = img.mean()
    return mean + (img - mean) * _param("contrast", level)


def color_shift(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """White-balance shift: red and blue gains pulled apart (tints grey photos too)."""
    a = _param("color_shift", level) * rng.choice([-1.0, 1.0])
    gains = np.array([1 + a, 1.0, 1 - a], np.float32)
    return img * gains + np.array([max(a, 0), 0, max(-a, 0)], np.float32) * 0.25


def pixelate(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Block averaging then nearest-neighbour upscaling."""
    h, w = img.shape[:2]
    block = int(_param("pixelate", level))
    small = _pil(img).resize((max(1, w // block), max(1, h // block)), Image.BOX)
    return np.asarray(small.resize((w, h), Image.NEAREST), dtype=np.float32) / 255.0


def quantize(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform quantisation to a few grey levels per channel (posterisation, banding)."""
    steps = _param("quantize", level) - 1
    return np.round(img * steps) / steps


def blur_noise(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """A mixture: Gaussian blur, then Gaussian noise, each one level milder (level 1 = blur only)."""
    out = gaussian_blur(img, level, rng)
    return gaussian_noise(out, level - 1, rng) if level > 1 else out


DISTORTIONS: dict[str, Distortion] = {name: globals()[name] for name in LEVELS}


def apply(img: np.ndarray, name: str, level: int, rng: np.random.Generator) -> np.ndarray:
    """Apply a named distortion at a level and clip the result to [0, 1]."""
    if name not in DISTORTIONS:
        raise ValueError(f"unknown distortion {name!r}; choose from {sorted(DISTORTIONS)}")
    return np.clip(DISTORTIONS[name](img.astype(np.float32), level, rng), 0, 1).astype(np.float32)
