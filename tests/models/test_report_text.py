"""Each preset's report says what its loss is, and nothing that does not apply.

The sentence on the relaxed transport cost (a lower bound on W_c, PAPER.md
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
