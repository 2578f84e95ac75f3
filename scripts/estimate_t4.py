"""Estimate each chapter's time on the `full` budget on a Colab T4 and write the estimates that every
chapter's setup cell prints (helpers/assets/t4_estimate.json).

    python scripts/estimate_t4.py [--chapters 3 5]     # about 5 minutes on an idle 2-core CPU

No GPU has been at hand to measure it, so it is an estimate, made of measured parts and two stated
assumptions about the T4:

1. The ledger: the trainings a chapter's full budget runs, with the settings its cells pass to
   lab.experiments (kept beside each chapter below). A run whose result is in book/stored_runs is
   loaded on every budget, not trained, and costs nothing; Colab starts each notebook on a fresh machine,
   so a chapter that reuses an earlier chapter's run (6 and 11) trains it again unless the cache is on
   Google Drive (the setup cell says how).
2. The arithmetic of one training step: TensorFlow's profiler counts the forward pass of each network on
   one image; a step costs three forward passes per image (the backward pass about twice the forward),
   for a GAN through the generator once and the discriminator twice (real and fake images).
3. The measured cost of the same steps on this CPU (20 steps after 10 of warm-up), which gives its
   sustained FLOP/s on these networks, and the cpu budget's ledger measured the same way.
4. The T4 (assumed): 8.1 TFLOP/s float32 peak (the book trains in float32 there: no bfloat16 before
   compute capability 8.0), of which these small networks sustain 15% to 40%, and at least 2 to 6 ms per
   step (kernel launches, the optimizers' small ops), whichever is larger.
5. The rest of a chapter (data, scoring, figures, and chapter 2's and 9's small optimisations that are not
   in the ledger) runs on the CPU, and Colab gives 2 cores like the
   machine that ran the committed cpu-budget chapters: it is that run's wall time minus the training its
   cpu ledger measured here (at least a tenth of the wall time), plus the scoring of each run the full
   budget trains beyond the cpu budget's (measured here).

Run it on an idle machine: a busy CPU makes the training it subtracts look longer.
"""
import argparse
import glob
import json
import os
import sys
import time

from helpers import data, metrics, models, runtime, training
from lab import experiments, store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
OUT = os.path.join(ROOT, "helpers", "assets", "t4_estimate.json")
T4_PEAK = 8.1e12  # float32 FLOP/s
T4_SHARE = (0.40, 0.15)  # sustained share of the peak: optimistic, pessimistic
T4_FLOOR = (0.002, 0.006)  # seconds per step at least: optimistic, pessimistic


def ledger(chapter: str) -> list:
    """The trainings of ``chapter`` on the budget in force: ``(label, settings, seeds)`` for runs of
    lab.experiments (``(label, settings, seeds, True)`` where the cell calls ``experiments.train``,
    which trains even where the result is stored), or ``(label, builder, steps, batch)`` for a network a
    cell trains itself."""
    from helpers.runtime import device_choices, pick
    def article_gan():
        return training.make_gan(models.article_generator(100), models.article_discriminator(), seed=0)

    def cas_classifier():  # chapter 9's classification accuracy score trains one per training set and seed
        import keras
        model = metrics.small_classifier(0)
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    seeds9 = range(pick(full=3, cpu=3, smoke=2))
    common9 = dict(batch_size=64, width=32, log_every=pick(full=500, cpu=200, smoke=5))
    cgan = dict(kind="cgan", steps=pick(full=5000, cpu=1000, smoke=10), **common9)
    cvae = dict(kind="cvae", steps=pick(full=10_000, cpu=2000, smoke=10), **common9)
    policy = "float32" if pick(full=True, cpu=False, smoke=False) else device_choices()["policy"]  # a T4: float32
    paper = dict(kind="dcgan", width=32, lr=2e-4, policy=policy)
    recipes = [("DCGAN recipe (chapter 3)", {"kind": "dcgan"}, (0,)), ("VAE recipe (chapter 5)", {"kind": "vae"}, (0,))]
    return {
        "03": [("the article's GAN, corrected", article_gan, pick(full=3000, cpu=60, smoke=2), 128),
               ("DCGAN recipe", {"kind": "dcgan"}, (0,), True), ("DCGAN recipe, seed 1", {"kind": "dcgan"}, (1,)),
               ("paper's settings", paper, (0, 1))]
              + ([("the recipe in " + policy, {"kind": "dcgan", "policy": policy}, (0, 1))] if policy != "float32" else []),
        "05": [("VAE recipe", {"kind": "vae"}, (0,), True)],
        "06": recipes,
        "09": [("CAS classifiers", cas_classifier, pick(full=2000, cpu=400, smoke=20), 64, 7 * len(seeds9)),
               ("cGAN", cgan, seeds9), ("cVAE", cvae, seeds9), ("cGAN on 500", dict(cgan, train_size=500), seeds9),
               ("cVAE on 500", dict(cvae, train_size=500), seeds9),
               *[(f"cGAN, label noise {p}", dict(cgan, label_noise=p), seeds9) for p in (0.2, 0.5)],
               ("VAE recipe", experiments.cpu_recipe("vae"), seeds9),
               ("DCGAN recipe", experiments.cpu_recipe("dcgan"), (0, 1)),
               ("self-conditioned DCGAN", experiments.cpu_recipe("dcgan", clusters=50), (0, 1))],
        "11": [("diffusion recipe", {"kind": "diffusion"}, (0,)), *recipes],
        "tools": [("DCGAN (TensorBoard)", {"kind": "dcgan", "steps": pick(full=2000, cpu=300, smoke=20),
                                           "width": pick(full=64, cpu=32, smoke=8), "batch_size": 64}, (0,), True)],
    }.get(chapter, [])


def forward_flops(net) -> int:
    """FLOPs of one forward pass of ``net`` on one input (TensorFlow's profiler on its frozen graph)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    specs = [tf.TensorSpec([1, *x.shape[1:]], x.dtype) for x in net.inputs]
    fn = tf.function(lambda *xs: net(list(xs) if len(xs) > 1 else xs[0], training=False))
    graph = convert_variables_to_constants_v2(fn.get_concrete_function(*specs)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops


def step_flops(model, batch: int) -> float:
    """FLOPs of one training step: three forward passes per image (see the module's docstring)."""
    if hasattr(model, "discriminator"):
        per_image = forward_flops(model.generator) + 2 * forward_flops(model.discriminator)
    elif hasattr(model, "encoder"):
        per_image = forward_flops(model.encoder) + forward_flops(model.decoder)
    elif hasattr(model, "network"):
        per_image = forward_flops(model.network)
    else:  # a classifier
        per_image = forward_flops(model)
    return 3.0 * batch * per_image * getattr(model, "d_steps", 1)


def measure(model, dataset, warm: int = 10, timed: int = 20) -> float:
    """Seconds per step of ``model`` on this CPU."""

    experiments.fit_steps(model, dataset, warm, warm, verbose=0)
    start = time.perf_counter()
    experiments.fit_steps(model, dataset, warm + timed, timed, verbose=0)
    return (time.perf_counter() - start) / timed


_costs: dict = {}


def cost(entry) -> tuple:
    """``(label, trainings, steps each, FLOPs per step, CPU seconds per step)`` of one ledger entry; runs
    found in the stored results are left out (they are loaded)."""
    if callable(entry[1]):
        label, builder, steps, batch, count = (*entry, 1)[:5]
        todo, token = [None] * count, (label, batch)
    else:
        label, settings, seeds, always = (*entry, False)[:4]
        settings = dict(settings)
        kind = settings.pop("kind")
        cfgs = [experiments.config(kind, **settings, seed=s) for s in seeds]
        todo = [c for c in cfgs if always or not store.load(experiments.key(c))]
        if not todo:
            return label, 0, 0, 0.0, 0.0
        cfg = todo[0]
        steps, batch = cfg["steps"], cfg["batch_size"] * cfg.get("d_steps", 1)
        token = json.dumps({k: v for k, v in cfg.items() if k not in ("seed", "steps", "log_every")}, sort_keys=True)
    if token not in _costs:
        if callable(entry[1]):
            model = builder()
            (x, y), _ = data.load_mnist(verbose=False)
            gan = hasattr(model, "generator")
            dataset = data.make_dataset(x, None if gan else y, batch_size=batch, seed=0,
                                        scale="tanh" if gan else "unit").repeat()
            policy = "float32"
        else:
            family = experiments.FAMILIES[cfg["kind"]]
            x, y, _ = family.data(cfg)
            labels, shares = family.train_labels(cfg, x, y)
            dataset = family.dataset(cfg, x, y, labels, batch)
            policy = cfg["policy"]
        with runtime.precision(policy):
            if not callable(entry[1]):
                model, _ = family.build(cfg, shares)
            _costs[token] = (step_flops(model, batch), measure(model, dataset))
    flops, seconds = _costs[token]
    return label, len(todo), steps, flops, seconds


_scoring: list = []


def scoring_seconds() -> float:
    """Seconds this CPU takes to score one run (1,000 samples: FID, KID, IS, precision/recall, the
    readers, the copy distances): each run the full budget trains beyond the cpu budget's adds it."""
    if not _scoring:
        import numpy as np
        cfg = experiments.config("dcgan", seed=0)
        (x, _), _ = data.load_mnist(verbose=False)
        fake = x[np.random.default_rng(0).permutation(len(x))[:1000]]
        experiments.score_samples(fake, None, cfg, x)  # warm-up: the classifier loads once
        start = time.perf_counter()
        experiments.score_samples(fake, None, cfg, x)
        _scoring.append(time.perf_counter() - start)
    return _scoring[0]


def estimate(chapter: str, wall_cpu: float | None) -> dict:
    os.environ["GENAI_BUDGET"] = "full"
    full = [cost(e) for e in ledger(chapter)]
    os.environ["GENAI_BUDGET"] = "cpu"
    cpu = [cost(e) for e in ledger(chapter)]
    steps = sum(n * s for _, n, s, _, _ in full)
    flop = sum(n * s * f for _, n, s, f, _ in full)
    t4 = [sum(n * s * max(f / (T4_PEAK * share), floor) for _, n, s, f, _ in full)
          for share, floor in zip(T4_SHARE, T4_FLOOR)]
    cpu_training = sum(n * s * sec for _, n, s, _, sec in cpu)
    rest = max(0.1 * wall_cpu, wall_cpu - cpu_training) if wall_cpu else 0.0
    extra_runs = sum(n for _, n, _, _, _ in full) - sum(n for _, n, _, _, _ in cpu)
    if extra_runs > 0:
        rest += extra_runs * scoring_seconds()
    return {"t4_minutes": [round((t + rest) / 60, 1) for t in t4], "trainings": sum(n for _, n, _, _, _ in full),
            "steps": steps, "pflop": round(flop / 1e15, 3), "t4_training_s": [round(t) for t in t4],
            "cpu_rest_s": round(rest), "cpu_full_training_min": round(sum(n * s * sec for _, n, s, _, sec in full) / 60, 1),
            "cpu_wall_s": wall_cpu, "runs": [{"label": l, "trainings": n, "steps": s, "gflop_per_step": round(f / 1e9, 2),
                                               "cpu_s_per_step": round(sec, 4)} for l, n, s, f, sec in full if n]}


def main():
    from chapter_times import LINE

    def wall(path):  # the wall time the notebook's last cell printed (helpers.runtime.report)
        outputs = json.load(open(path))["cells"][-1].get("outputs", [])
        match = LINE.search("".join("".join(o.get("text", "")) for o in outputs))
        return float(match[1]) if match else None

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chapters", nargs="*", help="e.g. 3 5 tools (default: all)")
    args = ap.parse_args()
    pages = sorted(glob.glob(os.path.join(ROOT, "book", "[0-9][0-9]_*.ipynb")))
    walls = {os.path.basename(p)[:2]: wall(p) for p in pages}
    walls.update({page: wall(os.path.join(ROOT, "book", f"{page}.ipynb")) for page in ("tools", "conclusion")})
    wanted = [c.zfill(2) if c.isdigit() else c for c in args.chapters] if args.chapters else list(walls)
    os.chdir(os.path.join(ROOT, "book"))  # where the chapters run (their cache, the stored results)
    old = json.load(open(OUT)) if os.path.exists(OUT) else {}
    for chapter in wanted:
        result = estimate(chapter, walls.get(chapter))
        old[chapter] = result
        lo, hi = result["t4_minutes"]
        print(f"chapter {chapter}: {result['trainings']} trainings, {result['steps']:,} steps, {result['pflop']} PFLOP "
              f"-> T4 about {lo}-{hi} min (training {result['t4_training_s']} s + the rest {result['cpu_rest_s']} s); "
              f"the same training on this CPU: {result['cpu_full_training_min']} min", flush=True)
    with open(OUT, "w") as f:
        json.dump({k: old[k] for k in sorted(old)}, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
