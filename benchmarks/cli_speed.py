"""How fast the command line answers what needs no training: ``train -h``, argument errors and a resume
conflict, beside the time Python takes to import TensorFlow (which these calls no longer wait for).

    python benchmarks/cli_speed.py [--repeats 5]

Each command runs ``--repeats`` times in a fresh process; the median wall time is printed, and the ratio to
``python -c "import tensorflow"`` measured in the same run.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_seconds(argv, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "config.json"), "w") as f:  # a stored run's settings, for --resume
            json.dump({"kind": "dcgan", "lr": 0.001, "width": 64}, f)
        lab = [sys.executable, "-m", "lab", "train"]
        calls = {
            "train -h": lab + ["-h"],
            "train dcgan --steps -5": lab + ["dcgan", "--out", tmp, "--steps", "-5"],
            "train vae --penalty r1": lab + ["vae", "--out", tmp, "--penalty", "r1"],
            "train dcgan --resume --lr 0.01": lab + ["dcgan", "--out", tmp, "--resume", "--lr", "0.01"],
            'python -c "import tensorflow"': [sys.executable, "-c", "import tensorflow"],
        }
        seconds = {name: median_seconds(argv, args.repeats) for name, argv in calls.items()}
    tf_seconds = seconds.pop('python -c "import tensorflow"')
    print(f"median of {args.repeats} runs each; importing TensorFlow alone: {tf_seconds:.2f} s")
    for name, s in seconds.items():
        print(f"  python -m lab {name:34s} {s:5.2f} s  ({s / tf_seconds:.2f}x the TensorFlow import)")


if __name__ == "__main__":
    main()
