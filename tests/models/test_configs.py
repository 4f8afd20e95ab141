"""Preset configs: frozen dataclasses that round-trip, check every field, and
build the same model as the preset's name (issue 17 item 4)."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

import otgen.models as om
from otgen.cli import build_parser, main
from otgen.models import build, load, load_config
from otgen.models import validate as v
from otgen.models.config_cli import SKIP, config_options
from otgen.models.configs import (
    CONFIGS,
    RULES,
    AAEConfig,
    AVBConfig,
    BetaVAEConfig,
    FGANConfig,
    GANConfig,
    PresetConfig,
    VAEConfig,
    WAEExactConfig,
    WAEGANConfig,
    WAEMMDConfig,
    WAESinkhornConfig,
    WGANGPConfig,
    config_class,
)
from otgen.models.presets import PRESETS
from otgen.models.train import Trainer

NAMES = sorted(CONFIGS)
SMALL = {"hidden": (8, 8)}
# Non-default options per preset (each differs from its default).
OPTIONS = {
    "wae_mmd": {"encoder": "implicit", "scales": [0.05, 0.2, 1], "lam": 100},
    "wae_gan": {"prior_trick": True, "gradient_penalty": 1.0, "prior": "uniform"},
    "aae": {"lam": 2.0, "critic_lr": 1e-3},
    "vae": {"likelihood": "bernoulli", "learn_sigma": True},
    "beta_vae": {"beta": 2.0, "d_z": 3},
    "wgan_gp": {"n_critic": 2, "gp_weight": 1.0},
    "wae_sinkhorn": {"eps": 0.1, "p": 1},
    "wae_exact": {"p": 2.0, "cost": "squared"},
    "avb": {"noise_dim": 3, "decoder_sigma": 0.5},
    "gan": {"generator_loss": "minimax"},
    "fgan": {"f": "pearson", "n_critic": 2},
}


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- the classes ---------------------------------------------------------------
def test_one_config_per_preset_and_a_rule_per_field():
    assert list(CONFIGS) == list(PRESETS)
    for name, cls in CONFIGS.items():
        assert cls.preset == name and dataclasses.is_dataclass(cls)
        assert config_class(name.replace("_", "-")) is cls
        for f in dataclasses.fields(cls):
            assert f.name in RULES, f"{cls.__name__}.{f.name} has no rule"
    used = {f.name for c in CONFIGS.values() for f in dataclasses.fields(c)}
    assert used == set(RULES)  # no rule for a field that no longer exists


@pytest.mark.parametrize("name", NAMES)
def test_defaults_pass_their_rules_unchanged(name):
    cls = CONFIGS[name]
    c = cls(2)
    for f in dataclasses.fields(cls):
        if f.name != "d_x":
            assert getattr(c, f.name) == f.default, f.name


@pytest.mark.parametrize("name", NAMES)
def test_config_is_frozen_and_hashable(name):
    c = CONFIGS[name](2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.d_z = 3
    assert hash(c) == hash(CONFIGS[name](2))
    assert dataclasses.replace(c, d_z=3).d_z == 3 and c.d_z == 2
    with pytest.raises(ValueError, match="d_z must be an integer >= 1"):
        dataclasses.replace(c, d_z=0)  # replace checks the new value


def test_a_field_without_a_rule_is_refused():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Mine(WAEMMDConfig, preset="mine"):
        width_of_something: int = 3

    with pytest.raises(TypeError, match=r"Mine.width_of_something has no check"):
        Mine(2)


def test_the_base_is_not_a_preset():
    with pytest.raises(TypeError, match="base of the preset configs.*WAEMMDConfig"):
        PresetConfig(2)


def test_values_are_stored_as_plain_python():
    c = WAEMMDConfig(
        np.int64(3),
        d_z=np.int32(4),
        hidden=np.array([16, 8]),
        lam=np.float32(0.5),
        scales=[1, 2],
        betas=[0.5, 0.9],
    )
    assert c.d_x == 3 and type(c.d_x) is int and type(c.d_z) is int
    assert c.hidden == (16, 8) and type(c.lam) is float
    assert c.scales == (1.0, 2.0) and c.betas == (0.5, 0.9)
    assert c == WAEMMDConfig(
        3, d_z=4, hidden=(16, 8), lam=0.5, scales=(1, 2), betas=(0.5, 0.9)
    )
    assert VAEConfig((8, 8)).d_x == (1, 8, 8) and VAEConfig([2]).d_x == 2


# -- round trips ---------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [2, (1, 8, 8)])
def test_round_trip_through_dict_and_json(name, shape):
    for c in (CONFIGS[name](shape), CONFIGS[name](shape, **OPTIONS[name])):
        d = c.to_dict()
        assert set(d) == {"preset", "d_x", "options"} and d["preset"] == name
        assert set(d["options"]) == set(c.options())
        assert json.loads(json.dumps(d)) == d  # plain JSON, no tuples
        assert PresetConfig.from_dict(d) == c
        assert type(c).from_dict(d) == c
        assert PresetConfig.from_json(c.to_json()) == c
        assert PresetConfig.from_dict(json.loads(json.dumps(d))) == c


def test_non_default_options_really_differ():
    # Planted check: the round trip above would be vacuous with defaults only.
    for name, opts in OPTIONS.items():
        assert CONFIGS[name](2, **opts) != CONFIGS[name](2), name


def test_from_dict_errors():
    with pytest.raises(ValueError, match="keys 'preset', 'd_x'"):
        PresetConfig.from_dict({"d_x": 2})
    with pytest.raises(ValueError, match="model must be one of wae-mmd.*got 'wae'"):
        PresetConfig.from_dict({"preset": "wae", "d_x": 2, "options": {}})
    with pytest.raises(ValueError, match="GANConfig.from_dict got a 'vae' config"):
        GANConfig.from_dict({"preset": "vae", "d_x": 2})
    with pytest.raises(ValueError, match="options of a preset config must be"):
        PresetConfig.from_dict({"preset": "vae", "d_x": 2, "options": [1]})
    bad = {"preset": "gan", "d_x": 2, "options": {"lam": 1.0}}
    with pytest.raises(ValueError, match="unknown option.*lam for model 'gan'"):
        PresetConfig.from_dict(bad)
    # a subclass reads its base's preset only through PresetConfig
    assert isinstance(VAEConfig.from_dict(BetaVAEConfig(2).to_dict()), BetaVAEConfig)


def test_a_config_from_before_an_option_existed_takes_its_default():
    # Checkpoints written before nets/conv_width existed lack them.
    old = WAEMMDConfig(2, lam=3.0).to_dict()
    del old["options"]["nets"], old["options"]["conv_width"]
    c = PresetConfig.from_dict(old)
    assert c.nets == "auto" and c.conv_width == 32 and c.lam == 3.0


# -- build ---------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_build_config_equals_build_name(name):
    opts = {**SMALL, **OPTIONS[name], "seed": 3}
    by_config = build(CONFIGS[name](2, **opts))
    by_name = build(name.replace("_", "-"), 2, **opts)
    by_function = PRESETS[name](2, **opts)
    by_dict = build(by_name.config)
    for other in (by_name, by_function, by_dict):
        assert type(other) is type(by_config)
        assert other.config == by_config.config
        assert same_weights(other, by_config)
    assert by_config.config == CONFIGS[name](2, **opts).to_dict()


def test_same_weights_sees_another_seed():
    # Planted: the comparison above can fail.
    a = build(WAEMMDConfig(2, **SMALL))
    b = build(WAEMMDConfig(2, seed=1, **SMALL))
    assert not same_weights(a, b)


def test_build_arguments_are_checked():
    with pytest.raises(
        ValueError,
        match=r"unknown option\(s\) lamda for model "
        r"'wae_mmd'; it accepts betas, .*lam, ",
    ):
        build("wae-mmd", 2, lamda=1.0)
    with pytest.raises(
        ValueError,
        match="build\\(config\\) takes no other "
        "arguments \\(got d_x, lam\\).*dataclasses.replace",
    ):
        build(WAEMMDConfig(2), 2, lam=1.0)
    with pytest.raises(ValueError, match="needs d_x.*build\\('vae', 2\\)"):
        build("vae")
    with pytest.raises(ValueError, match="model must be one of .*got 'magic'"):
        build("magic", 2)


def test_config_fields_reach_the_model():
    m = build(WAEGANConfig(2, lam=2.5, critic_lr=1e-4, generator_loss="minimax"))
    assert m.lam == 2.5 and m.penalty.generator_loss == "minimax"
    assert [g.lr for g in m.update_groups()] == [1e-4, 1e-3]
    v = build(VAEConfig(2, beta=0.5, likelihood="bernoulli"))
    assert v.lam == 0.5 and v.cost == "bernoulli"
    assert build(BetaVAEConfig(2)).config["preset"] == "beta_vae"
    assert build(WAEExactConfig(2, p=2.0)).penalty.p == 2.0
    assert build(WAESinkhornConfig(2, eps=0.3)).penalty.eps == 0.3
    assert build(FGANConfig(2, f="kl")).f == "kl"
    assert build(WGANGPConfig(2, n_critic=3)).update_groups()[0].n_updates == 3
    assert build(AVBConfig(2, noise_dim=3)).encoder.inner.noise_dim == 3


# -- the helpers ---------------------------------------------------------------
def test_check_int():
    assert v.check_int(np.int64(4), name="d_z", minimum=1) == 4
    for bad in (0, 2.0, True, "3"):
        with pytest.raises(
            ValueError,
            match=r"d_z must be an integer >= 1 \(got "
            r".*\); pass e.g. d_z=1\.",
        ):
            v.check_int(bad, name="d_z", minimum=1)
    with pytest.raises(ValueError, match=r"\(got -1\); pass e.g. 5\."):
        v.check_int(-1, name="n_critic", minimum=1, fix="; pass e.g. 5")


def test_check_float():
    assert v.check_float(np.float32(0.5), name="lr", above=0) == 0.5
    cases = [
        (dict(above=0), 0.0, r"lr must be a number > 0 \(got 0.0\); pass e.g. lr=1.0"),
        (dict(minimum=0), -1, r"lr must be a number >= 0 \(got -1\)"),
        (dict(minimum=0, below=1), 1.0, r"in \[0, 1\) \(got 1.0\); pass e.g. lr=0.5"),
        (dict(), float("nan"), r"lr must be a number \(got nan\)"),
        (dict(), "fast", r"lr must be a number \(got 'fast'\)"),
        (dict(), True, r"lr must be a number \(got True\)"),
    ]
    for bounds, bad, match in cases:
        with pytest.raises(ValueError, match=match):
            v.check_float(bad, name="lr", **bounds)


def test_check_floats():
    assert v.check_floats([1, 2.5], name="scales", above=0) == (1.0, 2.5)
    kw = dict(name="betas", length=2, minimum=0, below=1, example=(0.5, 0.999))
    for bad in (0.5, [0.5], [0.5, 1.0], [0.5, "x"], "ab", []):
        with pytest.raises(
            ValueError,
            match=r"betas must be a list of 2 numbers in "
            r"\[0, 1\) \(got .*\); pass e.g. betas=\[0.5, 0.999\]\.",
        ):
            v.check_floats(bad, **kw)


def test_check_choice():
    assert v.check_choice("mlp", name="nets", choices=("auto", "mlp")) == "mlp"
    for bad in ("cnn", 1, None):
        with pytest.raises(
            ValueError,
            match=r"nets must be one of 'auto', 'mlp' "
            r"\(got .*\); pass e.g. nets='auto'\.",
        ):
            v.check_choice(bad, name="nets", choices=("auto", "mlp"))


def test_check_widths():
    assert v.check_widths(np.array([4, 2]).tolist(), name="hidden") == (4, 2)
    with pytest.raises(
        ValueError,
        match=r"hidden must hold integers >= 1 \(got "
        r"\[4, 0\], invalid 0\); pass a list",
    ):
        v.check_widths([4, 0], name="hidden")
    with pytest.raises(
        ValueError,
        match="critic_hidden must be a sequence of integers >= 1 \\(got 64\\)",
    ):
        v.check_widths(64, name="critic_hidden")


def test_check_bool_and_optional():
    assert v.check_bool(np.bool_(True), "learn_sigma") is True
    with pytest.raises(
        ValueError,
        match=r"learn_sigma must be True or False \(got "
        r"'no'\); pass learn_sigma=True",
    ):
        v.check_bool("no", "learn_sigma")
    eps = v.check_optional(lambda x, name: v.check_float(x, name=name, above=0))
    assert eps(None, name="eps") is None and eps(2, name="eps") == 2.0
    with pytest.raises(ValueError, match="eps must be a number > 0"):
        eps(-1, name="eps")


# A sample of fields, at least one per preset and per helper.
BAD = [
    (WAEMMDConfig, "d_x", 0, r"d_x must be a point dimension d >= 1"),
    (WAEMMDConfig, "scales", [1.0, -1.0], r"scales must be a list of numbers > 0"),
    (WAEMMDConfig, "kernel", "rbf", r"kernel must be one of 'gaussian'"),
    (WAEMMDConfig, "estimator", "u", r"estimator must be one of"),
    (WAEMMDConfig, "cost", "gaussian", r"cost must be one of 'squared'"),
    (WAEMMDConfig, "encoder", "magic", r"encoder must be one of"),
    (WAEMMDConfig, "encoder_noise", -0.1, r"encoder_noise must be a number >= 0"),
    (WAEGANConfig, "prior_trick", "yes", r"prior_trick must be True or False"),
    (WAEGANConfig, "critic_hidden", [0], r"critic_hidden must hold integers >= 1"),
    (WAEGANConfig, "prior", "cauchy", r"prior must be one of"),
    (WAEGANConfig, "gradient_penalty", -1, r"gradient_penalty must be a number >= 0"),
    (AAEConfig, "critic_lr", -1e-3, r"critic_lr must be a number > 0"),
    (VAEConfig, "likelihood", "poisson", r"likelihood must be one of"),
    (VAEConfig, "decoder_sigma", 0, r"decoder_sigma must be a number > 0"),
    (BetaVAEConfig, "beta", "big", r"beta must be a number >= 0"),
    (WGANGPConfig, "n_critic", 0, r"n_critic must be an integer >= 1"),
    (WGANGPConfig, "betas", [0.0, 1.0], r"betas must be a list of 2 numbers"),
    (WAESinkhornConfig, "eps", 0.0, r"eps must be a number > 0"),
    (WAESinkhornConfig, "rel_eps", "x", r"rel_eps must be a number > 0"),
    (WAEExactConfig, "p", 0.5, r"p must be a number >= 1"),
    (WAEExactConfig, "lam", float("inf"), r"lam must be a number >= 0"),
    (AVBConfig, "noise_dim", 1.5, r"noise_dim must be an integer >= 1"),
    (AVBConfig, "learn_sigma", 1, r"learn_sigma must be True or False"),
    (GANConfig, "generator_loss", "wasserstein", r"generator_loss must be one of"),
    (GANConfig, "lr", 0, r"lr must be a number > 0"),
    (FGANConfig, "f", "tv", r"f must be one of 'kl'"),
    (FGANConfig, "seed", -1, r"seed must be an integer >= 0"),
    (FGANConfig, "nets", "cnn", r"nets must be one of 'auto', 'mlp', 'conv'"),
    (FGANConfig, "d_z", 2.5, r"d_z must be an integer >= 1"),
    (FGANConfig, "conv_width", 0, r"conv_width must be an integer >= 1"),
    (FGANConfig, "prior_std", -1.0, r"prior_std must be a number > 0"),
]


@pytest.mark.parametrize("cls, field, bad, match", BAD, ids=lambda v: str(v)[:20])
def test_a_bad_field_is_refused_by_name(cls, field, bad, match):
    opts = {} if field == "d_x" else {field: bad}
    d_x = bad if field == "d_x" else 2
    with pytest.raises(ValueError, match=match) as err:
        cls(d_x, **opts)
    assert "pass" in str(err.value) or "e.g." in str(err.value)  # a fix
    assert repr(bad)[:3] in str(err.value)  # the value received


def test_every_preset_is_in_the_sample_of_bad_fields():
    assert {c for c, _, _, _ in BAD} == set(CONFIGS.values())


# -- run directories -----------------------------------------------------------
def _trained(tmp_path, config):
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    tr = Trainer(build(config), x, batch_size=32, progress=False)
    tr.fit(2)
    return tr.save(tmp_path / "run" / "checkpoint"), tr.model


def test_run_directory_round_trip(tmp_path):
    config = WAEGANConfig(2, lam=2.0, critic_hidden=(16,), **SMALL)
    ckpt, model = _trained(tmp_path, config)
    assert load_config(tmp_path / "run") == config == load_config(ckpt)
    saved = json.loads((ckpt / "config.json").read_text())["model"]
    assert saved == config.to_dict()  # the format of config.json is unchanged
    assert same_weights(load(tmp_path / "run"), model)


def test_old_run_directory_still_loads(tmp_path):
    # A checkpoint written before nets/conv_width and with int-valued floats
    # (the old presets kept lam=2 as given): it loads as before.
    config = WAEMMDConfig(2, lam=2.0, **SMALL)
    ckpt, model = _trained(tmp_path, config)
    text = json.loads((ckpt / "config.json").read_text())
    opts = text["model"]["options"]
    del opts["nets"], opts["conv_width"]
    opts["lam"] = 2
    (ckpt / "config.json").write_text(json.dumps(text))
    assert load_config(ckpt) == config
    assert same_weights(load(ckpt), model)
    shutil.rmtree(ckpt.parent)


def test_load_config_of_a_hand_built_model(tmp_path):
    ckpt, model = _trained(tmp_path, WAEMMDConfig(2, **SMALL))
    text = json.loads((ckpt / "config.json").read_text())
    text["model"] = {}
    (ckpt / "config.json").write_text(json.dumps(text))
    with pytest.raises(ValueError, match="hand-built model: it has no preset"):
        load_config(ckpt)


# -- the command line ----------------------------------------------------------
def test_every_config_field_has_a_train_option():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    flags = {s for a in train._actions for s in a.option_strings}
    for cls in CONFIGS.values():
        for f in dataclasses.fields(cls):
            if f.name not in SKIP:
                assert f"--{f.name.replace('_', '-')}" in flags, f.name


def test_train_options_parse_to_config_fields():
    argv = [
        "train",
        "--model",
        "wae-gan",
        "--lam",
        "2",
        "--critic-hidden",
        "16",
        "16",
        "--prior-trick",
        "--betas",
        "0.5",
        "0.9",
        "--prior",
        "uniform",
    ]
    args = build_parser().parse_args(argv)
    opts = config_options(args)
    assert opts == {
        "betas": [0.5, 0.9],
        "critic_hidden": [16, 16],
        "lam": 2.0,
        "prior": "uniform",
        "prior_trick": True,
    }
    c = WAEGANConfig(2, **opts)
    assert c.critic_hidden == (16, 16) and c.prior_trick is True
    assert config_options(build_parser().parse_args(["train"])) == {}
    no = build_parser().parse_args(["train", "--no-learn-sigma"])
    assert config_options(no) == {"learn_sigma": False}


def test_train_options_reach_the_checkpoint(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(200, 3))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "run"
    flags = "--model vae --steps 2 --quiet --beta 0.5 --hidden 8 --learn-sigma"
    argv = ["train", "--data", str(tmp_path / "x.npy"), "--out", str(out)]
    argv += flags.split()
    assert main(argv) == 0
    c = load_config(out)
    assert c == VAEConfig(3, beta=0.5, hidden=(8,), learn_sigma=True)
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["config"]["model"]["beta"] == 0.5


def test_train_option_the_preset_lacks_is_one_line(tmp_path, capsys):
    argv = ["train", "--model", "gan", "--lam", "5", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown option(s) lam for model 'gan'; it accepts betas" in err
    assert main(["train", "--lam", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "lam must be a number >= 0 (got -1.0)" in capsys.readouterr().err


def test_public_names():
    for cls in CONFIGS.values():
        assert getattr(om, cls.__name__) is cls
    assert om.PresetConfig is PresetConfig and om.load_config is load_config
