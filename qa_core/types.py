"""The types that cross the plugin boundary.

Everything a plugin receives or returns is defined here, so a plugin author reads one file to
know the contract. Arrays are numpy; the core never hands a plugin a framework object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping

import numpy as np

PluginKind = Literal["model", "tracker", "callback"]

#: Anything ``float()`` accepts: a Python number, a numpy scalar, a 0-d framework tensor.
#: Plugins return losses in this form so they never have to force a device sync per step;
#: the core converts only when it refreshes the progress bar and at the end of an epoch.
FloatLike = Any


@dataclass(frozen=True)
class Param:
    """One hyperparameter a plugin accepts, shown by ``qa plugins`` and set with ``--param``.

    ``check`` receives the converted value and returns an error message, or None when the value
    is fine. ``minimum``/``maximum`` are inclusive bounds checked before ``check``.
    """

    name: str
    type: type
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[Any], str | None] | None = None

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "name": self.name,
            "type": self.type.__name__,
            "default": self.default,
            "help": self.help,
        }
        if self.choices is not None:
            info["choices"] = list(self.choices)
        if self.minimum is not None:
            info["minimum"] = self.minimum
        if self.maximum is not None:
            info["maximum"] = self.maximum
        return info


@dataclass(frozen=True)
class PluginInfo:
    """What ``qa_describe`` returns: how the core should treat a plugin.

    The plugin's *name* is not here: it is the name of its entry point (``qa run --plugin NAME``),
    so there is one source of truth for it.
    """

    kind: PluginKind
    description: str = ""
    #: "torch", "tensorflow", "numpy", ... (models); None for trackers.
    framework: str | None = None
    params: tuple[Param, ...] = ()
    #: File suffix of the model file a checkpoint holds, e.g. ".pt" or ".weights.h5".
    checkpoint_suffix: str | None = None
    #: Cross-parameter check, e.g. heads must divide d_model. Raise ValueError with a message.
    validate: Callable[[Mapping[str, Any]], None] | None = None
    #: Trackers: run this tracker's hooks on a worker thread of its own, so a slow or hung
    #: tracker never blocks training. The built-in local tracker sets False: its files are the
    #: record a resume relies on, so they are written before the epoch ends.
    threaded: bool = True
    #: Models: trains data-parallel under torchrun (one process per rank): the plugin sets up
    #: its framework's process group and implements ``qa_all_reduce`` (docs/scaling.md).
    distributed: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build (or rebuild, for loading) a model."""

    plugin: str
    params: Mapping[str, Any]
    vocab_size: int
    #: Length of every encoded sequence (tokens are right-padded with ``pad_id`` up to it).
    max_len: int
    seed: int
    pad_id: int = 0
    #: sha256 of the vocabulary; checkpoints carry it so a mismatched vocabulary is refused.
    vocab_hash: str = ""
    #: Id of the separator between story and question, and of out-of-vocabulary words.
    sep_id: int = 2
    unk_id: int = 1
    #: The vocabulary itself: ``vocab[i]`` is the word of token id ``i`` (ids 0-2 are ``<pad>``,
    #: ``<unk>``, ``<sep>``), for word features or pretrained embeddings. Empty only where a
    #: caller builds a spec without one.
    vocab: tuple[str, ...] = field(default=(), repr=False)
    # The training plan, so a plugin can build schedules (warm-up, decay) at build time.
    # 0 when unknown (``qa evaluate`` builds a model only to load weights into it).
    #: Epochs the run is configured for (``--epochs``).
    epochs: int = 0
    #: Rows per optimisation step (``--batch-size``).
    batch_size: int = 0
    #: Optimisation steps (batches) per training epoch.
    steps_per_epoch: int = 0


@dataclass(frozen=True)
class Batch:
    """A contiguous slice of an :class:`EncodedSplit`: numpy views, no copies."""

    tokens: np.ndarray  # int32 [b, max_len]
    lengths: np.ndarray  # int32 [b], number of real (non-pad) tokens per row
    labels: np.ndarray  # float32 [b], 1.0 = yes
    start: int
    stop: int
    #: int16 [b, k]: the rows' supporting sentences (see EncodedSplit.support), or None
    support: np.ndarray | None = None

    def __len__(self) -> int:
        return self.stop - self.start


#: Story-length buckets by sentence count (the ``length`` axis): 1-4, 5-8, 9-16, ... doubling.
LENGTH_BUCKETS: tuple[str, ...] = ("1-4", "5-8", "9-16", "17-32", "33-64", "65-128", "129-256", "257+")


def length_bucket(sentences: np.ndarray) -> np.ndarray:
    """The LENGTH_BUCKETS code of each sentence count (0 and 1-4 -> 0, 5-8 -> 1, 9-16 -> 2, ...)."""
    counts = np.maximum(np.asarray(sentences, dtype=np.int64), 1)
    codes = np.ceil(np.log2(counts)).astype(np.int32) - 2  # 5..8 -> 3 - 2 = 1
    return np.clip(codes, 0, len(LENGTH_BUCKETS) - 1).astype(np.int32)


@dataclass(frozen=True)
class EncodedSplit:
    """One split of the data, encoded once by the core into numpy arrays.

    Plugins wrap these arrays (``torch.from_numpy``, ``tf.data``); they never re-tokenise.
    """

    name: str
    tokens: np.ndarray  # int32 [n, max_len], right-padded with 0 (PAD)
    lengths: np.ndarray  # int32 [n]
    labels: np.ndarray  # float32 [n]
    categories: np.ndarray  # int32 [n], codes into ``category_names``
    noun_counts: np.ndarray  # int32 [n]
    category_names: tuple[str, ...]
    #: bool [n]: False where the encoding cut a supporting sentence (None: not known, all kept)
    answerable: np.ndarray | None = None
    #: int32 [n]: each story's sentence count as a code into LENGTH_BUCKETS (None: not known)
    length_buckets: np.ndarray | None = None
    #: int16 [n, k]: each record's supporting sentences (the ones its answer needs) as indices
    #: into its encoded row, counted by sentence ends ('.', '!', '?') from the row's first token
    #: (sentence 0 may be partly cut); -1 pads and marks a sentence the cut dropped. A training
    #: signal (attention supervision, as strongly supervised memory networks use), never an
    #: input at evaluation. None when the data carries no ``support``.
    support: np.ndarray | None = None

    @property
    def axes(self) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
        """The record axes beyond category and noun count, as ``(codes, labels)``: ``length``
        (the story's sentence-count bucket) and ``answerable`` (no/yes), when known. Metrics
        break down by them from the same joint histogram as by the cell."""
        out: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
        if self.length_buckets is not None:
            out["length"] = (self.length_buckets, LENGTH_BUCKETS)
        if self.answerable is not None:
            out["answerable"] = (self.answerable.astype(np.int32), ("no", "yes"))
        return out

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def max_len(self) -> int:
        return int(self.tokens.shape[1])

    def batches(self, batch_size: int) -> Iterator[Batch]:
        n = len(self)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield Batch(
                self.tokens[start:stop], self.lengths[start:stop], self.labels[start:stop], start, stop,
                None if self.support is None else self.support[start:stop],
            )

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def take(self, index: np.ndarray) -> "EncodedSplit":
        """A new split holding the rows ``index`` (one vectorised gather per array)."""
        return EncodedSplit(
            self.name,
            self.tokens[index],
            self.lengths[index],
            self.labels[index],
            self.categories[index],
            self.noun_counts[index],
            self.category_names,
            None if self.answerable is None else self.answerable[index],
            None if self.length_buckets is None else self.length_buckets[index],
            None if self.support is None else self.support[index],
        )


@dataclass
class RunContext:
    """What every tracker hook receives: who is running what, and where."""

    run_id: str
    run_dir: Path
    plugin: str
    plugin_version: str
    framework: str | None
    dataset: str
    #: The resolved configuration, JSON-serialisable and free of secrets.
    config: dict[str, Any]
    tags: tuple[str, ...] = ()
    #: ``--logger-param NAME.KEY=VALUE`` options, grouped by tracker name. A tracker that declares
    #: ``Param``s gets them converted to their types, checked, and with every default filled in;
    #: a tracker that declares none gets the strings as given.
    #: Not in repr: it may hold a server URI with a password (QA_TRACE_PLUGINS prints every call).
    logger_params: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    #: Set when this is ``qa run --resume``: the last epoch the earlier process finished. A
    #: tracker may continue its earlier record of the run (same ``run_id``) instead of a new one.
    resumed_after_epoch: int | None = None
    #: Per-run scratch space for plugins, keyed by plugin name (like pytest's stash).
    stash: dict[str, Any] = field(default_factory=dict, repr=False)  # sessions, clients: never printed
    #: The name (entry-point name, ``--logger NAME``) of the tracker this context is handed to:
    #: the hub gives each tracker a view of its own. None outside the tracker hooks.
    tracker: str | None = None

    def __post_init__(self) -> None:
        # Absolute, so a tracker that records it (or a thread that reads it later) is not at the
        # mercy of the working directory when --runs-dir was relative.
        self.run_dir = Path(self.run_dir).absolute()

    def params_for(self, tracker: str) -> dict[str, Any]:
        """The options of ``tracker`` (see ``logger_params``); a copy."""
        return dict(self.logger_params.get(tracker, {}))

    @property
    def options(self) -> dict[str, Any]:
        """This tracker's own options (``params_for(self.tracker)``): typed, with defaults."""
        return self.params_for(self.tracker) if self.tracker else {}
