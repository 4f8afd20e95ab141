r"""``otgen train --nproc N``: start N training processes on this machine with torchrun.

The command becomes, with the other options forwarded unchanged,

.. code-block:: bash

    python -m torch.distributed.run --nproc-per-node N --nnodes 1 \
        --master-addr 127.0.0.1 --master-port PORT -m otgen.cli train ...

with ``PORT`` a free port of the loopback interface (the port 0 trick: the
system picks it; another program may take it before torchrun binds it, in
which case the run fails to start and can be retried). Each process runs
``otgen train`` under torchrun's environment and the
:class:`~otgen.models.train.Trainer` joins the process group from it (gloo on
the CPU, NCCL on GPUs). The exit status is torchrun's: 0 when every process
finished, 1 when one failed (its own error line says why).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["forwarded_options", "free_port", "launch", "torchrun_command"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port of ``host`` that is free now (bind port 0, read, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def torchrun_command(nproc: int, argv: Sequence[str], *, port: int) -> list[str]:
    """The torchrun command line that runs ``otgen ARGV`` in ``nproc`` processes.

    Examples
    --------
    >>> torchrun_command(2, ["train", "--steps", "10"], port=29500)[3:7]
    ['--nproc-per-node', '2', '--nnodes', '1']
    """
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(nproc),
        "--nnodes",
        "1",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        "-m",
        "otgen.cli",
        *argv,
    ]


def forwarded_options(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    *,
    drop: Sequence[str] = ("nproc",),
) -> list[str]:
    """The options of ``args`` that differ from ``parser``'s defaults, as argv.

    Flags (``store_true``) appear when set; ``--x/--no-x`` options as the one
    that gives their value; other options as ``--name VALUE`` (``--name V1
    V2 ...`` for lists) when their value is not the default; the destinations
    in ``drop`` never.

    Examples
    --------
    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("--hidden", type=int, nargs="+")
    >>> _ = p.add_argument("--learn", action=argparse.BooleanOptionalAction)
    >>> forwarded_options(p, p.parse_args(["--hidden", "8", "8", "--no-learn"]))
    ['--hidden', '8', '8', '--no-learn']
    """
    out: list[str] = []
    for action in parser._actions:  # noqa: SLF001 (argparse has no public list)
        if not action.option_strings or action.dest in (*drop, "help"):
            continue
        value = getattr(args, action.dest, action.default)
        if isinstance(action, argparse._StoreTrueAction):  # noqa: SLF001
            if value:
                out.append(action.option_strings[-1])
        elif value == action.default:
            continue
        elif isinstance(action, argparse.BooleanOptionalAction):
            yes = [o for o in action.option_strings if not o.startswith("--no-")]
            no = [o for o in action.option_strings if o.startswith("--no-")]
            out.append((yes if value else no)[0])
        elif isinstance(value, (list, tuple)):
            out += [action.option_strings[-1], *map(str, value)]
        else:
            out += [action.option_strings[-1], str(value)]
    return out


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``otgen ARGV`` in ``nproc`` processes under torchrun; its exit status.

    Each process gets ``OMP_NUM_THREADS=1`` unless it is set (torchrun's own
    default, said here so that it does not warn).
    """
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = torchrun_command(nproc, argv, port=free_port())
    return subprocess.run(cmd, env=env, check=False).returncode
