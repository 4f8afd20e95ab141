"""Data of any shape, conv nets, devices, load/sample and the image checks."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from otgen.cli import main
from otgen.models import (
    DeterministicDecoder,
    DeterministicEncoder,
    MMDPenalty,
    PenalisedAutoEncoder,
    Trainer,
    build,
    make_prior,
)
from otgen.models.convnets import ConvDecoder, ConvNet, conv_levels
from otgen.models.datasets import (
    as_points,
    load_array,
    load_data,
    load_image_folder,
    point_shape,
)
from otgen.models.devices import default_threads, resolve_device
from otgen.models.image_metrics import (
    frechet_distance,
    image_metrics,
    pca_reconstruction_error,
)
from otgen.models.report import image_section
from otgen.models.runs import load, sample

PRESETS = [
    "wae-mmd",
    "wae-gan",
    "aae",
    "vae",
    "beta-vae",
    "wgan-gp",
    "wae-sinkhorn",
    "wae-exact",
    "avb",
    "gan",
    "fgan",
]


def _images(n=64, shape=(8, 8), seed=0):
    """Blobs on a dark background: a simple law of images in [0, 1]."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.uniform(2, h - 2, n), rng.uniform(2, w - 2, n)
    d2 = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2
    return np.exp(-d2 / 4.0).astype(np.float32)


# -- shapes ------------------------------------------------------------------------
def test_point_shape_normalises_and_refuses():
    assert point_shape(3) == (3,)
    assert point_shape((8, 8)) == (1, 8, 8)
    assert point_shape(torch.Size([3, 4, 5])) == (3, 4, 5)
    for bad in (0, (1, 2, 3, 4), (8, 0), "8", 2.5, ()):
        with pytest.raises(ValueError, match=r"d_x must be .*\(C, H, W\)"):
            point_shape(bad)


@pytest.mark.parametrize(
    "shape, expected",
    [((5,), (5, 1)), ((5, 3), (5, 3)), ((5, 8, 8), (5, 1, 8, 8)), ((5, 3, 8, 8),) * 2],
)
def test_as_points_shapes(shape, expected):
    assert tuple(as_points(np.zeros(shape, dtype=np.uint8)).shape) == expected


def test_as_points_errors_name_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(N, d\), \(N, H, W\) or \(N, C, H, W\)"):
        as_points(np.zeros((4, 2, 3, 8, 8)))
    with pytest.raises(ValueError, match="N >= 2"):
        as_points(np.zeros((1, 8, 8)))
    x = np.zeros((4, 8, 8))
    x[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        as_points(x)


# -- files -------------------------------------------------------------------------
def test_npy_and_npz_round_trip(tmp_path):
    x = _images(10)
    np.save(tmp_path / "a.npy", x)
    np.testing.assert_array_equal(load_data(tmp_path / "a.npy")[:, 0].numpy(), x)
    np.savez(tmp_path / "one.npz", x)
    np.testing.assert_array_equal(load_array(tmp_path / "one.npz"), x)
    np.savez(tmp_path / "two.npz", labels=np.arange(10), images=x)
    np.testing.assert_array_equal(load_array(tmp_path / "two.npz"), x)
    np.testing.assert_array_equal(
        load_array(f"{tmp_path / 'two.npz'}:labels"), np.arange(10)
    )
    np.savez(tmp_path / "amb.npz", a=x, b=x)
    with pytest.raises(ValueError, match=r"name the data, e.g. .*amb.npz:a"):
        load_array(tmp_path / "amb.npz")
    with pytest.raises(ValueError, match="no array 'c'"):
        load_array(f"{tmp_path / 'amb.npz'}:c")
    with pytest.raises(ValueError, match="not 'digits', a folder"):
        load_data(str(tmp_path / "x.png"))


def test_image_folder_round_trip(tmp_path):
    from PIL import Image

    grey = (_images(3) * 255).round().astype(np.uint8)
    for i, im in enumerate(grey):
        Image.fromarray(im, "L").save(tmp_path / f"{i}.png")
    x = load_image_folder(tmp_path)
    assert x.shape == (3, 1, 8, 8)
    np.testing.assert_array_equal((x[:, 0] * 255).round(), grey)  # PNG: lossless
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    colour = np.stack([grey[0], grey[1], grey[2]], -1)
    Image.fromarray(colour, "RGB").save(rgb / "a.png")
    Image.fromarray(colour[::-1], "RGB").save(rgb / "b.png")
    y = load_data(str(rgb))
    assert tuple(y.shape) == (2, 3, 8, 8)
    np.testing.assert_allclose(y[0, 1].numpy(), grey[1] / 255, atol=1e-6)
    Image.fromarray(np.zeros((4, 6), np.uint8), "L").save(tmp_path / "odd.png")
    with pytest.raises(ValueError, match=r"different sizes .* size=\(H, W\)"):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, size=(8, 8)).shape == (4, 1, 8, 8)


def test_digits():
    pytest.importorskip("sklearn")
    x = load_data("digits")
    assert tuple(x.shape) == (1797, 1, 8, 8)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0


# -- nets --------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 64, 64), (2, 12, 20)])
def test_conv_nets_sized_from_the_shape(shape):
    x = torch.randn(3, *shape)
    assert tuple(ConvNet(shape, 5, width=4)(x).shape) == (3, 5)
    assert tuple(ConvDecoder(5, shape, width=4)(torch.randn(3, 5)).shape) == (3, *shape)
    net = ConvNet(shape, 1, width=4, extra=2)  # flattened rows + 2 extra inputs
    assert tuple(net(torch.cat([x.flatten(1), torch.randn(3, 2)], 1)).shape) == (3, 1)
    with pytest.raises(ValueError, match="input must have shape"):
        ConvNet(shape, 5, width=4)(torch.randn(3, 1, 5, 5))


def test_conv_levels_follow_the_paper():
    assert [conv_levels((1, s, s)) for s in (8, 28, 64)] == [2, 3, 4]


def test_auto_picks_conv_for_images_and_mlp_for_vectors():
    assert isinstance(build("wae-mmd", (8, 8)).encoder.net, ConvNet)
    assert isinstance(build("wae-mmd", (8, 8), nets="mlp").encoder.net, nn.Sequential)
    assert isinstance(build("wae-mmd", 64).encoder.net, nn.Sequential)
    with pytest.raises(ValueError, match=r"nets='conv' needs images .* \(64,\)"):
        build("wae-mmd", 64, nets="conv")
    with pytest.raises(ValueError, match="nets must be one of"):
        build("wae-mmd", (8, 8), nets="cnn")


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_on_images_without_nan(preset):
    x = torch.from_numpy(_images(64))  # (N, H, W): reshaped to (N, 1, H, W)
    model = build(preset, (8, 8), d_z=4, conv_width=4, hidden=[16], seed=0)
    tr = Trainer(model, x, batch_size=16, progress=False, log_every=1).fit(3)
    assert all(np.isfinite(v) for h in tr.history for v in h.values())
    assert tuple(model.generate(5).shape) == (5, 1, 8, 8)


# -- data paths through the Trainer --------------------------------------------------
def test_trainer_takes_datasets_and_loaders():
    x = torch.from_numpy(_images(64))
    ds = torch.utils.data.TensorDataset(x, torch.arange(64))  # (image, label) items
    for data in (ds, torch.utils.data.DataLoader(ds, batch_size=16)):
        model = build("wae-mmd", (8, 8), d_z=2, conv_width=4)
        Trainer(model, data, batch_size=16, progress=False).fit(2)
    a = build("wae-mmd", (8, 8), d_z=2, conv_width=4, seed=1)
    b = build("wae-mmd", (8, 8), d_z=2, conv_width=4, seed=1)
    Trainer(a, ds, batch_size=16, seed=3, progress=False).fit(3)
    Trainer(b, ds, batch_size=16, seed=3, progress=False).fit(3)
    for p, q in zip(a.parameters(), b.parameters()):  # seeded Dataset order
        assert torch.equal(p, q)


def test_flat_rows_reshaped_and_wrong_shape_named():
    x = torch.from_numpy(_images(32))
    model = build("wae-mmd", (8, 8), d_z=2, conv_width=4)
    Trainer(model, x.reshape(32, 64), batch_size=16, progress=False).fit(1)
    with pytest.raises(ValueError, match=r"expecting data of shape \(N, 1, 8, 8\)"):
        Trainer(model, torch.zeros(32, 1, 6, 6), batch_size=16, progress=False)
    loader = torch.utils.data.DataLoader(torch.zeros(32, 3, 8, 8), batch_size=16)
    tr = Trainer(model, loader, progress=False)
    with pytest.raises(ValueError, match=r"expecting data of shape \(N, 1, 8, 8\)"):
        tr.fit(1)


# -- devices ---------------------------------------------------------------------------
def test_device_selection_on_cpu():
    assert resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu?")
    model = build("wae-mmd", 2, hidden=[8])
    tr = Trainer(model, torch.randn(64, 2), batch_size=16, device="cpu", progress=False)
    assert tr.device.type == "cpu" and tr.options["device"] == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            Trainer(model, torch.randn(64, 2), batch_size=16, device="cuda")
        with pytest.raises(ValueError, match="amp=True needs a CUDA device"):
            Trainer(model, torch.randn(64, 2), batch_size=16, amp=True)


def test_thread_default_never_takes_all_cores_for_small_models():
    assert default_threads(build("wae-mmd", 2)) == 1
    big = build("wae-mmd", (3, 64, 64), conv_width=64)  # > 1e6 parameters
    assert 1 <= default_threads(big) <= torch.get_num_threads()
    before = torch.get_num_threads()
    seen = []
    model = build("wae-mmd", 2, hidden=[8])
    tr = Trainer(model, torch.randn(64, 2), batch_size=16, progress=False)
    tr.fit(1, callback=lambda t: seen.append(torch.get_num_threads()))
    assert seen == [1] and torch.get_num_threads() == before


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_with_amp_and_load(tmp_path):
    x = torch.from_numpy(_images(256))
    model = build("wae-mmd", (8, 8), d_z=4, seed=0)
    tr = Trainer(model, x, batch_size=64, device="cuda", amp=True, progress=False)
    tr.fit(20)
    assert model.device.type == "cuda"
    assert all(np.isfinite(v) for h in tr.history for v in h.values())
    tr.save(tmp_path / "ck")
    m = load(tmp_path / "ck", device="cuda")
    assert m.generate(4).device.type == "cuda"
    cpu = load(tmp_path / "ck")
    z = torch.randn(4, 4)
    torch.testing.assert_close(
        m.decode(z.cuda()).cpu(), cpu.decode(z), rtol=1e-4, atol=1e-4
    )


# -- load and sample -----------------------------------------------------------------
def test_load_preset_round_trip(tmp_path):
    x = torch.from_numpy(_images(64))
    model = build("wae-mmd", (8, 8), d_z=3, conv_width=4, seed=2)
    tr = Trainer(model, x, batch_size=16, progress=False).fit(2)
    tr.save(tmp_path / "run" / "checkpoint")
    m = load(tmp_path / "run")  # a run directory: its checkpoint/ is found
    assert m.x_shape == (1, 8, 8) and not m.training
    xs = x[:5, None]
    torch.testing.assert_close(m.encode(xs).z, model.encode(xs).z)
    z = torch.randn(4, 3)
    torch.testing.assert_close(m.decode(z), model.decode(z))
    a, b = sample(m, 10, seed=1), sample(model, 10, seed=1)
    torch.testing.assert_close(a, b)
    assert tuple(a.shape) == (10, 1, 8, 8)


class _Flatten(nn.Module):  # a user's own encoder body
    def __init__(self, d_z):
        super().__init__()
        self.lin = nn.Linear(64, d_z)

    def forward(self, x):
        return self.lin(x.flatten(1))


def _hand_built(seed):
    torch.manual_seed(seed)
    dec = nn.Sequential(nn.Linear(3, 64), nn.Unflatten(1, (1, 8, 8)))
    return PenalisedAutoEncoder(
        DeterministicEncoder(_Flatten(3)),
        DeterministicDecoder(dec),
        make_prior("gaussian", d_z=3),
        MMDPenalty(),
    )


def test_load_hand_built_model(tmp_path):
    x = torch.from_numpy(_images(64))[:, None]
    model = _hand_built(0)
    Trainer(model, x, batch_size=16, progress=False).fit(2).save(tmp_path)
    with pytest.raises(ValueError, match=r"hand-built .* model=model"):
        load(tmp_path)
    again = load(tmp_path, model=_hand_built(1))  # other init, same structure
    z = torch.randn(4, 3)
    torch.testing.assert_close(again.decode(z), model.decode(z))
    other = PenalisedAutoEncoder(
        DeterministicEncoder(_Flatten(2)),
        DeterministicDecoder(nn.Sequential(nn.Linear(2, 64))),
        make_prior("gaussian", d_z=2),
        MMDPenalty(),
    )
    with pytest.raises(ValueError, match="does not fit model="):
        load(tmp_path, model=other)


def test_train_and_sample_cli_on_an_image_file(tmp_path, capsys):
    np.save(tmp_path / "img.npy", _images(120))
    out = tmp_path / "run"
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"model": {"conv_width": 4, "d_z": 2}}))
    args = ["train", "--data", str(tmp_path / "img.npy"), "--out", str(out)]
    assert main([*args, "--steps", "3", "--quiet", "--config", str(cfg)]) == 0
    report = (out / "report.md").read_text()
    assert "## Images" in report and "PCA" in report
    assert "Exact W2 in pixel space: NOT indistinguishable" in report  # 3 steps
    assert "No model check" not in report  # the W2 test gives the verdict
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"recon_pca", "mmd_p_value", "frechet", "frechet_floor"} <= set(metrics)
    assert metrics["w2_pixels_p_value"] <= 0.05 < metrics["w2_pixels_z"]
    for name in ("samples.png", "reconstructions.png", "interpolations.png"):
        assert (out / name).is_file()
    s1, s2 = tmp_path / "s1.npy", tmp_path / "s2.npy"
    assert main(["sample", str(out), "-n", "7", "--out", str(s1)]) == 0
    assert main(["sample", str(out), "-n", "7", "--out", str(s2)]) == 0
    a = np.load(s1)
    assert a.shape == (7, 1, 8, 8)
    np.testing.assert_array_equal(a, np.load(s2))  # seeded
    assert main(["sample", str(tmp_path), "--out", str(s1)]) == 2  # no checkpoint
    assert "not an otgen checkpoint" in capsys.readouterr().err


# -- the image checks fail for bad models ---------------------------------------------
def _pca_model(train, k, blur=False):
    """A linear auto-encoder holding PCA's top-k subspace (optionally blurred)."""
    a = train.reshape(len(train), -1).double()
    mean = a.mean(0)
    v = torch.linalg.svd(a - mean, full_matrices=False).Vh[:k].T  # (64, k)
    enc = nn.Linear(64, k).double()
    dec = nn.Linear(k, 64).double()
    with torch.no_grad():
        enc.weight.copy_(v.T)
        enc.bias.copy_(-(v.T @ mean))
        dec.weight.copy_(v)
        dec.bias.copy_(mean)
    layers = [dec, nn.Unflatten(1, (1, 8, 8))]
    if blur:
        conv = nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
        with torch.no_grad():
            conv.weight.fill_(1 / 9)
        layers.append(conv)
    return PenalisedAutoEncoder(
        DeterministicEncoder(nn.Sequential(nn.Flatten(), enc)),
        DeterministicDecoder(nn.Sequential(*layers)),
        make_prior("gaussian", d_z=k),
        MMDPenalty(),
    ).double()


def test_pca_error_matches_an_independent_computation():
    x = torch.from_numpy(_images(300, seed=1)).double()
    train, held = x[:200], x[200:]
    err = pca_reconstruction_error(train, held, 5)
    # reference: the projection onto the top eigenvectors of the covariance
    a = train.reshape(200, -1).numpy()
    w, u = np.linalg.eigh(np.cov(a, rowvar=False))
    v = u[:, np.argsort(w)[::-1][:5]]
    r = held.reshape(100, -1).numpy() - a.mean(0)
    ref = ((r - r @ v @ v.T) ** 2).sum(1).mean()
    assert err == pytest.approx(ref, rel=1e-9)
    model = _pca_model(train, 5)  # the linear AE of the same subspace ties PCA
    metrics = image_metrics(model, train, held, held, n_permutations=50)
    assert metrics["recon_model"] == pytest.approx(err, rel=1e-9)


def test_comparison_with_pca_fails_for_bad_models():
    x = torch.from_numpy(_images(300, seed=1)).double()
    train, held, held2 = x[:200], x[200:250], x[250:]
    blurred = image_metrics(_pca_model(train, 5, blur=True), train, held, held2)
    assert not blurred["beats_pca"]
    assert "ABOVE PCA" in image_section(blurred)
    untrained = build("wae-mmd", (8, 8), d_z=5, conv_width=8, seed=0)
    bad = image_metrics(untrained, train.float(), held.float(), held2.float())
    assert not bad["beats_pca"] and bad["recon_model"] > bad["recon_pca"]
    # the untrained decoder's samples are told apart from the data
    assert bad["mmd_p_value"] <= 0.01
    assert bad["frechet"] > 10 * bad["frechet_floor"]


def test_mmd_and_frechet_accept_a_sample_of_the_data_law():
    x = torch.from_numpy(_images(600, seed=2))
    held, held2, fresh = x[:200], x[200:400], x[400:]

    class Replay(PenalisedAutoEncoder):  # a "perfect" model: fresh data points
        def generate(self, n, *, generator=None):
            return fresh[:n]

    perfect = Replay(
        DeterministicEncoder(_Flatten(3)),
        DeterministicDecoder(nn.Sequential(nn.Linear(3, 64))),
        make_prior("gaussian", d_z=3),
        MMDPenalty(),
    )
    perfect.prior = None  # no reconstruction comparison: generation only
    m = image_metrics(perfect, x, held, held2)
    assert m["mmd_p_value"] > 0.01
    assert m["frechet"] < 3 * m["frechet_floor"]
    assert frechet_distance(held, held) == pytest.approx(0.0, abs=1e-9)


def test_conv_wae_beats_pca_on_digits():
    """A few hundred steps of the conv WAE-MMD of otgen train beat PCA (d_z = 8)."""
    pytest.importorskip("sklearn")
    x = load_data("digits")
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(x)))
    x = x[perm]
    held, train = x[:300], x[300:]
    model = build("wae-mmd", (8, 8), d_z=8, seed=0)
    Trainer(model, train, batch_size=100, progress=False).fit(400)
    m = image_metrics(model, train, held, held, n_permutations=50)
    assert m["beats_pca"], m


def test_tensorboard_logging(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    model = build("wae-mmd", 2, hidden=[8])
    tb = tmp_path / "tb"
    tr = Trainer(model, torch.randn(64, 2), batch_size=16, log_every=2, tensorboard=tb)
    tr.fit(4)
    events = EventAccumulator(str(tb))
    events.Reload()
    rec = events.Scalars("model/reconstruction")
    assert [e.step for e in rec] == [1, 2, 4]
    assert rec[-1].value == pytest.approx(tr.history[-1]["model/reconstruction"])
    monkeypatch.setitem(__import__("sys").modules, "torch.utils.tensorboard", None)
    with pytest.raises(ValueError, match="pip install tensorboard"):
        Trainer(model, torch.randn(64, 2), batch_size=16, tensorboard=tb)


def test_checkpoints_written_before_the_nets_option_still_load(tmp_path):
    x = torch.randn(64, 2)
    Trainer(build("wae-mmd", 2, hidden=[8]), x, batch_size=16, progress=False).save(
        tmp_path
    )
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    for key in ("nets", "conv_width"):
        del config["model"]["options"][key]
    path.write_text(json.dumps(config))
    assert load(tmp_path).config["options"]["nets"] == "auto"
    tr = Trainer.from_checkpoint(tmp_path, x, progress=False)
    assert tr.step == 0


@pytest.mark.slow
def test_main_job_on_digits_beats_pca(tmp_path):
    """``otgen train --data digits`` with its defaults (4000 steps)."""
    pytest.importorskip("sklearn")
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["beats_pca"]
    assert metrics["recon_model"] < 0.7 * metrics["recon_pca"]
    assert metrics["frechet"] < 10 * metrics["frechet_floor"]
    assert "at or below PCA" in (out / "report.md").read_text()


def test_compare_runs_on_images(tmp_path):
    np.save(tmp_path / "img.npy", _images(120))
    out = tmp_path / "cmp"
    args = ["compare", "--data", str(tmp_path / "img.npy"), "--out", str(out)]
    assert (
        main(
            [
                *args,
                "--models",
                "wae-mmd,wgan-gp",
                "--steps",
                "2",
                "--seeds",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert "beats_pca" in metrics["wae-mmd"][0]
    assert "frechet" in metrics["wgan-gp"][0]
    assert (out / "samples.png").is_file()
