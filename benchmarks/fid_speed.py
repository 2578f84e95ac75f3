"""Time of helpers.metrics.fid on two N x 2048 feature sets against the reference recipe
(np.cov + scipy.linalg.sqrtm, as in pytorch-fid / TTUR), measured in one run on the same data.

    python benchmarks/fid_speed.py [--n 10000] [--dim 2048]

Prints both times, the ratio, and the two values (they agree to about 1e-6 relative).
"""
import argparse
import time

import numpy as np
import scipy.linalg

from helpers import metrics


def reference(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=2048)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((args.n, args.dim))
    b = 0.9 * rng.standard_normal((args.n, args.dim)) + 0.1
    t = time.perf_counter()
    ours = metrics.fid(a, b)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    ref = reference(a, b)
    t_ref = time.perf_counter() - t
    print(f"helpers.metrics.fid      {t_ours:6.2f} s  value {ours:.6f}")
    print(f"np.cov + scipy sqrtm     {t_ref:6.2f} s  value {ref:.6f}")
    print(f"relative difference {abs(ours - ref) / abs(ref):.1e}; speed-up {t_ref / t_ours:.1f}x "
          f"({args.n:,} x {args.dim} features, statistics included)")


if __name__ == "__main__":
    main()
