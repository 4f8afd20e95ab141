r"""Real data of any shape: arrays, files, image folders, torch datasets, digits.

A data set is a tensor of shape :math:`(N, *s)`: :math:`N` points of the
*point shape* :math:`s`, one of

==============  ==============================================================
point shape     data
==============  ==============================================================
``(d,)``        vectors (an (N, d) array; an (N,) array is (N, 1))
``(C, H, W)``   images with C channels (an (N, H, W) array is (N, 1, H, W))
==============  ==============================================================

Sources, all read into that form by :func:`load_data`:

- a NumPy array or torch tensor of shape (N, d), (N, H, W) or (N, C, H, W);
- a ``.npy`` file, or a ``.npz`` file with one array (or an array named
  ``x``, ``data``, ``images`` or ``arr_0``; pick another with
  ``"file.npz:name"``);
- a folder of PNG / JPEG images of one size (Pillow; greyscale when every
  image is greyscale, else RGB), scaled to [0, 1];
- ``"digits"``: scikit-learn's bundled hand-written digits (1797 images of
  8 x 8, offline), scaled from 0..16 to [0, 1] (``pip install
  otgen[images]`` or ``pip install scikit-learn``);
- any ``torch.utils.data.Dataset`` or ``DataLoader`` through the Python API
  (:class:`~otgen.models.train.Trainer` takes them; items may be tensors or
  ``(x, label)`` pairs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "IMAGE_SUFFIXES",
    "as_points",
    "load_data",
    "load_digits",
    "load_image_folder",
    "load_array",
    "point_shape",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_NPZ_KEYS = ("x", "data", "images", "arr_0")
_EXPECTED = "(N, d), (N, H, W) or (N, C, H, W)"


def point_shape(shape: Any, *, name: str = "d_x") -> tuple[int, ...]:
    """The normalised shape of one point: ``(d,)`` or ``(C, H, W)``.

    An int ``d`` is ``(d,)``; ``(H, W)`` is ``(1, H, W)``. Raises ValueError
    naming ``name``, the value and the shapes accepted.

    Examples
    --------
    >>> point_shape(2), point_shape((8, 8)), point_shape([3, 64, 64])
    ((2,), (1, 8, 8), (3, 64, 64))
    """
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        dims: tuple = (int(shape),)
    elif isinstance(shape, (torch.Size, Sequence, np.ndarray)) and not isinstance(
        shape, (str, bytes)
    ):
        dims = tuple(np.asarray(shape).tolist()) if len(shape) else ()
    else:
        dims = ()
    ok = (
        1 <= len(dims) <= 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in dims)
        and all(v >= 1 for v in dims)
    )
    if not ok:
        raise ValueError(
            f"{name} must be a point dimension d >= 1 or a point shape (d,), "
            f"(H, W) or (C, H, W) of positive integers (got {shape!r}); pass "
            "e.g. 2 for points in R^2 or (1, 28, 28) for greyscale 28 x 28 images."
        )
    return (1, *dims) if len(dims) == 2 else dims


def as_points(data: Any, *, name: str = "data") -> torch.Tensor:
    """A tensor or array as finite float points of shape (N, d) or (N, C, H, W).

    (N,) becomes (N, 1) and (N, H, W) becomes (N, 1, H, W); integer arrays
    become float32. Raises ValueError naming the expected shapes.

    Examples
    --------
    >>> tuple(as_points(np.zeros((5, 8, 8))).shape)
    (5, 1, 8, 8)
    """
    from otgen._arrays import to_tensor

    if isinstance(data, np.ndarray) and not np.issubdtype(data.dtype, np.floating):
        if data.dtype == bool or np.issubdtype(data.dtype, np.integer):
            data = data.astype(np.float32)
    if isinstance(data, torch.Tensor) and not data.is_floating_point():
        if not data.is_complex():
            data = data.float()
    t = to_tensor(data, name)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim == 3:
        t = t[:, None]
    if t.ndim > 4 or t.shape[0] < 2 or 0 in t.shape:
        raise ValueError(
            f"{name} must have shape {_EXPECTED} with N >= 2 points (got shape "
            f"{tuple(t.shape)}); reshape it, e.g. x.reshape(len(x), -1) for "
            "vectors."
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(
            f"{name} must be finite (got NaN or inf entries); remove or impute them."
        )
    return t


def load_array(path: str | Path) -> np.ndarray:
    """The array of a ``.npy`` or ``.npz`` file (``"f.npz:name"`` picks one)."""
    text = str(path)
    key = None
    if ".npz:" in text:
        text, key = text.rsplit(":", 1)
    p = Path(text)
    if not p.is_file():
        raise ValueError(f"{p}: no such file; pass a .npy or .npz file.")
    try:
        loaded = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{p}: cannot read it as NumPy data ({err}).") from err
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return loaded
    with loaded:
        names = list(loaded.files)
        if key is None:
            found = [k for k in _NPZ_KEYS if k in names]
            if len(names) == 1:
                key = names[0]
            elif found:
                key = found[0]
            else:
                raise ValueError(
                    f"{p} holds arrays {names}; name the data, e.g. '{p}:{names[0]}'."
                )
        if key not in names:
            raise ValueError(f"{p} has no array {key!r} (it holds {names}).")
        return loaded[key]


def load_image_folder(
    path: str | Path, *, size: tuple[int, int] | None = None
) -> np.ndarray:
    """The PNG / JPEG images of a folder (sorted by name) as (N, C, H, W) in [0, 1].

    Greyscale (C = 1) when every image is greyscale, else RGB (C = 3; an
    alpha channel is dropped). All images must have one size, unless
    ``size=(H, W)`` resizes them (bilinear).
    """
    from PIL import Image

    d = Path(path)
    files = sorted(
        f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
    )
    if len(files) < 2:
        raise ValueError(
            f"{d}: found {len(files)} image(s) ({', '.join(IMAGE_SUFFIXES)}); a "
            "data folder needs at least 2."
        )
    images = [Image.open(f) for f in files]
    grey = all(im.mode in ("1", "L", "I", "I;16", "F") for im in images)
    mode = "L" if grey else "RGB"
    arrays, sizes = [], {}
    for f, im in zip(files, images):
        im = im.convert(mode)
        if size is not None:
            im = im.resize((int(size[1]), int(size[0])), Image.BILINEAR)
        sizes.setdefault(im.size, f.name)
        arrays.append(np.asarray(im, dtype=np.float32) / 255.0)
    if len(sizes) > 1:
        (w0, h0), (w1, h1) = list(sizes)[:2]
        raise ValueError(
            f"{d}: images of different sizes ({sizes[(w0, h0)]} is {h0} x {w0}, "
            f"{sizes[(w1, h1)]} is {h1} x {w1}); resize them to one size, or pass "
            f"size=(H, W)."
        )
    x = np.stack(arrays)
    return x[:, None] if grey else x.transpose(0, 3, 1, 2).copy()


def load_digits() -> np.ndarray:
    """scikit-learn's 1797 hand-written digits, shape (1797, 1, 8, 8), in [0, 1]."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError as err:
        raise ValueError(
            "data 'digits' needs scikit-learn; pip install scikit-learn (or pip "
            "install otgen[images])."
        ) from err
    images = sk_digits().images.astype(np.float32) / 16.0
    return images[:, None]


def load_data(source: Any) -> torch.Tensor:
    """Points of shape (N, d) or (N, C, H, W) from any source (module docstring).

    Examples
    --------
    >>> tuple(load_data(np.ones((10, 28, 28))).shape)
    (10, 1, 28, 28)
    """
    if isinstance(source, (str, Path)):
        text = str(source)
        if text == "digits":
            return as_points(load_digits(), name="digits")
        p = Path(text)
        if p.is_dir():
            return as_points(load_image_folder(p), name=text)
        base = Path(text.rsplit(":", 1)[0]) if ".npz:" in text else p
        if base.suffix.lower() in (".npy", ".npz"):
            return as_points(load_array(text), name=text)
        raise ValueError(
            f"data {text!r} is not 'digits', a folder of images or a .npy/.npz "
            f"file; pass one of those, or an array of shape {_EXPECTED}."
        )
    return as_points(source)


def flat_dim(shape: Sequence[int]) -> int:
    """The number of coordinates of a point of ``shape``."""
    return math.prod(shape)
