"""Train a grid of the book and keep its finished runs in book/stored_runs (helpers.store), to commit.

    python scripts/store_grid.py NAME [--seeds 0 1] [--workers 2] [--list]

The grids are the ones the chapters load (the same settings give the same keys, so a chapter finds
them); a run already in the store or in your cache is not trained again, so the script can be stopped
and started again at any time, and a grid too long for one sitting is trained across several. Runs go
in the order listed, so the first rows of a grid are ready first.
"""
import argparse
import os

# Fashion-MNIST, compute x data (chapter 7): three training lengths (10x) x four training-set sizes (100x)
SIZES = (600, 2_000, 6_000, 60_000)
GAN_STEPS = (500, 1_600, 5_000)
VAE_STEPS = (1_000, 3_200, 10_000)
GRIDS = {
    "fashion-gan": {f"dcgan n={n} steps={s}": {"kind": "dcgan", "data": "fashion", "train_size": n, "steps": s}
                    for s in GAN_STEPS[::-1] for n in SIZES[::-1]},
    # the same with chapter 9's self-conditioning on 50 k-means clusters of the training pixels
    "fashion-scgan": {f"self-conditioned n={n} steps={s}": {"kind": "dcgan", "data": "fashion", "train_size": n,
                                                            "steps": s, "clusters": 50}
                      for n in SIZES[::-1] for s in GAN_STEPS[::-1]},
    "fashion-vae": {f"vae n={n} steps={s}": {"kind": "vae", "data": "fashion", "train_size": n, "steps": s}
                    for s in VAE_STEPS[::-1] for n in SIZES[::-1]},
    # DiffAugment where its paper says it helps (chapter 7, #23): small Fashion-MNIST sets trained long enough
    # for the discriminator to memorise them (its log's val_d_gap shows it), with and without augmentation
    "diffaugment": {f"{name} n={n}": {"kind": "dcgan", "data": "fashion", "train_size": n, "steps": 5_000, **extra}
                    for n in (250, 1_000) for name, extra in (("plain", {}), ("DiffAugment", {"augment": "translation,cutout"}))},
    # chapter 3's DCGAN and chapter 5's VAE recipes at the budget in force (chapter 11 sets them beside
    # its diffusion model)
    "recipes": {"DCGAN (chapter 3)": {"kind": "dcgan"}, "VAE (chapter 5)": {"kind": "vae"}},
    # chapter 8's plain toy GAN on both mixtures at the cpu budget (also the small run tests/test_store.py retrains)
    "toy-plain": {f"{name}: plain": {"kind": "toy", "data": name, "steps": 2_500} for name in ("ring", "grid")},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(GRIDS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--list", action="store_true", help="print the conditions and stop")
    args = ap.parse_args()
    if args.list:
        for name, settings in GRIDS[args.name].items():
            print(name, settings)
        return
    os.environ["GENAI_STORE"] = "1"
    from helpers import experiments, runtime

    runtime.setup(seed=0)
    table = experiments.grid(GRIDS[args.name], seeds=args.seeds, workers=args.workers)
    cols = [c for c in ("fid", "confidence", "readers_agree", "memorised", "modes", "high_quality") if c in table]
    print(experiments.summarize(table, cols, text=True).to_string())


if __name__ == "__main__":
    main()
