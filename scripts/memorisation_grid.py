"""Train chapter 11's memorisation grid into the experiment cache (and, with GENAI_STORE=1, into
book/stored_runs): pairs of diffusion models on disjoint halves of Fashion-MNIST, N images each, the same
steps for every N. The extremes of N first, so that a partial run already shows the two ends.

    GENAI_STORE=1 GENAI_CACHE=book/runs/experiments python scripts/memorisation_grid.py [--steps 1500 3000]
"""
import argparse
import time

from lab import experiments

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", default=experiments.MEMORISATION_STEPS,
                    help="training lengths (steps, the same for every N)")
    lengths = ap.parse_args().steps
    sizes = experiments.MEMORISATION_SIZES
    order = [sizes[0], sizes[-1], *sizes[1:-1]]
    start = time.perf_counter()
    for steps, n in [(steps, n) for steps in lengths for n in order]:
        for half in (0, 1):
            row = experiments.run(experiments.memorisation_config(n, half, steps))
            print(f"{steps} steps, N={n} half {half}: memorised {row['memorised']:.2f}, FID {row['fid']:.1f}, train/held-out loss "
                  f"{row['train_loss']:.4f}/{row['heldout_loss']:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
