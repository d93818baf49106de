"""Benchmark a search's stage one: what measuring one candidate (pool, store, fidelity) costs on MNIST.

For one candidate of each kind of family in configs/search.yaml (quantisation, pooling, pooling with bits,
WebP and AVIF tiles of 1,024) the three jobs' functions run in this process on all 70,000 digits, one
thread each, as the workflow's jobs do; the time of each is printed, and what 100 candidates of the
search's mix cost on 2 cores (two jobs at once, the way `snakemake --cores 2` runs them).

Goal (issue "The cheapest recipe, searched"): 100 candidates over 70,000 digits in under 10 minutes on
2 cores.

Usage: python bench/search_stage_one.py [--mnist DIR] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from poolup import preprocess
from poolup.frontier import fidelity
from poolup.recipe import Recipe
from poolup.search import family_candidates

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import cpu_description  # noqa: E402  (bench/train.py)

REPO = Path(__file__).resolve().parent.parent
# One candidate per family of configs/search.yaml, and the family's share of its 46 candidates.
PROBES = {"bits": "bits_b2", "pool_bits": "pool_bits_b2", "avif": "avif_q30", "webp": "webp_q35", "pool": "pool_w3s2"}


def measure(raw: Path, folder: Path, case: str, spec: dict) -> dict[str, float]:
    """Seconds of the pool, store and fidelity functions for one candidate."""
    recipe = Recipe.from_case(spec)
    pooled, seconds = folder / f"{case}.pooled.h5", {}
    started = time.perf_counter()
    preprocess.pool(
        raw=raw,
        pooled=pooled,
        case=case,
        window=recipe.window,
        stride=recipe.stride,
        dtype="uint8",
        encoding=recipe.encoding(),
    )
    seconds["pool"] = time.perf_counter() - started
    started = time.perf_counter()
    preprocess.store(
        pooled=pooled,
        raw=raw,
        stored=folder / f"{case}.stored.h5",
        storage=folder / f"{case}.storage.json",
        encoding={"filter": "gzip", "level": 4},
        case=case,
    )
    seconds["store"] = time.perf_counter() - started
    started = time.perf_counter()
    fidelity(
        raw=raw, pooled=pooled, fidelity=folder / f"{case}.fidelity.json", method="linear", grid="corners", case=case
    )
    seconds["fidelity"] = time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=REPO.parent / "shared/data/mnist")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    import yaml

    print(cpu_description())
    search = yaml.safe_load((REPO / "configs/search.yaml").read_text())["search"]
    families = family_candidates(search)
    with tempfile.TemporaryDirectory(dir=args.workdir) as temporary:
        folder = Path(temporary)
        raw = folder / "raw.h5"
        preprocess.fetch_source(raw, "idx", str(args.mnist), filter_name="none")
        per_family = {}
        for family, case in PROBES.items():
            seconds = measure(raw, folder, case, families[family][case])
            per_family[family] = sum(seconds.values())
            print(f"{case:>14}: " + ", ".join(f"{step} {value:.1f} s" for step, value in seconds.items()))
    sizes = {family: len(candidates) for family, candidates in families.items()}
    total = sum(sizes.values())
    mean = sum(per_family[f] * sizes[f] for f in sizes) / total
    print(f"configs/search.yaml: {total} candidates; {mean:.1f} s of jobs per candidate on average")
    print(f"100 candidates of this mix on 2 cores: {100 * mean / 2 / 60:.1f} min (goal: under 10)")
    no_avif = sum(per_family[f] * sizes[f] for f in sizes if f != "avif") / (total - sizes["avif"])
    print(f"without AVIF: {100 * no_avif / 2 / 60:.1f} min; AVIF is {per_family['avif'] / no_avif:.1f}x the others")


if __name__ == "__main__":
    main()
