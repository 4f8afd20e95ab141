"""Each preset's report says what its loss is, and nothing that does not apply.

The sentence on the relaxed transport cost (a lower bound on W_c, docs/paper.md
Prop. P1) belongs to WAEs with a divergence penalty only; a VAE's loss is a
negative ELBO (its reconstruction a negative log-likelihood, not a cost); a
GAN has no reconstruction at all.
"""

import pytest
import torch

from otgen.models.metrics import evaluate
from otgen.models.presets import PRESETS, build
from otgen.models.report import metrics_table, objective_sentence, write_report

RELAXED = "relaxed) transport cost D_POT"
ELBO = "negative ELBO"
WAES = {"wae_mmd", "wae_sinkhorn", "wae_exact"}
ELBOS = {"vae", "beta_vae", "avb"}
ADVERSARIAL = {"wae_gan", "aae"}
GANS = {"gan", "fgan", "wgan_gp"}


def test_every_preset_has_a_kind():
    assert WAES | ELBOS | ADVERSARIAL | GANS == set(PRESETS)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_report_holds_only_the_sentences_that_apply(preset, tmp_path):
    model = build(preset, 2, seed=0)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    metrics = evaluate(model, x[:32], x[32:], seed=0)
    path = write_report(
        tmp_path,
        title=preset,
        metrics=metrics,
        settings={"model": model.config},
        figures={},
        timings={},
    )
    text = path.read_text()
    table = metrics_table(metrics, model.config)
    assert (RELAXED in text) == (preset in WAES)
    assert ("| relaxed cost |" in table) == (preset in WAES)
    assert ("| negative ELBO |" in table) == (preset in ELBOS)
    assert (ELBO in text) == (preset in ELBOS)
    assert ("negative log-likelihood" in table) == (preset in ELBOS)
    assert ("adversarial" in text) == (preset in ADVERSARIAL)
    assert ("W_1, not W_2" in text) == (preset == "wgan_gp")
    assert ("2 JS - log 4" in text) == (preset == "gan")
    if preset in ELBOS:  # a likelihood is not a cost
        assert "cost c(x" not in table and "recon_scale*rec" not in table
    if preset in GANS:  # no encoder: no reconstruction rows
        assert "reconstruction" not in table and "relaxed" not in text
    assert text.count("W2 above is computed exactly") == 1


def test_unknown_model_gets_no_sentence():
    assert objective_sentence(None) == ""
    assert objective_sentence({"preset": "my_net", "options": {}}) == ""
    # without a config the rows keep their generic names
    assert "| relaxed cost |" in metrics_table({"relaxed_cost": 1.0})


def test_wae_sentence_names_its_cost():
    s = objective_sentence(build("wae_exact", 2).config)
    assert "c = euclidean" in s
    assert "c = squared" in objective_sentence(build("wae_mmd", 2).config)
    bern = build("vae", 2, likelihood="bernoulli").config
    assert "Bernoulli negative log-likelihood" in objective_sentence(bern)


def _failed(**kw):
    base = {"check_indistinguishable": False, "check_z": 5.0, "n_modes": 8}
    return {**base, **kw}


def test_diagnosis_names_how_a_failed_model_differs():
    from otgen.models.report import diagnosis

    ok = {"check_indistinguishable": True, "modes_covered": 1, "n_modes": 8}
    assert diagnosis(ok) == ""  # a pass has no diagnosis, whatever the modes
    assert diagnosis({}) == ""  # no check run
    lost = _failed(modes_covered=3, high_quality=0.07, max_mode_mass_error=0.1)
    assert diagnosis(lost) == (
        "most samples off the modes: 93% lie more than 3 sigma from every "
        "centre; 3 of 8 modes covered"
    )
    collapse = _failed(modes_covered=2, high_quality=0.99, max_mode_mass_error=0.3)
    assert diagnosis(collapse).startswith("mode collapse: 2 of 8")
    assert diagnosis(_failed(modes_covered=7)).startswith("modes dropped: 7 of 8")
    smeared = _failed(modes_covered=8, high_quality=0.64, max_mode_mass_error=0.0)
    assert "smeared" in diagnosis(smeared) and "36%" in diagnosis(smeared)
    unequal = _failed(modes_covered=8, high_quality=0.99, max_mode_mass_error=0.1)
    assert diagnosis(unequal).startswith("unequal mode masses")
    close = _failed(modes_covered=8, high_quality=0.99, max_mode_mass_error=0.01)
    assert diagnosis(close) == "W2 above the floor's spread (5.0 floor sds)"
    no_modes = {"check_indistinguishable": False, "check_z": 3.0}
    assert diagnosis(no_modes) == "W2 above the floor's spread (3.0 floor sds)"


def test_failed_check_is_said_in_words_with_the_budget(tmp_path):
    metrics = {
        "check_verdict": "NOT indistinguishable from ring8 at m = 10",
        "check_m": 10,
        "check_replicates": 19,
        "check_level": 0.05,
        **_failed(modes_covered=1, high_quality=0.9, max_mode_mass_error=0.8),
    }
    text = write_report(
        tmp_path,
        title="t",
        metrics=metrics,
        settings={"steps": 2000, "model": build("gan", 2).config},
        figures={},
        timings={},
    ).read_text()
    assert "**The model fails its check after 2000 training steps: mode " in text
    passed = {**metrics, "check_indistinguishable": True}
    text = write_report(
        tmp_path, title="t", metrics=passed, settings={}, figures={}, timings={}
    ).read_text()
    assert "fails its check" not in text


def test_compare_verdicts_say_which_models_fail():
    from otgen.models.compare import _verdicts

    good = {"check_indistinguishable": True}
    bad = _failed(modes_covered=1)
    lines = _verdicts({"wae-mmd": [good, good], "gan": [good, bad]}, 2000)
    assert lines[2] == "- wae-mmd: passes the check on all 2 seeds at 2000 steps"
    assert lines[3].startswith("- gan: **fails** the check on 1 of 2 seeds at 2000")
    assert "mode collapse: 1 of 8" in lines[3]
    assert _verdicts({"x": [{"w2_generated": 1.0}]}, 10) == []  # no law: no check
