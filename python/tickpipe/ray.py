"""Run a tickpipe cluster job on Ray: plan once, then every map task and every reduce task as
Ray tasks, placed and retried by Ray.

The job writes the same data, quarantine and ledger as ``tickpipe.run`` on one machine (see
the README's "Running on a cluster"). Every node runs the ``tickpipe`` binary and needs the
inputs and ``job`` on a shared filesystem. Ray is imported only when :func:`run` is called.

    import tickpipe.ray
    ledger = tickpipe.ray.run(["/shared/ticks"], "/shared/job", map_tasks=8, reduce_tasks=4)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Sequence, Union

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["run", "find_binary"]


def find_binary(binary: PathLike | None = None) -> str:
    """The ``tickpipe`` executable: ``binary``, else ``$TICKPIPE_BIN``, else ``tickpipe`` on
    ``PATH``; raises ``FileNotFoundError`` naming what was tried."""
    for candidate in (binary, os.environ.get("TICKPIPE_BIN"), shutil.which("tickpipe")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise FileNotFoundError(
        "no tickpipe binary: pass binary=..., set TICKPIPE_BIN, or put tickpipe on PATH"
    )


def _check(cmd: list[str], ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in ok:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}"
        )
    return done


def run(
    inputs: PathLike | Sequence[PathLike],
    job: PathLike,
    map_tasks: int = 1,
    reduce_tasks: int = 1,
    config: PathLike | None = None,
    binary: PathLike | None = None,
    num_cpus: float = 1,
    max_retries: int = 2,
    shuffle_compression: str = "none",
) -> dict[str, Any]:
    """Plans the job into ``job``, runs its map tasks, then its reduce tasks, on the Ray
    cluster ``ray.init()`` connects to (started locally when none is running); returns the
    job's ledger (``job/_ledger.json``), with ``files_failed`` (``"file: error"`` lines) when
    inputs failed as corrupt files fail in one run, and ``quality`` (``verdict`` and
    ``path`` of ``job/quality.json``, the job's data-quality report) when validation ran. A failed task is retried by Ray: map
    tasks are idempotent, and a reduce task replaces what an earlier attempt published.
    ``shuffle_compression`` (``"none"``, ``"lz4"`` or ``"zstd"``) is how map tasks compress
    the rows they shuffle: uncompressed is fastest where the shared filesystem keeps up."""
    import ray

    exe = find_binary(binary)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    job = str(job)
    plan = [exe, "plan", *map(str, inputs), "--out", job]
    plan += ["--map-tasks", str(map_tasks), "--reduce-tasks", str(reduce_tasks), "-q"]
    plan += ["--shuffle-compression", shuffle_compression]
    if config is not None:
        plan += ["--config", str(config)]
    _check(plan)
    with open(os.path.join(job, "_plan.json"), encoding="utf-8") as f:
        planned = json.load(f)
    maps = len(planned["map_groups"])
    reduces = int(planned["reduce_tasks"])

    if not ray.is_initialized():
        ray.init()

    @ray.remote(num_cpus=num_cpus, max_retries=max_retries)
    def task(phase: str, index: int) -> list[str]:
        # A reduce task exits 1 when an input failed in its map task (a corrupt file): the
        # task is complete, as `tickpipe run` is when a file fails; the failures are kept.
        ok = (0, 1) if phase == "reduce" else (0,)
        done = _check([exe, phase, "--plan", job, "--task", str(index), "-q"], ok)
        prefix = "  failed: "
        return [
            line[len(prefix):] for line in done.stderr.splitlines() if line.startswith(prefix)
        ]

    ray.get([task.remote("map", i) for i in range(maps)])
    failed = [f for fs in ray.get([task.remote("reduce", j) for j in range(reduces)]) for f in fs]
    with open(os.path.join(job, "_ledger.json"), encoding="utf-8") as f:
        ledger = json.load(f)
    if failed:
        ledger["files_failed"] = failed
    quality = os.path.join(job, "quality.json")
    if os.path.exists(quality):
        with open(quality, encoding="utf-8") as f:
            ledger["quality"] = {"verdict": json.load(f)["verdict"], "path": quality}
    return ledger
