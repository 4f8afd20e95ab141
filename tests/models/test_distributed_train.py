"""Data-parallel training (otgen.models.distributed) on 2 gloo processes on the CPU.

One spawn of 2 processes runs every distributed case (it costs most of the
time); the single-process references run in the test process. The processes
use the loopback address, a port from binding port 0, one thread each, and a
60 s collective timeout; the spawn is joined with a deadline and killed past
it, so that nothing outlives the tests.
"""

import dataclasses
import datetime
import json
import os
import socket
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from otgen.models.data import get_toy
from otgen.models.distributed import (
    GlobalBatch,
    RankBlockSampler,
    rank_seed,
    shared_seed,
    world,
)
from otgen.models.launch import forwarded_options, torchrun_command
from otgen.models.penalties import SlicedPenalty
from otgen.models.presets import wae_gan, wae_mmd, wae_sinkhorn
from otgen.models.priors import GaussianPrior
from otgen.models.train import Trainer

WORLD = 2
B = 16  # batch per rank; the reference process takes WORLD * B
STEPS = 2
X = get_toy("ring8").sample(512, seed=0)
DEADLINE = 150  # seconds for the whole spawn
# float64 results of 2 ranks x b against 1 process x 2b: the bound.
TOL = 1e-6
MODELS = {"wae_mmd": wae_mmd, "wae_gan": wae_gan, "wae_sinkhorn": wae_sinkhorn}


class ReplayPrior(GaussianPrior):
    """N(0, I) whose k-th draw is this rank's block of a fixed global draw.

    The Trainer draws prior samples from a generator per rank (by design:
    ranks draw different samples). To compare 2 ranks x b with 1 process x
    2b on the same prior samples too, the k-th call draws ``world_size * n``
    points from seed 1000 + k and returns this rank's block of ``n``: the
    ranks' samples, in rank order, are the one process's samples.
    """

    def __init__(self, d_z):
        super().__init__(d_z)
        self.calls = 0

    def sample(self, n, *, generator=None, dtype=torch.float32, device="cpu"):
        rank, size = world()
        g = torch.Generator().manual_seed(1000 + self.calls)
        self.calls += 1
        z = super().sample(size * n, generator=g, dtype=dtype, device=device)
        return z[rank * n : (rank + 1) * n]


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _run_case(name, batch):
    """Terms of STEPS steps, then every gradient and parameter, in float64."""
    model = MODELS[name](2, seed=0)
    model.prior = ReplayPrior(model.prior.d_z)
    tr = Trainer(
        model, X, batch_size=batch, seed=0, dtype=torch.float64, progress=False
    )
    history = [tr.train_step() for _ in range(STEPS)]
    named = list(model.named_parameters())
    return {
        "history": history,
        "grads": {n: p.grad.clone() for n, p in named if p.grad is not None},
        "params": {n: p.detach().clone() for n, p in named},
    }


def _per_rank_penalty_case():
    """Planted defect: the penalty of each rank's own batch (gather = identity)."""
    real = GlobalBatch.gather
    GlobalBatch.gather = lambda self, t: t
    try:
        return _run_case("wae_mmd", B)
    finally:
        GlobalBatch.gather = real


def _timeless(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _resume_case(directory):
    """Train 6 steps straight, and 3 + save + resume + 3, on every rank."""

    def trainer(log=None):
        model = wae_mmd(2, encoder="implicit", seed=0)  # noise in every step
        return Trainer(
            model, X, batch_size=B, seed=0, progress=False, log_every=1, log_path=log
        )

    ck = os.path.join(directory, "ck")
    straight = trainer(os.path.join(directory, "log.jsonl"))
    straight.fit(3)
    straight.save(ck)
    straight.fit(3)
    resumed = trainer().load(ck)
    resumed.fit(3)
    wrong = trainer().load(ck)  # planted: every rank resumes rank 0's generator
    state = torch.load(os.path.join(ck, "state.pt"), weights_only=True)
    wrong.generator.set_state(state["generator"])
    wrong.fit(3)
    return {
        "same_params": torch.equal(_params(straight.model), _params(resumed.model)),
        "same_history": _timeless(straight.history) == _timeless(resumed.history),
        "wrong_same": torch.equal(_params(straight.model), _params(wrong.model)),
        "generator": straight.generator.get_state(),
    }


def _sliced_case():
    """The sliced penalty on every rank: shared directions, and per-rank ones."""
    model = wae_mmd(2, seed=0)
    model.penalty = SlicedPenalty(n_projections=4)
    tr = Trainer(model, X, batch_size=B, seed=0, progress=False)
    x = tr._next_batch()
    out = {}
    batches = {
        "shared": tr.global_batch,
        "per_rank": dataclasses.replace(tr.global_batch, generator=None),
    }
    for key, gb in batches.items():
        _, terms = model.group_loss(
            "model", x, lam=1.0, generator=tr.generator, global_batch=gb
        )
        out[key] = terms["penalty"].detach()
    return out


def _gather_case():
    """gather_batch on a Gaussian encoding: three distinct fields, a prior batch."""
    from otgen.models.nets import Encoding

    rank, _ = world()
    z = torch.full((3, 2), float(rank), requires_grad=True)
    enc = Encoding(z, z + 10, torch.full((3, 2), rank + 100.0))
    zp = torch.full((3, 2), rank + 1000.0)
    genc, gzp = Trainer(
        wae_mmd(2, seed=0), X, batch_size=B, progress=False
    ).global_batch.gather_batch(enc, zp)
    (3 * genc.z.sum()).backward()  # the same function on every rank
    return {"enc": [t.detach() for t in genc], "zp": gzp, "grad": z.grad}


def _worker(rank, size, port, directory):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        rank=rank,
        world_size=size,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        out = {name: _run_case(name, B) for name in MODELS}
        out["per_rank_penalty"] = _per_rank_penalty_case()
        out["resume"] = _resume_case(directory)
        out["sliced"] = _sliced_case()
        out["gather"] = _gather_case()
        data = torch.utils.data.TensorDataset(X)
        out["dataset_first_batch"] = Trainer(
            wae_mmd(2, seed=0), data, batch_size=B, seed=0, progress=False
        )._next_batch()
        out["x_first_batch"] = Trainer(
            wae_mmd(2, seed=0), X, batch_size=B, seed=0, progress=False
        )._next_batch()
        torch.save(out, os.path.join(directory, f"rank{rank}.pt"))
        dist.barrier()  # nobody leaves while a peer still talks to it
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(fn, *args, nprocs=WORLD, deadline=DEADLINE):
    """Run ``fn(rank, nprocs, port, *args)`` in ``nprocs`` processes, or fail."""
    ctx = mp.spawn(fn, args=(nprocs, _free_port(), *args), nprocs=nprocs, join=False)
    end = time.monotonic() + deadline
    while not ctx.join(timeout=max(0.0, end - time.monotonic())):
        if time.monotonic() > end:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            pytest.fail(f"the {nprocs} processes did not finish in {deadline} s")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp")
    spawn(_worker, str(d))
    out = [torch.load(d / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    out[0]["directory"] = d
    return out


@pytest.fixture(scope="module")
def reference():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {name: _run_case(name, WORLD * B) for name in MODELS}
    finally:
        torch.set_num_threads(n)


def _max_rel_err(got, ref):
    """max |got - ref| / max(1, max |ref|) over a dict of tensors (or a tensor)."""
    if isinstance(ref, dict):
        assert got.keys() == ref.keys()
        return max(_max_rel_err(got[k], ref[k]) for k in ref)
    ref = torch.as_tensor(ref, dtype=torch.float64)
    got = torch.as_tensor(got, dtype=torch.float64)
    return float((got - ref).abs().max() / max(1.0, float(ref.abs().max())))


def _terms(history):
    return {
        f"{i}/{k}": v for i, h in enumerate(history) for k, v in h.items() if k != "lam"
    }


@pytest.mark.parametrize("name", list(MODELS))
def test_two_ranks_of_b_equal_one_process_of_2b(ranks, reference, name):
    ref = reference[name]
    errs = []
    for r in range(WORLD):
        got = ranks[r][name]
        errs.append(_max_rel_err(got["grads"], ref["grads"]))
        # the loss and its terms (means over the ranks), step by step
        assert _max_rel_err(_terms(got["history"]), _terms(ref["history"])) < TOL
        # every parameter's gradient of the last step, then the parameters
        assert _max_rel_err(got["grads"], ref["grads"]) < TOL
        assert _max_rel_err(got["params"], ref["params"]) < TOL
    assert ref["grads"].keys() == dict(ranks[0][name]["params"]).keys()
    print(f"{name}: max relative gradient error {max(errs):.1e}")  # noqa: T201


def test_the_comparison_catches_the_mean_of_per_rank_penalties(ranks, reference):
    # Planted defect: each rank's MMD on its own 16 codes, averaged by DDP,
    # is another estimator than the MMD of the 32 codes (the pairs across
    # ranks are missing): the same comparison as above must reject it by far.
    got, ref = ranks[0]["per_rank_penalty"], reference["wae_mmd"]
    assert _max_rel_err(got["grads"], ref["grads"]) > 1e3 * TOL
    pen = [h["model/penalty"] for h in got["history"]]
    ref_pen = [h["model/penalty"] for h in ref["history"]]
    assert abs(pen[0] - ref_pen[0]) > 1e3 * TOL * abs(ref_pen[0])
    # the reconstruction term of the first step does not depend on it
    rec = got["history"][0]["model/reconstruction"]
    assert rec == pytest.approx(ref["history"][0]["model/reconstruction"], rel=TOL)


def test_ranks_split_one_permutation_and_draw_their_own_noise(ranks):
    one = Trainer(wae_mmd(2, seed=0), X, batch_size=WORLD * B, seed=0, progress=False)
    both = torch.cat([ranks[r]["x_first_batch"] for r in range(WORLD)])
    assert torch.equal(both, one._next_batch())  # the same 2b points, in order
    g0, g1 = (ranks[r]["resume"]["generator"] for r in range(WORLD))
    assert not torch.equal(g0, g1)  # each rank its own stream of noise
    assert rank_seed(5, 0) == 5 and len({rank_seed(5, r) for r in range(8)}) == 8
    assert shared_seed(5) not in {rank_seed(5, r) for r in range(8)}


def test_resume_on_two_ranks_is_bit_for_bit(ranks):
    for r in range(WORLD):
        res = ranks[r]["resume"]
        assert res["same_params"] and res["same_history"]
        # planted: rank 1 resumed with rank 0's generator goes elsewhere
        assert not res["wrong_same"]


def test_rank_zero_alone_writes_the_log_and_checkpoint(ranks):
    d = ranks[0]["directory"]
    lines = (d / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4, 5, 6]
    state = torch.load(d / "ck" / "state.pt", weights_only=True)
    assert len(state["rank_generators"]) == WORLD
    config = json.loads((d / "ck" / "config.json").read_text())
    assert config["trainer"]["world_size"] == WORLD
    # one process refuses the 2-process checkpoint unless told otherwise
    model = wae_mmd(2, encoder="implicit", seed=0)
    tr = Trainer(model, X, batch_size=B, seed=0, progress=False, log_every=1)
    with pytest.raises(ValueError, match="written by 2 process.es. and this trainer"):
        tr.load(d / "ck")
    assert tr.load(d / "ck", override=["world_size"]).step == 3


def test_the_sliced_penalty_uses_directions_shared_by_the_ranks(ranks):
    shared = [ranks[r]["sliced"]["shared"] for r in range(WORLD)]
    per_rank = [ranks[r]["sliced"]["per_rank"] for r in range(WORLD)]
    assert torch.equal(shared[0], shared[1])  # one global value
    assert not torch.equal(per_rank[0], per_rank[1])  # planted: rank generators


def test_gather_batch_concatenates_every_field_in_rank_order(ranks):
    for r in range(WORLD):
        got = ranks[r]["gather"]
        rows = torch.arange(WORLD, dtype=torch.float32).repeat_interleave(3)[:, None]
        z, mean, logvar = got["enc"]
        assert torch.equal(z, rows.expand(-1, 2))
        assert torch.equal(mean, z + 10) and torch.equal(logvar, z + 100)
        assert torch.equal(got["zp"], z + 1000)
        # each rank's rows get the gradients of every rank's copy: 3 + 3
        assert torch.equal(got["grad"], torch.full((3, 2), 6.0))


def test_a_dataset_is_split_into_rank_blocks(ranks):
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    for r in range(WORLD):
        block = perm[r * B : (r + 1) * B]
        assert torch.equal(ranks[r]["dataset_first_batch"], X[block])


def test_rank_block_sampler_splits_each_global_batch():
    blocks = [
        list(RankBlockSampler(10, 2, r, 2, torch.Generator().manual_seed(0)))
        for r in range(2)
    ]
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0)).tolist()
    assert blocks[0] == perm[0:2] + perm[4:6] and blocks[1] == perm[2:4] + perm[6:8]
    assert len(RankBlockSampler(10, 2, 0, 2, torch.Generator())) == 4


def test_one_process_is_unchanged_by_the_distributed_code():
    # One process: rank 0, the run seed, no DDP, the identity gather.
    tr = Trainer(wae_mmd(2, seed=0), X, batch_size=B, seed=3, progress=False)
    assert (tr.rank, tr.world_size) == (0, 1) and "world_size" not in tr.options
    g = torch.Generator().manual_seed(3)
    assert torch.equal(tr.generator.get_state(), g.get_state())
    t = torch.randn(3, 2)
    assert tr.global_batch.gather(t) is t and tr.global_batch.generator is None


def test_nproc_forwards_the_other_options_to_torchrun():
    from otgen.cli import build_parser

    argv = ["train", "--nproc", "2", "--steps", "7", "--float64", "--out", "r"]
    args = build_parser().parse_args(argv)
    fwd = forwarded_options(args.parser, args)
    assert fwd == ["--steps", "7", "--out", "r", "--float64"]
    cmd = torchrun_command(2, ["train", *fwd], port=1234)
    joined = " ".join(cmd)
    assert "-m torch.distributed.run --nproc-per-node 2" in joined
    assert "--master-addr 127.0.0.1 --master-port 1234 -m otgen.cli train" in joined
    assert "--nproc" not in cmd[cmd.index("otgen.cli") :]


@pytest.mark.slow  # torchrun, 2 processes, a report: 20-25 s on the 2-core machine
def test_otgen_train_nproc_2_end_to_end(tmp_path, monkeypatch):
    import functools
    import subprocess

    from otgen.cli import main

    # torchrun and its processes stop by themselves: a deadline on the launch
    run = functools.partial(subprocess.run, timeout=DEADLINE)
    monkeypatch.setattr("otgen.models.launch.subprocess.run", run)

    pts = np.random.default_rng(0).normal(size=(800, 2))
    data = tmp_path / "pts.npy"
    np.save(data, pts)
    out = tmp_path / "run"
    argv = ["train", "--nproc", "2", "--data", str(data), "--steps", "4"]
    argv += ["--out", str(out), "--quiet", "--checkpoint-every", "2"]
    assert main(argv) == 0
    assert (out / "report.md").is_file() and (out / "metrics.json").is_file()
    config = json.loads((out / "checkpoint" / "config.json").read_text())
    assert config["step"] == 4 and config["trainer"]["world_size"] == 2
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["step"] == 4


def test_errors_name_the_problem_and_the_fix(monkeypatch, capsys):
    from otgen.cli import main
    from otgen.models.base import GenerativeModel
    from otgen.models.distributed import setup_process_group
    from otgen.models.train import _check_data_parallel

    class Old(GenerativeModel):  # a hand-built model without global_batch
        def group_loss(self, group, x, *, lam, generator=None):
            raise NotImplementedError

    with pytest.raises(ValueError, match="takes no global_batch argument"):
        _check_data_parallel(Old())
    for key in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="MASTER_ADDR, MASTER_PORT not set"):
        setup_process_group(torch.device("cpu"))
    assert not dist.is_initialized()
    assert main(["train", "--nproc", "2"]) == 2
    assert "already started by torchrun (WORLD_SIZE=2); drop --nproc" in (
        capsys.readouterr().err
    )


def test_nproc_forwards_the_model_options_unchanged():
    # otgen train --nproc N re-runs `otgen train` with the options it was
    # given: lists and --x/--no-x flags of the config fields included.
    import argparse

    from otgen.models import cli
    from otgen.models.config_cli import config_options
    from otgen.models.launch import forwarded_options

    ap = argparse.ArgumentParser()
    cli.register(ap.add_subparsers())
    given = ["--hidden", "64", "32", "--no-learn-sigma", "--lam", "3", "--steps", "7"]
    a = ap.parse_args(["train", "--nproc", "2", *given])
    b = ap.parse_args(["train", *forwarded_options(a.parser, a)])
    assert (
        config_options(b)
        == config_options(a)
        == {
            "hidden": [64, 32],
            "lam": 3.0,
            "learn_sigma": False,
        }
    )
    assert b.steps == 7 and b.nproc == 1
