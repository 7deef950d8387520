"""How many review model calls a large PR needs: packed chunks vs one call per file (the naive baseline).

Run: python bench/review_bench.py
"""

from __future__ import annotations

import random
import time

from agent_runner.github.records import FileDiff
from agent_runner.review.reviewer import split_diff

BUDGET = 40_000  # GitHubConfig.review_chunk_chars default


def synthetic_pr(n_files: int, *, seed: int = 7) -> list[FileDiff]:
    """Return files with log-normally sized patches (most small, a few huge), plus a few binaries."""
    rng = random.Random(seed)
    files = []
    for i in range(n_files):
        if i % 50 == 0:
            files.append(FileDiff(f"assets/img{i}.png", "added", None))
            continue
        n_lines = max(1, int(rng.lognormvariate(3.0, 1.4)))
        hunks = "".join(
            f"@@ -{k * 40 + 1},3 +{k * 40 + 1},4 @@\n a\n+{'x' * 60}\n b\n c\n"
            for k in range(n_lines // 4 + 1)
        )
        files.append(FileDiff(f"src/mod{i}.py", "modified", hunks))
    return files


def main() -> None:
    for n_files in (20, 200, 1000):
        files = synthetic_pr(n_files)
        start = time.perf_counter()
        chunks, reviewed, skipped = split_diff(files, BUDGET)
        seconds = time.perf_counter() - start
        naive = sum(1 for f in files if f.patch)  # one call per file with a text diff
        fill = sum(map(len, chunks)) / (len(chunks) * BUDGET) if chunks else 0.0
        ratio = naive / max(len(chunks), 1)
        print(
            f"{n_files:5d} files: {len(chunks):4d} calls vs {naive:4d} naive (x{ratio:.1f} fewer),", end=" "
        )
        print(f"chunks {fill:.0%} full, {len(reviewed)} reviewed, {len(skipped)} named as skipped,", end=" ")
        print(f"split in {seconds * 1000:.1f} ms")


if __name__ == "__main__":
    main()
