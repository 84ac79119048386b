"""Run a command; print its log lines with the seconds since the start, the peak RSS of
the command's own process and of its process tree, and a sample of RSS every 10 s, to see
which stage holds the peak. Never run by the test suite:

    python bench/rss_timeline.py aeclust run --data tiles.npy --stream ... > timeline.txt
"""

import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from scale import _rss, _tree_rss  # noqa: E402

t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
samples, done = [], threading.Event()


def sample():
    while not done.wait(0.5):
        samples.append((time.perf_counter() - t0, _rss(proc.pid), _tree_rss(proc.pid)))


threading.Thread(target=sample, daemon=True).start()
for line in proc.stdout:
    print(f"{time.perf_counter() - t0:8.1f} LOG {line.rstrip()[:120]}", flush=True)
proc.wait()
done.set()
peak = max(samples, key=lambda s: s[1])
tree = max(s[2] for s in samples)
print(f"peak main {peak[1] / 2**20:.0f} MB at {peak[0]:.1f} s; peak tree {tree / 2**20:.0f} MB")
for t, m, tr in samples[::20]:
    print(f"{t:8.1f} RSS main {m / 2**20:6.0f} MB tree {tr / 2**20:6.0f} MB")
