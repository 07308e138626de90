"""Running Python code in a fresh interpreter, as a user's program would (import rules,
missing optional packages)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from iterit.utils.distributed import STILL_HELD
from tests.helpers.shared import ROOT


def default_sigint() -> None:
    """``preexec_fn`` giving the child the default SIGINT disposition.  A suite started from a
    background job (``cmd &`` in a shell without job control) runs with SIGINT ignored, and an
    ignored signal stays ignored across ``exec`` (``restore_signals`` only resets SIGPIPE and
    SIGXFSZ), so a Python child would never see Ctrl-C; with the default disposition Python
    installs its KeyboardInterrupt handler as it does in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_without(blocked: list[str], code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where importing ``blocked`` fails as if absent."""
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


#: Seconds before a two-process run counts as hung (a collective mismatch hangs forever).  A
#: run takes 20-60 s alone on 2 cores; 153 s was seen with other jobs beside it, and 300 s was
#: once exceeded on a loaded machine, so the limit only catches hangs.
TWO_PROCESS_TIMEOUT_S = 900


def run_two_ranks(
    script: str, out: Path, timeout: float = TWO_PROCESS_TIMEOUT_S
) -> tuple[dict, dict]:
    """Runs ``script`` on two CPU processes with ``torch.distributed.run`` (one thread each),
    the template's ``{root}`` the repository and ``{out}`` the folder ``out``; each rank writes
    ``rank<r>.json`` there, returned as (rank 0's, rank 1's)."""
    path = out / "two_ranks.py"
    # The script runs as a program's main() would, so its trainer is released when it returns;
    # then each rank leaves the process group, which joins gloo's worker threads while the
    # interpreter is whole (docs/design.md, "Leaving the process group"): a group left to the
    # teardown, or still held by a DDP model, aborts the process now and then, its work done.
    body = textwrap.indent(script.format(root=str(ROOT), out=str(out)), "    ")
    done = "\nmain()\nfrom iterit.utils.distributed import shutdown\nshutdown()\n"
    path.write_text("def main():\n" + body + done)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*cmd, str(path)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert STILL_HELD not in proc.stderr, proc.stderr[-4000:]  # the group was destroyed
    r0, r1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    return r0, r1
