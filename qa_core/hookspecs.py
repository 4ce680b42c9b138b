"""Every hook a ``qa`` plugin can implement, and nothing else.

A plugin is a module (or object) registered under the ``qa`` entry-point group whose functions,
marked with :data:`qa_core.hookimpl`, carry the names below. There are two kinds of plugin:

* **model** plugins (``qa run --plugin NAME``) build, train, evaluate, save and load a model. The
  core calls the hooks of the *selected* model plugin only: with the torch and TensorFlow plugins
  both installed, ``--plugin transformer`` never reaches the TensorFlow plugin.
* **tracker** plugins (``qa run --logger NAME``) receive the run's parameters, metrics and files.
  Tracker hooks are a broadcast: every active tracker gets every call. The core calls each tracker
  on its own, so one that raises is switched off with a warning and the others go on.
* **callback** plugins (``qa run --callback NAME``) act on training: at every epoch end they see
  the epoch's metrics, may add metrics of their own and may ask the run to stop. Only the selected
  callbacks are called, in the order given; one that raises stops the run, naming itself.

Every spec follows one template: who calls it and when, Args, Returns, and whether the call stops
at the first non-None result. ``docs/plugins.md`` documents each hook again for readers;
``tests/test_hookspecs.py`` fails when the two drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pluggy

from .types import Batch, EncodedSplit, FloatLike, ModelSpec, PluginInfo, RunContext

PROJECT = "qa"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -------------------------------------------------------------------------------------------------
# describe: every plugin
# -------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def qa_describe() -> PluginInfo:
    """Say what kind of plugin this is and what it accepts.

    Called by the plugin manager once, right after the plugin is loaded, and by ``qa plugins``.
    Every plugin must implement it.

    Returns:
        A :class:`~qa_core.types.PluginInfo`: the kind (``"model"``, ``"tracker"`` or
        ``"callback"``), a
        one-line description, the framework, the hyperparameters with their defaults and types,
        and for model plugins the suffix of their checkpoint files.

    Stops at first non-None result.
    """


# -------------------------------------------------------------------------------------------------
# build: model plugins
# -------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def qa_build(spec: ModelSpec) -> Any:
    """Create a fresh model, its loss and its optimizer.

    Called by the training loop once per run, after the data is encoded and before the first
    epoch; only the selected model plugin is called. Seed the framework from ``spec.seed`` here.

    Args:
        spec: the validated hyperparameters (``spec.params``, typed, defaults filled in), the
            vocabulary (``spec.vocab``, ``spec.vocab_size``), the encoded sequence length, the
            seed, the special ids (``pad_id``, ``sep_id``, ``unk_id``) and the training plan
            (``epochs``, ``batch_size``, ``steps_per_epoch``; 0 when unknown).

    Returns:
        An opaque *model handle* (any object). The core passes it back, untouched, to every other
        model hook of this run.

    Stops at first non-None result.
    """


# -------------------------------------------------------------------------------------------------
# train: model plugins (implement qa_train_step, or qa_train_epoch, or both)
# -------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def qa_train_step(model: Any, batch: Batch) -> tuple[FloatLike, FloatLike]:
    """Run one optimisation step on one batch.

    Called by the training loop once per batch, in order, when the plugin does not take whole
    epochs through :func:`qa_train_epoch`. The core shuffles and slices the data; the batch arrays
    are numpy views (wrap them, e.g. with ``torch.from_numpy``, do not copy or re-tokenise).

    Args:
        model: the handle returned by :func:`qa_build` or :func:`qa_load_checkpoint`.
        batch: token ids, lengths and labels of this batch.

    Returns:
        ``(loss, correct)``: the batch's mean loss and its number of correct predictions, each
        anything ``float()`` accepts. Returning framework scalars (not Python floats) lets the
        core defer the device sync to the moments it needs the number.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def qa_train_epoch(
    model: Any,
    data: EncodedSplit,
    batch_size: int,
    epoch: int,
    on_batch: Callable[[int, FloatLike], None],
) -> Mapping[str, float] | None:
    """Train one whole epoch inside the framework's own loop (Keras ``fit``, for example).

    Called by the training loop once per epoch, before it falls back to :func:`qa_train_step`.
    The core has already shuffled ``data`` for this epoch: train on it in order.

    Args:
        model: the model handle.
        data: the training split, in this epoch's order.
        batch_size: rows per optimisation step.
        epoch: the 1-based epoch number.
        on_batch: call it after every batch with the number of batches done so far and the
            running mean loss; it advances the core's progress bar.

    Returns:
        ``{"loss": mean training loss, "accuracy": training accuracy}`` for the epoch, or None
        when the plugin trains step by step instead (the default).

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def qa_model_metrics(model: Any) -> Mapping[str, float] | None:
    """Report the model's own training values: learning rate, gradient norm, loss scale.

    Called by the training loop at the end of every training epoch (and, with
    ``--log-every-n-steps``, at each step-logging point). The values reach metrics.jsonl and
    every tracker as ``metrics/train/<name>``.

    Args:
        model: the model handle.

    Returns:
        ``{name: value}`` with plain names (``"lr"``, ``"grad_norm"``) and values ``float()``
        accepts, or None when the plugin has nothing to add (the default).

    Stops at first non-None result.
    """


# -------------------------------------------------------------------------------------------------
# evaluate: model plugins
# -------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def qa_all_reduce(model: Any, values: Any) -> Any:
    """Sum ``values`` (a float64 numpy vector) over all ranks of a data-parallel run.

    Called by the training loop once per epoch, only when the world size is above 1 (the
    epoch's loss and correct-answer sums, so every rank reports the same epoch means). A plugin
    that declares ``PluginInfo(distributed=True)`` must implement it with its framework's
    collective (``torch.distributed.all_reduce``); the core never imports a framework.
    Stops at first non-None result.

    Args:
        model: the model handle.
        values: this rank's float64 numpy vector.

    Returns:
        the summed vector, same shape, as anything ``numpy.asarray`` accepts.
    """


@hookspec(firstresult=True)
def qa_evaluate(model: Any, data: EncodedSplit, batch_size: int) -> np.ndarray:
    """Predict the probability of "yes" for every row of a split, without training.

    Called by the training loop after every epoch (validation split), at the end of a run (test
    split, with the best checkpoint reloaded) and by ``qa evaluate``. Put the model in inference
    mode. The core computes the loss and every metric from these probabilities, so all frameworks
    are scored by the same code.

    Args:
        model: the model handle.
        data: the split to score, in its stored order.
        batch_size: rows per forward pass.

    Returns:
        A float numpy vector of ``len(data)`` probabilities in [0, 1].

    Stops at first non-None result.
    """


# -------------------------------------------------------------------------------------------------
# save and load: model plugins
# -------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def qa_save_checkpoint(model: Any, path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> bool:
    """Write the model to one file, with everything needed to resume training.

    Called by the checkpoint policy (best, top-k, periodic, last, interrupt). ``path`` is a
    temporary name ending in the plugin's ``checkpoint_suffix``; the core renames it into place
    after the hook returns, so a crash never leaves a half-written file that looks complete.
    The core writes ``<name>.meta.json`` beside it.

    Args:
        model: the model handle.
        path: where to write; its parent directory exists.
        spec: the spec the model was built from.
        meta: what the core writes to ``<name>.meta.json``, read-only: ``format``, ``plugin``,
            ``plugin_version``, ``framework``, ``qa_version``, ``run_id``, ``dataset``,
            ``vocab_sha256``, ``vocab_size``, ``max_len``, ``seed``, ``params``,
            ``category_names``, ``epoch``, ``metrics`` (``val_accuracy``, ``val_loss``,
            ``train_loss``); the core adds ``file``, ``bytes`` and ``sha256`` after the hook.
            Embed in the file what a lone file needs to be checked (plugin name, vocabulary hash).

    Returns:
        True once the file is written, or a JSON-serialisable dict of the plugin's own facts,
        which the core keeps in the meta under ``plugin_meta`` (its own namespace: a plugin key
        never replaces one of the core's) and hands back to :func:`qa_load_checkpoint`.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def qa_load_checkpoint(path: Path, spec: ModelSpec, meta: Mapping[str, Any]) -> Any:
    """Rebuild a model from a checkpoint file written by :func:`qa_save_checkpoint`.

    Called by the training loop to reload the best model before testing, by ``qa evaluate`` and
    by ``qa run --resume``. Load safely (``torch.load(weights_only=True)``, Keras weights files):
    never execute code from a checkpoint. Refuse, by raising ``qa_core.CheckpointError``, a file
    from another plugin or one whose vocabulary or shape does not match ``spec``.

    Args:
        path: the model file.
        spec: the spec to rebuild the model from (hyperparameters from the checkpoint's meta).
        meta: the checkpoint's ``meta.json`` (the keys :func:`qa_save_checkpoint` lists, and the
            plugin's own under ``plugin_meta``), already checked by the core for the plugin
            name, the vocabulary hash and the file's size and sha256.

    Returns:
        A model handle, as :func:`qa_build` returns, with the weights (and optimizer state)
        restored.

    Stops at first non-None result.
    """


# -------------------------------------------------------------------------------------------------
# log: tracker plugins (broadcast to every active tracker)
# -------------------------------------------------------------------------------------------------


@hookspec
def qa_log_run_start(run: RunContext) -> None:
    """Open the tracker's record of a run.

    Called by the training loop once, before anything else is logged, for every active tracker.
    On ``qa run --resume`` it is called again, in the new process, with the same ``run.run_id``
    and ``run.resumed_after_epoch`` set to the last epoch the earlier process finished: continue
    the earlier record. What follows then: params again; the ``best/...`` and ``top_epochs/...``
    summaries of the epochs so far again (same values); metrics from epoch
    ``resumed_after_epoch + 1`` on. Metrics the earlier process sent for epochs after
    ``resumed_after_epoch`` (an epoch that finished but whose checkpoint did not) are superseded:
    the new points for those steps replace them, as metrics.jsonl's lines are replaced.

    Args:
        run: run id, absolute run directory, model plugin, dataset, resolved config, tags, and
            for this tracker ``run.tracker`` (its entry-point name) and ``run.options`` (its
            ``--logger-param`` options, converted to the types its ``Param``s declare, checked,
            defaults filled in). Keep per-run state in ``run.stash[run.tracker]``.

    Returns:
        None.
    """


@hookspec
def qa_log_params(run: RunContext, params: Mapping[str, Any]) -> None:
    """Record the run's hyperparameters and settings.

    Called by the training loop once, after :func:`qa_log_run_start`.

    Args:
        run: the run.
        params: flat ``{name: value}`` of every hyperparameter and core setting (epochs, batch
            size, seed, plugin name and version, dataset, data sizes). No secrets.

    Returns:
        None.
    """


@hookspec
def qa_log_metrics(run: RunContext, metrics: Mapping[str, float], step: int) -> None:
    """Append one point to each metric series.

    Called by the training loop after every epoch (``step`` = the epoch number) with the names
    built by :func:`qa_core.metrics.metric_names`: ``metrics/<split>/loss``,
    ``<split>/by_category/<cat>/accuracy``, ``<split>/by_group/<cat>/noun_<n>/count``, ...
    With ``--log-every-n-steps N`` also every N optimisation steps with *step series*: every
    name starts with ``steps/`` (``steps/train/loss``, ``steps/train/lr``, ``steps/epoch``) and
    ``step`` is the global optimisation step. A call never mixes the two kinds.

    Args:
        run: the run.
        metrics: flat ``{name: value}``.
        step: the epoch number, starting at 1 (for ``steps/...`` names: the global step).

    Returns:
        None.
    """


@hookspec
def qa_log_summary(run: RunContext, values: Mapping[str, Any], step: int) -> None:
    """Set single values that replace any earlier ones (not series).

    Called by the training loop when a new best epoch appears (``best/...``), when the top-k
    changes (``top_epochs/<rank>/...``; the list arrives whole, ranks it no longer has are gone)
    and once at the end with the test results (``test/...``, ``metrics/test/...``). A value of
    None means the name no longer has a value.

    Args:
        run: the run.
        values: flat ``{name: value}``; values are numbers or strings.
        step: the epoch these values belong to: the latest epoch whose metrics were logged (0
            before the first). Trackers that only keep series (TensorBoard) plot them there;
            trackers with single-value fields may ignore it.

    Returns:
        None.
    """


@hookspec
def qa_log_artifact(run: RunContext, path: Path, name: str) -> None:
    """Keep a file produced by the run.

    Called by the training loop for the best checkpoint (``model/best``) and its meta file
    (``model/best.meta``: keep the two together, a checkpoint is loaded only beside its meta), the
    vocabulary (``model/vocab``) and each evaluation file (``eval/<file name>``).

    Args:
        run: the run.
        path: the file on disk (inside the run directory).
        name: where it belongs in the tracker's layout.

    Returns:
        None.
    """


@hookspec
def qa_log_run_end(run: RunContext, status: str, summary: Mapping[str, Any]) -> None:
    """Close the tracker's record of a run and flush what is pending.

    Called by the training loop once, last, whether the run finished, failed or was interrupted.

    Args:
        run: the run.
        status: ``"finished"``, ``"failed"`` or ``"interrupted"``.
        summary: the content of ``summary.json`` (best epoch, top-k, test metrics).

    Returns:
        None.
    """


# -------------------------------------------------------------------------------------------------
# act on training: callback plugins (the selected ones, in --callback order)
# -------------------------------------------------------------------------------------------------


@hookspec
def qa_epoch_metrics(run: RunContext, epoch: int, logs: Mapping[str, float]) -> Mapping[str, float] | None:
    """Add metrics of your own to a finished epoch.

    Called by the training loop after every epoch's validation, before anything is logged or
    checkpointed, for every selected callback plugin in ``--callback`` order. What it returns is
    merged into the epoch's logs, so it reaches metrics.jsonl and every tracker, later callbacks
    see it, and ``--monitor`` can watch it. A name that already exists is refused.

    Args:
        run: the run (``run.params_for(name)`` holds this plugin's ``--callback-param`` options).
        epoch: the 1-based epoch number.
        logs: the epoch's metrics so far: ``metrics/train/...``, ``metrics/val/...``,
            ``val/by_category/...`` and what earlier callbacks added. A copy: changing it does
            nothing.

    Returns:
        ``{name: value}`` of new metrics (use full names such as ``metrics/val/f1``; values
        ``float()`` accepts), or None.
    """


@hookspec
def qa_epoch_end(run: RunContext, epoch: int, logs: Mapping[str, float]) -> str | None:
    """See a finished epoch and decide whether the run goes on.

    Called by the training loop once per epoch, last, after the metrics line is written, the
    checkpoint policy has run and the console line is printed, for every selected callback plugin
    in ``--callback`` order. A reason stops the run after this epoch, like early stopping: the
    epoch is kept, the best checkpoint is tested, and the reason is printed and recorded in
    summary.json (``stopped``).

    Args:
        run: the run.
        epoch: the 1-based epoch number.
        logs: the epoch's complete metrics, as written to metrics.jsonl.

    Returns:
        A one-line reason to stop the run (``"val accuracy reached 0.9"``), or None to go on.
    """
