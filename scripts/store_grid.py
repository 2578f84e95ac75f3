"""Train a grid of the book and keep its finished runs in book/stored_runs (helpers.store), to commit.

    python scripts/store_grid.py NAME [--seeds 0 1] [--workers 2] [--list] [--tests-only]

The grids are the ones the chapters load (the same settings give the same keys, so a chapter finds
them); a run already in the store or in your cache is not trained again, so the script can be stopped
and started again at any time, and a grid too long for one sitting is trained across several. Runs go
in the order listed, so the first rows of a grid are ready first.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from helpers.experiments import (AUGMENT_MNIST_SIZES, AUGMENT_SIZES, AUGMENT_STEPS, DATA_EMA, DATA_SIZES, DATA_STEPS,  # noqa: E402
                                 data_settings, privacy_grids, remedy_mnist)

CGAN_CPU = {"kind": "cgan", "steps": 1000, "batch_size": 64, "width": 32, "log_every": 200}  # chapter 9's, cpu budget
PLAIN = {"clusters": 0}  # the plain DCGAN of chapter 3 instead of the self-conditioned recipe
GRIDS = {
    # chapter 7's compute x data grid: the self-conditioned DCGAN and the VAE, longest runs first
    "fashion-scgan": {f"self-conditioned n={n} steps={s}": data_settings("dcgan", n, s)
                      for n in DATA_SIZES[::-1] for s in DATA_STEPS["dcgan"][::-1]},
    # its longest runs again, sampled from the generator's weight average (the same training, step for step)
    "fashion-scgan-ema": {f"self-conditioned n={n} steps={DATA_STEPS['dcgan'][-1]} ema": data_settings(
        "dcgan", n, DATA_STEPS["dcgan"][-1], ema=DATA_EMA) for n in (60_000, 600, 6_000, 2_000)},
    "fashion-vae": {f"vae n={n} steps={s}": data_settings("vae", n, s)
                    for s in DATA_STEPS["vae"][::-1] for n in DATA_SIZES[::-1]},
    # the plain DCGAN (no clusters) at the same sizes and lengths
    "fashion-gan": {f"dcgan n={n} steps={s}": data_settings("dcgan", n, s, **PLAIN)
                    for s in DATA_STEPS["dcgan"][::-1] for n in DATA_SIZES[::-1]},
    # DiffAugment where its paper says it helps (chapter 7, #23): small Fashion-MNIST sets trained long enough
    # for the discriminator to memorise them (its log's val_d_gap shows it), with and without augmentation
    "diffaugment": {f"{name} n={n}": data_settings("dcgan", n, AUGMENT_STEPS, **PLAIN, **extra)
                    for n in AUGMENT_SIZES for name, extra in (("plain", {}), ("DiffAugment", {"augment": "translation,cutout"}))},
    # the same test on offline MNIST with chapter 8's recipe (the self-conditioned DCGAN, which meets the bar)
    "diffaugment-mnist": {f"{name} n={n}": dict(remedy_mnist(), train_size=n, **extra) for n in AUGMENT_MNIST_SIZES[::-1]
                          for name, extra in (("plain", {}), ("DiffAugment", {"augment": "translation,cutout"}))},
    # chapter 3's DCGAN and chapter 5's VAE recipes at the budget in force (chapter 11 sets them beside
    # its diffusion model)
    "recipes": {"DCGAN (chapter 3)": {"kind": "dcgan"}, "VAE (chapter 5)": {"kind": "vae"}},
    # chapter 9's runs that a reader would wait longest for (its other runs are trained in the chapter, which
    # samples them again): the cGAN with noisy labels (seeds 0 1 2) and the VAE recipe's seeds, whose
    # decoders repair digits; the plain and self-conditioned DCGANs (seeds 0 1) as "self-conditioning"
    "applications": {**{f"noise {p:.0%}": {**CGAN_CPU, "label_noise": p} for p in (0.2, 0.5)},
                     "VAE of chapter 5": {"kind": "vae"}},
    "self-conditioning": {"plain DCGAN (chapter 3)": {"kind": "dcgan"},
                          "self-conditioned, 50 clusters": {"kind": "dcgan", "clusters": 50}},
    # chapter 10's privacy runs (their networks stay in the cache: the chapter's tests need them, and store
    # what they find beside the stored runs when it is executed with GENAI_STORE=1)
    "privacy": privacy_grids()["sizes"],
    "privacy-shorter": privacy_grids()["shorter"],
    "privacy-canary": privacy_grids()["canary"],
    # chapter 8's plain toy GAN on both mixtures, as the cpu budget trained it before 10,000 steps: the small
    # runs tests/test_store.py retrains
    "toy-plain": {f"{name}: plain": {"kind": "toy", "data": name, "steps": 2_500, "log_every": 500}
                  for name in ("ring", "grid")},
}


def store_tests(rows):
    """Chapter 10's three tests of finished privacy runs, computed where their networks are and stored."""
    from helpers import experiments

    for i, row in enumerate(rows):
        for test in ("copying", "canary", "membership"):
            experiments.privacy(row, test)
        print(f"chapter 10's tests of {os.path.basename(row['dir'])} stored ({i + 1}/{len(rows)})", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(GRIDS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--list", action="store_true", help="print the conditions and stop")
    ap.add_argument("--tests-only", action="store_true",
                    help="privacy grids: store chapter 10's tests of the runs finished in your cache, train nothing")
    args = ap.parse_args()
    if args.list:
        for name, settings in GRIDS[args.name].items():
            print(name, settings)
        return
    os.environ["GENAI_STORE"] = "1"
    from helpers import experiments, runtime

    runtime.setup(seed=0)
    if args.tests_only:  # e.g. before a session ends with the grid half trained: the networks are in the cache
        jobs = [experiments.config(**{**settings, "seed": seed}) for settings in GRIDS[args.name].values()
                for seed in args.seeds]
        done = [cfg for cfg in jobs if os.path.exists(os.path.join(experiments.run_dir(cfg), "result.json"))]
        store_tests([experiments.run(cfg) for cfg in done])
        return
    table = experiments.grid(GRIDS[args.name], seeds=args.seeds, workers=args.workers)
    if args.name.startswith("privacy"):  # chapter 10's tests need the networks, which stored runs leave behind
        store_tests([row for _, row in table.iterrows()])
    cols = [c for c in ("fid", "confidence", "readers_agree", "memorised", "modes", "high_quality") if c in table]
    print(experiments.summarize(table, cols, text=True).to_string())


if __name__ == "__main__":
    main()
