r"""Convolutional encoders, decoders and critics sized from the image shape.

The DCGAN-style family of the WAE paper (:cite:p:`tolstikhin2018wae`,
appendix: 4 x 4 convolutions of stride 2 whose channels double at each
level, a linear layer to the code; the decoder mirrors it with transposed
convolutions), scaled to the image. For a point shape :math:`(C, H, W)`:

- levels :math:`L = \min(4, \max(1, \lfloor\log_2 \min(H, W)\rfloor - 1))`:
  2 for 8 x 8, 3 for 28 x 28, 4 for 64 x 64;
- channels :math:`w, 2w, \dots, 2^{L-1} w` with ``width`` :math:`w`
  (the paper's MNIST/CelebA nets have :math:`w = 128`, :math:`L = 4`);
- encoder and critic: each level a 4 x 4 convolution of stride 2 and padding
  1 (halving the side) and a ReLU (LeakyReLU 0.2 for critics), then a linear
  layer from the flattened features (and any extra inputs, see below) to the
  output;
- decoder: a linear layer to :math:`2^{L-1} w` channels at side
  :math:`\lceil H / 2^L\rceil`, :math:`L` transposed 4 x 4 convolutions of
  stride 2 (the last to :math:`C` channels, linear output), cropped to
  :math:`H \times W`.

No batch normalisation (unlike the paper): the nets then behave the same in
training and evaluation, and critics stay valid for gradient penalties.

Every net takes and returns what the MLPs of :mod:`otgen.models.nets` take and
return, so that the wrappers there work unchanged: :class:`ConvNet` accepts
images (n, C, H, W) or flattened rows (n, C H W + extra), the ``extra``
trailing entries (noise of an implicit encoder, the code of an AVB critic)
joining the flattened features before the linear layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from otgen.models.base import check_int

__all__ = [
    "NETS",
    "ConvDecoder",
    "ConvNet",
    "conv_levels",
    "decoder_net",
    "encoder_net",
    "is_image_shape",
    "use_conv",
]


def is_image_shape(shape: Sequence[int]) -> bool:
    """True for a point shape (C, H, W) with both sides at least 8."""
    return len(shape) == 3 and min(shape[1], shape[2]) >= 8


def conv_levels(shape: Sequence[int]) -> int:
    """The number of stride-2 levels for images of ``shape`` (C, H, W).

    Examples
    --------
    >>> [conv_levels((1, s, s)) for s in (8, 28, 64, 128)]
    [2, 3, 4, 4]
    """
    side = min(shape[1], shape[2])
    return min(4, max(1, int(math.floor(math.log2(side))) - 1))


def _side(n: int, levels: int) -> int:
    for _ in range(levels):
        n = n // 2  # 4 x 4 kernel, stride 2, padding 1: floor(n / 2)
    return n


class ConvNet(nn.Module):
    """Convolutional encoder or critic: images (and ``extra`` inputs) to ``d_out``.

    Parameters
    ----------
    shape : (C, H, W)
        Image shape.
    d_out : int
        Output dimension (``d_z``, ``2 d_z`` or 1 for a critic).
    width : int, default=32
        Channels of the first level; they double at each level.
    extra : int, default=0
        Trailing entries of a flattened input joined to the features.
    leaky : bool, default=False
        LeakyReLU(0.2) instead of ReLU (critics).
    """

    def __init__(
        self,
        shape: Sequence[int],
        d_out: int,
        *,
        width: int = 32,
        extra: int = 0,
        leaky: bool = False,
    ) -> None:
        super().__init__()
        self.shape = tuple(int(v) for v in shape)
        self.extra = check_int(extra, name="extra", minimum=0)
        width = check_int(width, name="conv_width", minimum=1, fix="; pass e.g. 32")
        levels = conv_levels(self.shape)
        layers: list[nn.Module] = []
        c = self.shape[0]
        for i in range(levels):
            layers += [nn.Conv2d(c, width * 2**i, 4, 2, 1)]
            layers += [nn.LeakyReLU(0.2) if leaky else nn.ReLU()]
            c = width * 2**i
        self.features = nn.Sequential(*layers, nn.Flatten())
        n_feat = c * _side(self.shape[1], levels) * _side(self.shape[2], levels)
        self.head = nn.Linear(n_feat + self.extra, check_int(d_out, name="d_out"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (n, C, H, W), or rows (n, C H W + extra)."""
        extra = None
        if x.ndim == 2:
            d = math.prod(self.shape)
            if x.shape[1] != d + self.extra:
                raise ValueError(
                    f"input must have shape (n, {d + self.extra}) or (n, "
                    f"{', '.join(map(str, self.shape))}) (got {tuple(x.shape)})."
                )
            x, extra = x[:, :d].reshape(-1, *self.shape), x[:, d:]
        elif tuple(x.shape[1:]) != self.shape:
            raise ValueError(
                f"input must have shape (n, {', '.join(map(str, self.shape))}) "
                f"(got {tuple(x.shape)})."
            )
        h = self.features(x)
        if self.extra:
            if extra is None:
                raise ValueError(
                    f"this net needs {self.extra} extra inputs after the image; "
                    "pass flattened rows (n, C H W + extra)."
                )
            h = torch.cat([h, extra], 1)
        return self.head(h)


class ConvDecoder(nn.Module):
    """Convolutional decoder / generator: codes (n, d_z) to images (n, C, H, W).

    Parameters
    ----------
    d_z : int
        Code dimension.
    shape : (C, H, W)
        Image shape.
    width : int, default=32
        Channels of the last hidden level (the first has :math:`2^{L-1} w`).
    """

    def __init__(self, d_z: int, shape: Sequence[int], *, width: int = 32) -> None:
        super().__init__()
        self.shape = tuple(int(v) for v in shape)
        width = check_int(width, name="conv_width", minimum=1, fix="; pass e.g. 32")
        levels = conv_levels(self.shape)
        h0 = math.ceil(self.shape[1] / 2**levels)
        w0 = math.ceil(self.shape[2] / 2**levels)
        c = width * 2 ** (levels - 1)
        layers: list[nn.Module] = [
            nn.Linear(check_int(d_z, name="d_z", minimum=1), c * h0 * w0),
            nn.Unflatten(1, (c, h0, w0)),
            nn.ReLU(),
        ]
        for i in range(levels - 1, 0, -1):
            layers += [nn.ConvTranspose2d(c, width * 2 ** (i - 1), 4, 2, 1), nn.ReLU()]
            c = width * 2 ** (i - 1)
        layers.append(nn.ConvTranspose2d(c, self.shape[0], 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images :math:`G(z)`, cropped to the image shape."""
        y = self.net(z)
        dh = (y.shape[2] - self.shape[1]) // 2
        dw = (y.shape[3] - self.shape[2]) // 2
        return y[:, :, dh : dh + self.shape[1], dw : dw + self.shape[2]]


NETS = ("auto", "mlp", "conv")


def use_conv(shape: Sequence[int], nets: str) -> bool:
    """Whether ``nets`` (``"auto"``, ``"mlp"``, ``"conv"``) means conv nets here.

    ``"auto"``: convolutional for image shapes (C, H, W) with sides >= 8, MLPs
    otherwise. ``"conv"`` on other shapes raises ValueError naming the shape.
    """
    if nets not in NETS:
        raise ValueError(
            f"nets must be one of {', '.join(NETS)} (got {nets!r}); pass "
            "nets='auto' (conv nets for images, MLPs for vectors)."
        )
    if nets == "conv" and not is_image_shape(shape):
        raise ValueError(
            f"nets='conv' needs images of shape (C, H, W) with H, W >= 8 (got "
            f"point shape {tuple(shape)}); pass nets='mlp'."
        )
    return nets == "conv" or (nets == "auto" and is_image_shape(shape))


def encoder_net(
    shape: Sequence[int],
    d_out: int,
    *,
    nets: str,
    hidden: Sequence[int],
    width: int,
    extra: int = 0,
    leaky: bool = False,
) -> nn.Module:
    """An encoder / critic body: points of ``shape`` (plus ``extra``) to ``d_out``.

    A :class:`ConvNet` or an MLP on the flattened input (see :func:`use_conv`).
    """
    from otgen.models.nets import mlp

    if use_conv(shape, nets):
        return ConvNet(shape, d_out, width=width, extra=extra, leaky=leaky)
    net = mlp(math.prod(shape) + extra, d_out, hidden)
    return nn.Sequential(nn.Flatten(), *net) if len(shape) > 1 else net


def decoder_net(
    d_z: int, shape: Sequence[int], *, nets: str, hidden: Sequence[int], width: int
) -> nn.Module:
    """A decoder / generator body: codes (n, d_z) to points of ``shape``."""
    from otgen.models.nets import mlp

    if use_conv(shape, nets):
        return ConvDecoder(d_z, shape, width=width)
    net = mlp(d_z, math.prod(shape), hidden)
    return nn.Sequential(*net, nn.Unflatten(1, tuple(shape))) if len(shape) > 1 else net
