"""Train a classifier that ships in helpers/assets (used to judge generated images): MNIST's or
Fashion-MNIST's.

    python scripts/train_classifier.py [--data mnist|fashion] [--epochs N]
    python scripts/train_classifier.py --data mnist|fashion --reader

It trains on the training split only (helpers.data.load_images: for MNIST the offline subset when there
is no internet, for Fashion-MNIST the whole set), with small random shifts (and, for MNIST, rotations;
for clothes, left-right flips), and prints the held-out accuracy on the test split, which it never
trains on. With ``--reader`` it fits the second, independent reader instead
(fit_second_reader: logistic regression on pixels) and ships its coefficients.
"""
import argparse
import time
import warnings

import keras
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from helpers import data, metrics, runtime

EPOCHS = {"mnist": 40, "fashion": 12}  # the same order of updates: 4,000 vs 60,000 training images


def fit_second_reader(dataset: str = "mnist"):
    """A reader independent of the classifier: logistic regression on the pixels of up to 10,000 training images."""
    (x, y), _ = data.load_images(dataset)
    pick = np.random.default_rng(0).permutation(len(x))[:10_000]
    with warnings.catch_warnings():  # 300 iterations: close enough to the optimum to read images
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(max_iter=300).fit(x[pick].reshape(len(pick), -1) / 255.0, y[pick])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", choices=data.IMAGE_DATA, default="mnist")
    ap.add_argument("--epochs", type=int, help="default: mnist 40, fashion 12")
    ap.add_argument("--out", help="default: the weights file helpers.metrics loads")
    ap.add_argument("--reader", action="store_true", help="fit and ship the second reader instead")
    args = ap.parse_args()
    if args.reader:
        reader = fit_second_reader(args.data)
        np.savez(metrics.READER.format(args.data), coef=reader.coef_, intercept=reader.intercept_)
        _, (x_test, y_test) = data.load_images(args.data)
        accuracy = np.mean(reader.predict(x_test.reshape(len(x_test), -1) / 255.0) == y_test)
        print(f"{args.data}: second reader's held-out accuracy {accuracy:.4f}; saved {metrics.READER.format(args.data)}")
        return
    epochs = args.epochs or EPOCHS[args.data]
    out = args.out or (metrics.WEIGHTS if args.data == "mnist" else metrics.FASHION_WEIGHTS)
    runtime.seed_everything(0)
    (x_train, y_train), (x_test, y_test) = data.load_images(args.data, verbose=True)
    train = data.make_dataset(x_train, y_train, batch_size=64, scale="unit", drop_remainder=False)
    test = data.make_dataset(x_test, y_test, batch_size=500, scale="unit", shuffle=False, drop_remainder=False)
    turn = keras.layers.RandomRotation(0.04) if args.data == "mnist" else keras.layers.RandomFlip("horizontal")
    augment = keras.Sequential([keras.layers.RandomTranslation(0.1, 0.1), turn])
    train = train.map(lambda x, y: (augment(x, training=True), y))

    model = metrics.build_classifier()
    trainer = keras.Model(model.input, model.output[1])
    steps = epochs * int(np.ceil(len(x_train) / 64))
    trainer.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    trainer.fit(train, epochs=epochs, validation_data=test, verbose=2)
    loss, acc = trainer.evaluate(test, verbose=0)
    print(f"{args.data}: held-out accuracy {acc:.4f} on {len(x_test)} test images, trained on {len(x_train)} "
          f"for {epochs} epochs; {time.perf_counter() - start:.0f} s")
    model.save_weights(out)
    print("saved", out)


if __name__ == "__main__":
    main()
