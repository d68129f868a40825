"""The time structure within a night of ZTF g/r detections, real (a tl data set's train split) against
simulated: what the v9 ZTF cadence fields of tl/surveys.py were measured from.

    python benchmarks/intra_night.py --bts /work/runs/bts [--n 6000] [--seed 0] [--out intra_night.md]

Per consecutive pair of detections of one object less than 0.5 d apart ("within a night"):
  - g/r (different bands): quantiles of the gap, and the lognormal fitted to it (mean and sd of ln);
  - same band (a repeat): the share that are k exposure slots apart (k x SLOT_SECONDS, within 15 s),
    and the quantiles of the rest;
and, per object, the share of consecutive detections on one night (same_night) among the objects
whose median gap is ~1 (0.9-1.1 d) or ~2 (1.9-2.1 d) nights: the share with same_night in
(0.3, 0.4] and the 5/50/95% quantiles.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from tl.data import read_dataset
from tl.lc_summaries import SAME_NIGHT_DAYS, positive_detections, summaries
from tl.simulate import simulate

SLOT_SECONDS = 40.3


def within_night_gaps(observations: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(gaps in days, same band?) of consecutive positive g/r detections of one object < 0.5 d apart."""
    obs = positive_detections(observations)
    same_object = obs["object_id"].to_numpy()[1:] == obs["object_id"].to_numpy()[:-1]
    band = obs["band"].to_numpy()
    gap = np.diff(obs["mjd"].to_numpy(float))
    inside = same_object & (gap < SAME_NIGHT_DAYS)
    return gap[inside], (band[1:] == band[:-1])[inside]


def gap_rows(name: str, gaps: np.ndarray, same_band: np.ndarray) -> list[str]:
    """Markdown rows: g/r gap quantiles and lognormal fit; repeats by exposure slot, and the rest."""
    quantiles = (0.05, 0.25, 0.5, 0.75, 0.95)
    pair = gaps[~same_band]
    log_pair = np.log(pair)
    repeat_seconds = gaps[same_band] * 86400
    slots = np.round(repeat_seconds / SLOT_SECONDS)
    on_slot = (slots >= 1) & (slots <= 8) & (np.abs(repeat_seconds - slots * SLOT_SECONDS) <= 15)
    counts = [int(np.sum(on_slot & (slots == k))) for k in range(1, 5)]
    rest = gaps[same_band][~on_slot]
    return [f"| {name} | {len(pair)} | {' / '.join(f'{q:.4f}' for q in np.quantile(pair, quantiles))} | "
            f"{np.exp(log_pair.mean()):.4f}, {log_pair.std():.2f} | {len(repeat_seconds)} | "
            f"{on_slot.mean():.2f} ({' / '.join(map(str, counts))}) | "
            f"{' / '.join(f'{q:.4f}' for q in np.quantile(rest, quantiles))} |"]


def pair_rows(name: str, table: pd.DataFrame) -> list[str]:
    """Markdown rows: same_night of the objects with a median gap of ~1 and ~2 nights."""
    rows = []
    for nights in (1, 2):
        shares = table.loc[(table["median_gap"] - nights).abs() <= 0.1, "same_night"]
        in_band = ((shares > 0.3) & (shares <= 0.4)).mean()
        rows.append(f"| {name} | ~{nights} | {len(shares)} | {in_band:.2f} | "
                    f"{' / '.join(f'{q:.2f}' for q in shares.quantile([0.05, 0.5, 0.95]))} |")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bts", required=True, help="a tl data set of real ZTF light curves (tl ingest bts)")
    parser.add_argument("--n", type=int, default=6000, help="simulated objects (BTS-like ZTF alert stream)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the tables to this markdown file")
    args = parser.parse_args(argv)
    real = read_dataset(args.bts)
    train = real.objects[real.objects["split"] == "train"] if "split" in real.objects else real.objects
    real_obs = real.observations[real.observations["object_id"].isin(train["object_id"])]
    sim = simulate("ztf", args.n, args.seed, bts_like=True, alerts_only=True)
    lines = ["| data | g/r gaps | g/r gap 5/25/50/75/95% (d) | lognormal median, sd of ln | same-band gaps | "
             f"share on 1-8 slots of {SLOT_SECONDS} s (1 / 2 / 3 / 4 slots) | the rest 5/25/50/75/95% (d) |",
             "|---|---|---|---|---|---|---|"]
    for name, obs in (("real (train)", real_obs), (f"simulated (seed {args.seed})", sim.observations)):
        lines += gap_rows(name, *within_night_gaps(obs))
    lines += ["", "| data | median gap (nights) | objects | same_night in (0.3, 0.4] | same_night 5/50/95% |",
              "|---|---|---|---|---|"]
    lines += pair_rows("real (train)", summaries(train, real_obs))
    lines += pair_rows(f"simulated (seed {args.seed})", summaries(sim.objects, sim.observations))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
