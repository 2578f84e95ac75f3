"""Train the small MNIST classifier that ships in helpers/assets (used to judge generated digits).

    python scripts/train_classifier.py [--epochs 40]

It trains on the training split of helpers.data.load_mnist() (the offline subset when there is no
internet), with small random shifts and rotations, and prints the held-out accuracy on the test split.
"""
import argparse
import time

import keras
import numpy as np

from helpers import data, metrics, runtime


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", default=metrics.WEIGHTS)
    args = ap.parse_args()
    runtime.seed_everything(0)
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    train = data.make_dataset(x_train, y_train, batch_size=64, scale="unit", drop_remainder=False)
    test = data.make_dataset(x_test, y_test, batch_size=500, scale="unit", shuffle=False, drop_remainder=False)
    augment = keras.Sequential([keras.layers.RandomTranslation(0.1, 0.1), keras.layers.RandomRotation(0.04)])
    train = train.map(lambda x, y: (augment(x, training=True), y))

    model = metrics.build_classifier()
    trainer = keras.Model(model.input, model.output[1])
    steps = args.epochs * int(np.ceil(len(x_train) / 64))
    trainer.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    trainer.fit(train, epochs=args.epochs, validation_data=test, verbose=2)
    loss, acc = trainer.evaluate(test, verbose=0)
    print(f"held-out accuracy {acc:.4f} on {len(x_test)} test digits; {time.perf_counter() - start:.0f} s")
    model.save_weights(args.out)
    print("saved", args.out)


if __name__ == "__main__":
    main()
