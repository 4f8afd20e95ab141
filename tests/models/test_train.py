import json

import numpy as np
import pytest
import torch

from otgen.models.data import get_toy
from otgen.models.metrics import evaluate, reference_mmd
from otgen.models.presets import build, wae_gan, wae_mmd
from otgen.models.train import LambdaSchedule, Trainer, TrainingError, load_model

X = get_toy("ring8").sample(2048, seed=0)


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_short_fit_lowers_loss_and_mmd_to_prior():
    model = wae_mmd(2, lam=100.0, encoder="implicit", seed=0)
    held = get_toy("ring8").sample(500, seed=99)
    with torch.no_grad():
        mmd0 = reference_mmd(model.encode(held).z, model, seed=1)
    tr = Trainer(model, X, batch_size=128, seed=0, progress=False, log_every=1)
    tr.fit(300)
    loss = np.array([h["model/loss"] for h in tr.history])
    assert loss[-50:].mean() < 0.1 * loss[:10].mean()
    with torch.no_grad():
        mmd1 = reference_mmd(model.encode(held).z, model, seed=1)
    # MMD^2 to the prior starts far above its sampling noise (~1e-3 at n=500)
    assert mmd0 > 0.05 and mmd1 < 0.2 * mmd0


@pytest.mark.parametrize(
    "preset",
    ["wae_gan", "aae", "wgan_gp", "vae", "beta_vae", "wae_exact", "wae_sinkhorn"],
)
def test_every_group_trains_and_changes_parameters(preset):
    if preset == "wae_sinkhorn":
        pytest.importorskip("otgen.ot.divergence")
    model = build(preset, 2, seed=0)
    before = _params(model).clone()
    tr = Trainer(model, X, batch_size=64, seed=0, progress=False)
    tr.fit(3)
    assert tr.step == 3 and not torch.equal(before, _params(model))
    assert all(np.isfinite(v) for v in tr.history[-1].values())


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    tr = Trainer(wae_gan(2, seed=1), X, batch_size=64, seed=0, progress=False)
    tr.fit(5)
    tr.save(tmp_path / "ck")
    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert cfg["model"]["preset"] == "wae_gan" and cfg["step"] == 5
    loaded = load_model(tmp_path / "ck")
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        tr.model.eval()
        assert torch.equal(tr.model.decode(z), loaded.decode(z))
        assert torch.equal(tr.model.encode(X[:50]).z, loaded.encode(X[:50]).z)
        assert torch.equal(tr.model.penalty.critic(z), loaded.penalty.critic(z))


@pytest.mark.parametrize("preset", ["wae_gan", "wae_mmd"])
def test_resume_equals_uninterrupted_run(tmp_path, preset):
    kw = dict(batch_size=200, seed=4, progress=False, log_every=1)  # 2048/200: epochs
    full = Trainer(build(preset, 2, seed=2), X, **kw).fit(23)
    first = Trainer(build(preset, 2, seed=2), X, **kw).fit(11)
    first.save(tmp_path / "ck")
    resumed = Trainer.from_checkpoint(tmp_path / "ck", X, progress=False)
    resumed.fit(12)
    assert torch.equal(_params(full.model), _params(resumed.model))
    for k, o in full.optimizers.items():
        s1, s2 = o.state_dict()["state"], resumed.optimizers[k].state_dict()["state"]
        for i in s1:
            assert torch.equal(s1[i]["exp_avg_sq"], s2[i]["exp_avg_sq"])
    drop = lambda h: {k: v for k, v in h.items() if k != "seconds"}  # noqa: E731
    assert [drop(h) for h in full.history] == [drop(h) for h in resumed.history]


def test_nan_loss_stops_with_step_and_term():
    bad = X.clone()
    tr = Trainer(wae_mmd(2, seed=0), bad, batch_size=64, seed=0, progress=False)
    tr.fit(2)
    with torch.no_grad():
        tr.model.decoder.net[0].weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"step 2: loss term 'reconstruction'"):
        tr.fit(1)


def test_lambda_schedules():
    w = LambdaSchedule("warmup", value=10.0, warmup_steps=4)
    assert [w(s) for s in (0, 2, 4, 9)] == [0.0, 5.0, 10.0, 10.0]
    a = LambdaSchedule("adaptive", value=1.0, target=0.01, rate=0.1)
    for _ in range(5):
        a.observe(1.0)  # penalty far above target: lambda grows
    assert a(0) == pytest.approx(np.exp(0.5))
    for _ in range(150):  # the average falls below target after ~44 steps
        a.observe(0.0)
    assert a(0) < 1.0
    with pytest.raises(ValueError, match="needs target > 0"):
        LambdaSchedule("adaptive", value=1.0)
    with pytest.raises(ValueError, match="schedule must be one of"):
        LambdaSchedule("cosine", value=1.0)
    tr = Trainer(
        wae_mmd(2),
        X,
        batch_size=64,
        progress=False,
        schedule="warmup",
        warmup_steps=10,
        log_every=1,
    ).fit(3)
    assert [h["lam"] for h in tr.history] == [0.0, 1.0, 2.0]


def test_simultaneous_float64_and_loader():
    model = wae_gan(2, seed=0)
    tr = Trainer(
        model,
        X,
        batch_size=64,
        progress=False,
        update="simultaneous",
        dtype=torch.float64,
    ).fit(2)
    assert model.dtype == torch.float64 and tr.step == 2
    with pytest.raises(ValueError, match="simultaneous"):
        Trainer(build("wgan_gp", 2), X, update="simultaneous", progress=False)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X), batch_size=32, shuffle=False
    )
    tr = Trainer(wae_mmd(2), loader, progress=False).fit(3)
    assert tr.step == 3


def test_trainer_option_errors():
    with pytest.raises(ValueError, match="optim has unknown group"):
        Trainer(wae_mmd(2), X, optim={"critic": {"lr": 1.0}}, progress=False)
    with pytest.raises(ValueError, match="batch_size must be at most"):
        Trainer(wae_mmd(2), X[:10], batch_size=64, progress=False)
    with pytest.raises(ValueError, match="update must be"):
        Trainer(wae_mmd(2), X, update="random", progress=False)
    with pytest.raises(ValueError, match="unknown option"):
        build("wae-mmd", 2, lamda=3)
    with pytest.raises(ValueError, match="not an otgen checkpoint"):
        load_model("/nonexistent/dir")


def test_metrics_noise_floor_and_modes():
    toy = get_toy("ring8")
    a, b = toy.sample(300, seed=1), toy.sample(300, seed=2)
    model = wae_mmd(2, seed=0)
    m = evaluate(model, a, b, centers=toy.centers, sigma=toy.sigma)
    from otgen import wasserstein

    assert m["w2_noise_floor"] == pytest.approx(
        float(wasserstein(b.double(), a.double()))
    )
    assert m["w2_ratio"] > 1.5  # an untrained model is far from the data
    assert m["n_modes"] == 8 and len(m["mode_mass"]) == 8


def test_hand_built_model_with_custom_modules_saves_and_loads(tmp_path):
    from otgen.models import (
        DeterministicDecoder,
        GaussianEncoder,
        PenalisedAutoEncoder,
        SlicedPenalty,
        SpherePrior,
    )

    def make():
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return _make()

    def _make():
        enc = GaussianEncoder(
            torch.nn.Sequential(
                torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 6)
            )
        )
        dec = DeterministicDecoder(
            torch.nn.Sequential(
                torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
            )
        )
        return PenalisedAutoEncoder(
            enc,
            dec,
            SpherePrior(3),
            SlicedPenalty(),
            cost="l1",
            lam=2.0,
            recon_scale=0.5,
        )

    tr = Trainer(make(), X, batch_size=64, progress=False).fit(4)
    tr.save(tmp_path / "ck")
    with pytest.raises(ValueError, match="hand-built model"):
        load_model(tmp_path / "ck")
    again = Trainer(make(), X, batch_size=64, progress=False).load(tmp_path / "ck")
    assert torch.equal(_params(again.model), _params(tr.model)) and again.step == 4
    tr.fit(3)
    again.fit(3)
    assert torch.equal(_params(again.model), _params(tr.model))
