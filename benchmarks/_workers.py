"""One side-by-side benchmark run in a fresh subprocess (shared by the scripts that time us against a peer)."""
from __future__ import annotations

import json
import os
import subprocess


def run_worker(cmd: list[str], env: dict[str, str], what: str) -> dict:
    """Run ``cmd``; return the JSON after its last ``RESULT `` stdout line plus the 1-minute load before / after."""
    load_before = os.getloadavg()[0]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"{what} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    res = json.loads(line[-1][len("RESULT "):])
    res.update(load1_before=load_before, load1_after=os.getloadavg()[0])
    return res
