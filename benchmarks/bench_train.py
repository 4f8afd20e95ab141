"""Training speed and time to quality: conv WAE-MMD on scikit-learn's digits.

The main job on real data (``otgen train --data digits``): the same split
(seed 0: 1079 training images, 359 held out), model (``build("wae-mmd",
(8, 8), d_z=8)``, conv nets) and batch (100). Per device (CPU; CUDA too when
available, with and without AMP) it prints

- steps per second (median over blocks of ``--block`` steps);
- the time and step at which the held-out reconstruction error first reaches
  PCA's with the same 8 components (the quality target), checked every
  ``--block`` steps (evaluation time excluded);
- the final held-out error, PCA's, their ratio, the MMD test p-value and the
  Frechet distance against its floor.

With ``--peers``, pythae's ``WAE_MMD`` (Chadebec et al., 2022) trains the
same conv nets (fresh copies of otgen's, same initial weights) on the same
split and batch, through pythae's own ``BaseTrainer.train_step`` (its epoch
loop; its per-epoch bookkeeping, evaluation and checkpoints are left out of
the time), on the same thread count, twice:

- ``pythae defaults``: ``WAE_MMD_Config(input_dim, latent_dim=8)`` and
  ``BaseTrainerConfig`` defaults (IMQ at 7 scales, ``reg_weight=3e-2``, Adam
  at 1e-4), batch 100;
- ``pythae, otgen's settings``: otgen's defaults spelled in pythae's terms
  (one IMQ scale, ``reg_weight=10``, Adam at 1e-3 with betas (0.5, 0.999)).

Steps are counted as optimiser updates (pythae's last batch of an epoch holds
79 images). pythae is an optional peer: ``pip install --no-deps pythae
imageio`` (its other requirements, pydantic 2 and cloudpickle, are usually
there); without it ``--peers`` says so and runs otgen alone.

    python benchmarks/bench_train.py                 # 4000 steps, CPU (+ CUDA)
    python benchmarks/bench_train.py --steps 1000 --devices cpu
    python benchmarks/bench_train.py --devices cpu --peers
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _harness import fmt, machine_info, print_table, save

from otgen.models import Trainer, build, image_metrics, load_data
from otgen.models.image_metrics import (
    model_reconstruction_error,
    pca_reconstruction_error,
)


def split(seed: int = 0):
    """The split of ``otgen train --data digits`` (held-out sets of n // 5)."""
    x = load_data("digits")
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(x)))
    x = x[perm]
    m = len(x) // 5
    return x[2 * m :], x[:m], x[m : 2 * m]


def run(device: str, amp: bool, steps: int, block: int, threads: int) -> dict:
    train, held, held2 = split()
    pca = pca_reconstruction_error(train, held, 8)
    model = build("wae-mmd", (8, 8), d_z=8, seed=0)
    tr = Trainer(
        model,
        train,
        batch_size=100,
        device=device,
        amp=amp,
        num_threads=threads,
        progress=False,
    )
    rates, t_train, reached = [], 0.0, None
    while tr.step < steps:
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        tr.fit(min(block, steps - tr.step))
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        t_train += dt
        rates.append(block / dt)
        err = model_reconstruction_error(model, held)
        if reached is None and err <= pca:
            reached = (tr.step, t_train)
    model.float()
    metrics = image_metrics(model.cpu(), train, held, held2)
    return {
        "device": device + (" amp" if amp else "") + ", otgen",
        "steps/s": statistics.median(rates),
        "train s": t_train,
        "steps to PCA": reached[0] if reached else None,
        "s to PCA": reached[1] if reached else None,
        "recon": metrics["recon_model"],
        "PCA": metrics["recon_pca"],
        "recon/PCA": metrics["recon_model"] / metrics["recon_pca"],
        "MMD p": metrics["mmd_p_value"],
        "Frechet": metrics["frechet"],
        "floor": metrics["frechet_floor"],
    }


def _pythae_nets(model):
    """otgen's encoder and decoder behind pythae's network interface."""
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return ModelOutput(embedding=self.net(x).mean)

    class Decoder(BaseDecoder):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z))

    return Encoder(model.encoder), Decoder(model.decoder)


def run_pythae(tuned: bool, steps: int, block: int, threads: int) -> dict:
    """pythae's WAE-MMD on otgen's nets, split and batch (see the docstring)."""
    import os
    import tempfile

    os.environ.setdefault("TQDM_DISABLE", "1")  # pythae's per-epoch bars
    from pythae.data.datasets import BaseDataset
    from pythae.models import WAE_MMD, WAE_MMD_Config
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    from otgen.models.image_metrics import frechet_distance
    from otgen.ot.mmd import mmd_test

    torch.set_num_threads(threads)
    train, held, held2 = split()
    pca = pca_reconstruction_error(train, held, 8)
    ours = build("wae-mmd", (8, 8), d_z=8, seed=0)  # same initial weights
    encoder, decoder = _pythae_nets(ours)
    kw = dict(reg_weight=10.0, scales=[1.0]) if tuned else {}
    model = WAE_MMD(
        WAE_MMD_Config(input_dim=(1, 8, 8), latent_dim=8, **kw), encoder, decoder
    )
    opt = dict(learning_rate=1e-3, optimizer_params={"betas": (0.5, 0.999)})
    with tempfile.TemporaryDirectory() as out:
        cfg = BaseTrainerConfig(
            output_dir=out,
            per_device_train_batch_size=100,
            no_cuda=True,
            **(opt if tuned else {}),
        )
        trainer = BaseTrainer(
            model, BaseDataset(train, torch.zeros(len(train))), training_config=cfg
        )
        trainer.prepare_training()
        per_epoch = len(trainer.train_loader)
        rates, t_train, reached, done, epoch = [], 0.0, None, 0, 0
        while done < steps:
            epoch += 1
            t0 = time.perf_counter()
            trainer.train_step(epoch)
            dt = time.perf_counter() - t0
            t_train += dt
            done += per_epoch
            rates.append(per_epoch / dt)
            if reached is None and done % block < per_epoch:
                err = _pythae_recon(model, held)
                if err <= pca:
                    reached = (done, t_train)
    model.eval()
    err = _pythae_recon(model, held)
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        z = torch.randn(len(held), 8, generator=g)
        gen = model.decoder(z)["reconstruction"]
    test = mmd_test(gen.flatten(1), held.flatten(1), n_permutations=500, seed=0)
    # the rate over blocks of about ``block`` steps, as for otgen
    k = max(1, block // per_epoch)
    blocks = [k / sum(1 / r for r in rates[i : i + k]) for i in range(0, len(rates), k)]
    return {
        "device": "cpu, pythae " + ("otgen's settings" if tuned else "defaults"),
        "steps/s": statistics.median(blocks),
        "train s": t_train,
        "steps to PCA": reached[0] if reached else None,
        "s to PCA": reached[1] if reached else None,
        "recon": err,
        "PCA": pca,
        "recon/PCA": err / pca,
        "MMD p": float(test.p_value),
        "Frechet": frechet_distance(gen, held),
        "floor": frechet_distance(held2, held),
    }


@torch.no_grad()
def _pythae_recon(model, held: torch.Tensor) -> float:
    """Held-out squared error, as ``model_reconstruction_error`` for otgen."""
    model.eval()
    rec = model.decoder(model.encoder(held).embedding)["reconstruction"]
    model.train()
    return float(((rec - held).flatten(1).double() ** 2).sum(1).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--block", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (1)")
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    ap.add_argument("--peers", action="store_true", help="pythae's WAE-MMD too")
    ap.add_argument("--name", default="bench_train")
    args = ap.parse_args()
    cases = []
    for dev in args.devices:
        if dev == "cuda" and not torch.cuda.is_available():
            print("cuda: no GPU here, skipped")  # noqa: T201
            continue
        cases += [(dev, False)] + ([(dev, True)] if dev == "cuda" else [])
    rows = [run(d, a, args.steps, args.block, args.threads) for d, a in cases]
    if args.peers:
        try:
            import pythae  # noqa: F401
        except ImportError:
            print("pythae is not installed: no peer rows (see the docstring)")  # noqa: T201
        else:
            rows += [
                run_pythae(t, args.steps, args.block, args.threads)
                for t in (False, True)
            ]
    columns = list(rows[0]) if rows else []
    print_table(
        [
            {k: (fmt(v) if isinstance(v, float) else v) for k, v in r.items()}
            for r in rows
        ],
        columns,
    )
    save(args.name, rows, {"args": vars(args), "machine": machine_info()})


if __name__ == "__main__":
    main()
