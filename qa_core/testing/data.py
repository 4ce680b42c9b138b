"""Tiny generated data for plugin tests: a few hundred records, every category, short stories."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..types import EncodedSplit, ModelSpec

#: Records per split: enough for every category in every split, small enough for a 2-core CI.
TINY_SIZES: Mapping[str, int] = {"train": 96, "val": 32, "test": 32}
#: One noun count keeps stories short (about 40-110 tokens).
TINY_NOUN_COUNTS = (8,)
TINY_SEED = 3
#: The sequence length when the plugin declares no ``max_len`` of its own.
TINY_MAX_LEN = 48


def write_tiny_data(
    directory: Path,
    sizes: Mapping[str, int] = TINY_SIZES,
    seed: int = TINY_SEED,
    noun_counts: Sequence[int] | None = TINY_NOUN_COUNTS,
) -> Path:
    """Write ``train/val/test.jsonl`` into ``directory`` (made if missing) and return it: a
    directory ``qa run --data`` takes. ``noun_counts=None``: every noun count the generator
    makes by default (longer stories, every category x noun-count cell)."""
    from ..data.generator import generate_splits
    from ..data.records import write_jsonl

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cells = {} if noun_counts is None else {"noun_counts": tuple(noun_counts)}
    for split, examples in generate_splits(dict(sizes), seed=seed, **cells).items():
        write_jsonl(directory / f"{split}.jsonl", examples)
    return directory


@dataclass(frozen=True)
class TinyData:
    """The tiny splits encoded exactly as the core encodes them for a run, and the spec to build
    a model for them: what a model plugin's hooks receive, without a run around them."""

    splits: Mapping[str, EncodedSplit]
    vocab: Any  # qa_core.data.tokenizer.Vocabulary
    spec: ModelSpec

    def with_spec(self, **changes: Any) -> "TinyData":
        from dataclasses import replace

        return replace(self, spec=replace(self.spec, **changes))


def tiny_data(
    plugin: str,
    params: Mapping[str, Any],
    batch_size: int = 16,
    epochs: int = 1,
    seed: int = TINY_SEED,
    sizes: Mapping[str, int] = TINY_SIZES,
) -> TinyData:
    """Generate, build the vocabulary on train, encode every split and make the :class:`ModelSpec`
    for ``plugin`` with its resolved ``params`` (its own ``max_len`` when it has one)."""
    from ..data.generator import generate_splits
    from ..data.tokenizer import Vocabulary, encode

    records = generate_splits(dict(sizes), noun_counts=TINY_NOUN_COUNTS, seed=seed)
    vocab = Vocabulary.build(records["train"])
    max_len = int(params.get("max_len", TINY_MAX_LEN))
    if max_len == 0:  # "cover the data", resolved as a run resolves it (and handed to the model)
        from ..data.tokenizer import sequence_lengths

        max_len = max(4, max(int(sequence_lengths(examples).max()) for examples in records.values()))
        params = {**params, "max_len": max_len}
    categories = tuple(sorted({e.category for examples in records.values() for e in examples}))
    splits = {name: encode(examples, vocab, max_len, name, categories)[0] for name, examples in records.items()}
    spec = ModelSpec(
        plugin,
        dict(params),
        len(vocab),
        max_len,
        seed,
        vocab_hash=vocab.sha256,
        vocab=vocab.tokens,
        epochs=epochs,
        batch_size=batch_size,
        steps_per_epoch=splits["train"].num_batches(batch_size),
    )
    return TinyData(splits, vocab, spec)
