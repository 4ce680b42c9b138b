"""How much a qa epoch costs over a plain Keras ``model.fit(verbose=0)`` on the same model.

    python plugins/qa_lstm_tf/benchmarks/epoch_overhead.py [--train 4500] [--epochs 3] [--param k=v ...]

Both sides train the *same* compiled model (built once through the plugin) on the same encoded
arrays, alternating epoch by epoch so that drift in machine load hits both alike:

* ``qa``: the core's ``train_one_epoch`` (its tqdm bar, disabled as in ``--no-progress``, or
  shown with ``--progress``) calling the plugin's ``qa_train_epoch``: one ``fit`` with the
  progress-bridge callback.
* ``keras``: ``model.fit(x, y, batch_size, epochs=1, shuffle=False, verbose=0)``.

The first epoch of each side is a warm-up (tracing) and is not counted. Prints the median seconds
per epoch of each and their ratio (target: <= 1.03).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from qa_core import ModelSpec
from qa_core.config import parse_key_values
from qa_core.data.generator import generate_splits
from qa_core.data.tokenizer import Vocabulary, encode
from qa_core.plugins import load_plugins
from qa_core.trainer import train_one_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=4500)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per side, after one warm-up each")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--progress", action="store_true", help="show the core's progress bar")
    parser.add_argument("--param", action="append", default=[])
    args = parser.parse_args()

    lstm = load_plugins().model("lstm")
    params = lstm.resolve_params(parse_key_values("--param", args.param))
    examples = generate_splits({"train": args.train}, seed=0)["train"]
    vocab = Vocabulary.build(examples)
    split, _ = encode(examples, vocab, params["max_len"], "train")
    handle = lstm.build(ModelSpec("lstm", params, len(vocab), params["max_len"], 0, vocab_hash=vocab.sha256, vocab=vocab.tokens))
    rng = np.random.default_rng(0)

    def qa_epoch(epoch: int) -> None:
        train_one_epoch(lstm, handle, split, args.batch_size, epoch, epoch, args.progress)

    def keras_epoch(epoch: int) -> None:
        handle.model.fit(split.tokens, split.labels, batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0)

    times: dict[str, list[float]] = {"qa": [], "keras": []}
    for epoch in range(1, args.epochs + 2):
        split = split.take(rng.permutation(len(split)))  # a new order each epoch, as the core does
        for name, run in (("qa", qa_epoch), ("keras", keras_epoch)):
            start = time.perf_counter()
            run(epoch)
            if epoch > 1:
                times[name].append(time.perf_counter() - start)
    qa_s, keras_s = statistics.median(times["qa"]), statistics.median(times["keras"])
    print(f"params: {params}")
    print(f"{len(split)} rows, batch {args.batch_size}, {split.num_batches(args.batch_size)} steps per epoch")
    print(f"qa epoch    median {qa_s:.3f}s  {[round(t, 3) for t in times['qa']]}")
    print(f"keras epoch median {keras_s:.3f}s  {[round(t, 3) for t in times['keras']]}")
    print(f"ratio qa/keras: {qa_s / keras_s:.3f}")


if __name__ == "__main__":
    main()
