"""Under torchrun only one rank draws progress bars, the selector's phases included (two gloo
processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")
pytest.importorskip("tqdm")

WORKER = textwrap.dedent(
    """
    import sys
    import torch.distributed as dist
    from iterit.utils.progress import phase_progress, progress
    dist.init_process_group("gloo")
    for _ in progress(range(5), desc="rank-bar", enabled=True):
        pass
    with phase_progress(enabled=True) as report:
        assert (report is None) == (dist.get_rank() != 0)
    dist.barrier()
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_one_rank_prints(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node=2",
            "--master-port=29533",
            str(script),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # tqdm redraws the bar; count the ranks that drew one, by their first frame ("  0%").
    assert run.stderr.count("rank-bar:   0%") == 1, run.stderr[-3000:]
