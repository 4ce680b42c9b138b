"""Plugin discovery, validation and the typed facades the core calls plugins through.

Discovery: every entry point in the ``qa`` group is loaded on its own. A plugin that fails to
import, names a hook that does not exist, has a hook with arguments the spec lacks, or does not
describe itself is *not* registered: one line on stderr names it, its distribution and version and
the error, and everything else keeps working. ``QA_STRICT_PLUGINS=1`` turns such a line into a
failure. ``QA_LOAD_PLUGINS=a,b`` loads only the named entry points (an empty value loads none);
``QA_DISABLE_PLUGINS=a,b`` skips the named ones. ``QA_TRACE_PLUGINS=1`` prints every hook call
and its result on stderr, one short line each (:func:`summarize`: shapes and sizes, never contents).

Selection: :class:`ModelPlugin` calls one model plugin's hooks through
``pm.subset_hook_caller``, so selecting ``transformer`` never broadcasts to the other installed
model plugins. Tracker hooks are broadcast by :class:`qa_core.tracking.hub.TrackerHub`.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Mapping

import numpy as np
import pluggy

from . import hookspecs
from .errors import CheckpointError, ConfigError, PluginError, QAError
from .types import Batch, EncodedSplit, ModelSpec, PluginInfo

ENTRY_POINT_GROUP = "qa"

#: Plugins that ship inside qa-core and are always registered (never through entry points).
BUILTIN_PLUGINS = {"local": "qa_core.tracking.local"}

HOOK_NAMES = frozenset(name for name in dir(hookspecs) if name.startswith("qa_"))
MODEL_HOOKS = (
    "qa_build",
    "qa_train_step",
    "qa_train_epoch",
    "qa_model_metrics",
    "qa_all_reduce",
    "qa_evaluate",
    "qa_save_checkpoint",
    "qa_load_checkpoint",
)
TRACKER_HOOKS = ("qa_log_run_start", "qa_log_params", "qa_log_metrics", "qa_log_summary", "qa_log_artifact", "qa_log_run_end")


class PluginLoadError(QAError):
    """A plugin could not be loaded and QA_STRICT_PLUGINS asks for that to be fatal."""


@dataclass
class PluginRecord:
    """Everything ``qa plugins`` shows about one plugin, loaded or not."""

    name: str
    distribution: str | None = None
    version: str | None = None
    kind: str | None = None
    hooks: list[str] = field(default_factory=list)
    info: PluginInfo | None = None
    error: str | None = None
    builtin: bool = False
    plugin: Any = None

    def to_json(self) -> dict[str, Any]:
        info = self.info
        return {
            "name": self.name,
            "kind": self.kind,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": self.hooks,
            "framework": info.framework if info else None,
            "description": info.description if info else None,
            "checkpoint_suffix": info.checkpoint_suffix if info else None,
            "params": [param.describe() for param in info.params] if info else [],
            "error": self.error,
        }


def _env_names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


class PluginManager:
    """Loads plugins, remembers what happened to each, and hands out typed facades."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        if os.environ.get("QA_TRACE_PLUGINS"):
            self.pm.add_hookcall_monitoring(_trace_call, _trace_result)

    # -- loading -----------------------------------------------------------------------------

    def load_builtins(self) -> None:
        import importlib

        for name, module_name in BUILTIN_PLUGINS.items():
            record = self.register(importlib.import_module(module_name), name, builtin=True)
            if record.error:  # a broken built-in is our bug, never the user's
                raise RuntimeError(f"built-in plugin {name!r}: {record.error}")

    def load_entrypoints(self, strict: bool | None = None) -> None:
        """Load every ``qa`` entry point on its own; a broken one never stops the others."""
        if strict is None:
            strict = os.environ.get("QA_STRICT_PLUGINS", "") not in ("", "0")
        allow = _env_names("QA_LOAD_PLUGINS")
        block = _env_names("QA_DISABLE_PLUGINS") or set()
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            name = entry_point.name
            if (allow is not None and name not in allow) or name in block:
                continue
            dist = getattr(entry_point, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            dist_version = dist.version if dist is not None else None
            if name in self.records:
                other = self.records[name]
                record = PluginRecord(name, dist_name, dist_version)
                record.error = f"name already taken by {other.distribution or 'qa-core'}"
            else:
                try:
                    plugin = entry_point.load()
                except BaseException as exc:  # noqa: BLE001 - any import failure, SystemExit included
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    record = PluginRecord(name, dist_name, dist_version, error=f"{type(exc).__name__}: {exc}")
                    self.records[name] = record
                else:
                    record = self.register(plugin, name, dist_name, dist_version)
            if record.error:
                self.records.setdefault(name, record)
                line = f"qa: plugin '{name}' ({dist_name or '?'} {dist_version or '?'}) not loaded: {record.error}"
                if strict:
                    raise PluginLoadError(line + " (QA_STRICT_PLUGINS is set)")
                print(line, file=sys.stderr)

    def register(
        self,
        plugin: Any,
        name: str,
        distribution: str | None = None,
        version: str | None = None,
        builtin: bool = False,
    ) -> PluginRecord:
        """Validate and register one plugin. Failures are recorded, not raised."""
        if builtin:
            from . import __version__

            distribution, version = "qa-core", __version__
        record = PluginRecord(name, distribution, version, builtin=builtin, plugin=plugin)
        self.records[name] = record
        try:
            self._check_hook_names(plugin)
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - pluggy's validation errors and our own
            record.error = str(exc)
            return record
        record.hooks = sorted(
            caller.name for caller in self.pm.get_hookcallers(plugin) or () if caller.name in HOOK_NAMES
        )
        try:
            info = self._describe(name)
        except Exception as exc:  # noqa: BLE001
            self.pm.unregister(plugin)
            record.error = str(exc)
            return record
        record.info, record.kind = info, info.kind
        return record

    def unregister(self, name: str) -> None:
        record = self.records.pop(name, None)
        if record is not None and record.plugin is not None and self.pm.is_registered(record.plugin):
            self.pm.unregister(record.plugin)

    def _check_hook_names(self, plugin: Any) -> None:
        # pluggy ignores unmarked functions and only reports unknown *marked* hooks at
        # check_pending(); we want a misspelt hook to fail loudly and name itself.
        for attribute in dir(plugin):
            if attribute.startswith("qa_") and callable(getattr(plugin, attribute, None)):
                if attribute not in HOOK_NAMES:
                    close = difflib.get_close_matches(attribute, HOOK_NAMES, n=1)
                    hint = f" (did you mean {close[0]}?)" if close else ""
                    raise ConfigError(f"unknown hook {attribute}{hint}")

    def _describe(self, name: str) -> PluginInfo:
        record = self.records[name]
        if "qa_describe" not in record.hooks:
            raise ConfigError("does not implement qa_describe")
        info = self._caller(name, "qa_describe")()
        if not isinstance(info, PluginInfo):
            raise ConfigError(f"qa_describe returned {type(info).__name__}, expected PluginInfo")
        if info.kind == "model":
            missing = [hook for hook in ("qa_build", "qa_evaluate", "qa_save_checkpoint", "qa_load_checkpoint") if hook not in record.hooks]
            if not {"qa_train_step", "qa_train_epoch"} & set(record.hooks):
                missing.append("qa_train_step or qa_train_epoch")
            if missing:
                raise ConfigError(f"model plugin lacks {', '.join(missing)}")
            if not info.checkpoint_suffix:
                raise ConfigError("model plugin must declare checkpoint_suffix")
        elif info.kind == "callback":
            from .callbacks import CALLBACK_HOOKS

            if not set(CALLBACK_HOOKS) & set(record.hooks):
                raise ConfigError(f"callback plugin implements none of {', '.join(CALLBACK_HOOKS)}")
        elif info.kind != "tracker":
            raise ConfigError(f"unknown plugin kind {info.kind!r} (expected 'model', 'tracker' or 'callback')")
        return info

    def _caller(self, name: str, hook: str) -> Callable[..., Any]:
        plugin = self.records[name].plugin
        others = [other for other in self.pm.get_plugins() if other is not plugin]
        return self.pm.subset_hook_caller(hook, remove_plugins=others)

    # -- queries -----------------------------------------------------------------------------

    def loaded(self, kind: str | None = None) -> list[PluginRecord]:
        return [
            record
            for record in self.records.values()
            if record.error is None and (kind is None or record.kind == kind)
        ]

    def _select(self, name: str, kind: str) -> PluginRecord:
        record = self.records.get(name)
        if record is not None and record.error is None and record.kind == kind:
            return record
        installed = ", ".join(sorted(r.name for r in self.loaded(kind))) or "none"
        option = {"model": "--plugin", "tracker": "--logger", "callback": "--callback"}[kind]
        if record is not None and record.error:
            raise ConfigError(f"{option} {name}: plugin failed to load: {record.error}")
        raise ConfigError(f"{option} {name}: no such {kind} plugin; installed: {installed}")

    def model(self, name: str) -> "ModelPlugin":
        return ModelPlugin(self, self._select(name, "model"))

    def tracker(self, name: str) -> PluginRecord:
        return self._select(name, "tracker")

    def callback(self, name: str) -> PluginRecord:
        return self._select(name, "callback")


def checked_probabilities(plugin: str, probs: Any, n: int) -> Any:
    """``probs`` as float32 [n]; a wrong count, NaN/inf or a value outside [0, 1] is the plugin's
    failure (PluginError naming it), not something to score."""
    import numpy as np

    try:
        array = np.asarray(probs, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise PluginError(plugin, "qa_evaluate", ValueError(f"returned {type(probs).__name__}, not probabilities ({exc})")) from None
    if array.shape[0] != n:
        raise PluginError(plugin, "qa_evaluate", ValueError(f"returned {array.shape[0]} probabilities for {n} records"))
    if not np.all(np.isfinite(array)):
        raise PluginError(plugin, "qa_evaluate", ValueError("returned NaN or infinite probabilities"))
    if n and (array.min() < 0.0 or array.max() > 1.0):
        raise PluginError(plugin, "qa_evaluate", ValueError(f"returned values outside [0, 1] (from {array.min():g} to {array.max():g}); probabilities expected"))
    return array


class ModelPlugin:
    """A typed facade over one model plugin's hooks (tox 4 style): call sites are checked,
    calls never broadcast, and an exception inside a hook is re-raised naming plugin and hook.

    ``load_plugins().model(NAME)`` returns one; it is how the core (and a plugin's own tests)
    call a model plugin. Attributes: ``name``, ``version``, ``distribution``, ``info`` (its
    PluginInfo) and ``hooks`` (the hook names it implements). Errors: a ``QAError`` a hook raises
    (``CheckpointError``, ``ConfigError``) passes through as is; anything else becomes a
    ``PluginError`` naming the plugin and the hook, with the original as its cause.
    """

    def __init__(self, manager: PluginManager, record: PluginRecord):
        assert record.info is not None
        self.name = record.name
        self.version = record.version or "0"
        self.distribution = record.distribution
        self.info: PluginInfo = record.info
        self.hooks = set(record.hooks)
        self._callers = {hook: manager._caller(record.name, hook) for hook in MODEL_HOOKS if hook in self.hooks}

    def _call(self, hook: str, **kwargs: Any) -> Any:
        try:
            return self._callers[hook](**kwargs)
        except QAError:
            raise
        except Exception as exc:  # noqa: BLE001 - name the plugin and the hook, keep the cause
            raise PluginError(self.name, hook, exc) from exc

    # -- parameters --------------------------------------------------------------------------

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults filled, strings converted, every value checked, then the plugin's own
        cross-parameter check. Raises ConfigError naming the parameter."""
        return resolve_params(self.name, self.info, given)

    # -- hooks -------------------------------------------------------------------------------

    def build(self, spec: ModelSpec) -> Any:
        """``qa_build``: a fresh model handle for ``spec`` (PluginError when the hook returns None)."""
        model = self._call("qa_build", spec=spec)
        if model is None:
            raise PluginError(self.name, "qa_build", ValueError("returned None"))
        return model

    @property
    def trains_whole_epochs(self) -> bool:
        """True when the plugin implements ``qa_train_epoch`` (the core tries it first each epoch)."""
        return "qa_train_epoch" in self.hooks

    def train_step(self, model: Any, batch: Batch) -> Any:
        """``qa_train_step``: one optimisation step; ``(loss, correct)``, each ``float()``-able."""
        return self._call("qa_train_step", model=model, batch=batch)

    def train_epoch(self, model: Any, data: EncodedSplit, batch_size: int, epoch: int, on_batch: Callable[[int, Any], None]) -> Any:
        """``qa_train_epoch``: a whole epoch; ``{"loss", "accuracy"}``, or None to train step by step."""
        return self._call("qa_train_epoch", model=model, data=data, batch_size=batch_size, epoch=epoch, on_batch=on_batch)

    def model_metrics(self, model: Any) -> dict[str, float]:
        """The plugin's own training values (``qa_model_metrics``), as floats; {} without the hook."""
        if "qa_model_metrics" not in self.hooks:
            return {}
        values = self._call("qa_model_metrics", model=model) or {}
        return {str(name): float(value) for name, value in values.items()}

    def all_reduce(self, model: Any, values: np.ndarray) -> np.ndarray:
        """``qa_all_reduce``: ``values`` summed over the ranks of a data-parallel run."""
        return np.asarray(self._call("qa_all_reduce", model=model, values=values), dtype=np.float64)

    def evaluate(self, model: Any, data: EncodedSplit, batch_size: int) -> Any:
        """``qa_evaluate``: the probability of "yes" for every row of ``data``, in order."""
        return self._call("qa_evaluate", model=model, data=data, batch_size=batch_size)

    def predict(self, model: Any, data: EncodedSplit, batch_size: int) -> Any:
        """``qa_evaluate``, checked: a float32 numpy vector of one probability in [0, 1] per
        record. The one path from a plugin's predictions to the metrics (training and ``qa evaluate``)."""
        return checked_probabilities(self.name, self.evaluate(model, data, batch_size), len(data))

    def save(self, model: Any, path: Any, spec: ModelSpec, meta: Mapping[str, Any]) -> Any:
        """``qa_save_checkpoint``: write ``model`` to ``path``. The plugin gets a copy of ``meta``
        (changing it changes nothing the core writes); returns True or the plugin's own meta,
        which the core keeps under ``plugin_meta``."""
        return self._call("qa_save_checkpoint", model=model, path=path, spec=spec, meta=copy.deepcopy(dict(meta)))

    def load(self, path: Any, spec: ModelSpec, meta: Mapping[str, Any]) -> Any:
        """``qa_load_checkpoint``: a model handle rebuilt from the file at ``path``. A file the
        plugin cannot read (empty, cut short, not its format) is a CheckpointError naming the
        file, not the plugin's own EOFError or IndexError."""
        if os.path.getsize(path) == 0:
            raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
        try:
            return self._call("qa_load_checkpoint", path=path, spec=spec, meta=meta)
        except PluginError as exc:
            raise CheckpointError(f"{path}: plugin '{self.name}' could not read this checkpoint ({type(exc.error).__name__}: {exc.error})") from exc


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(param: Any, value: Any) -> Any:
    kind = param.type
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        if kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(f"expected true/false, got {value!r}")
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"expected {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"expected {kind.__name__}, got {value!r}")
    return value


def resolve_params(plugin: str, info: PluginInfo, given: Mapping[str, Any], option: str = "--param ") -> dict[str, Any]:
    """Fill defaults, convert strings by each Param's type, check bounds, choices and the plugin's
    own checks. ``option`` names the command-line form in messages (``--logger-param neptune.``)."""
    declared = {param.name: param for param in info.params}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        names = ", ".join(declared) or "none"
        raise ConfigError(f"{option}{unknown[0]}: unknown parameter for plugin '{plugin}'; its parameters: {names}")
    params: dict[str, Any] = {}
    for name, param in declared.items():
        if name not in given:
            params[name] = param.default
            continue
        try:
            value = _convert(param, given[name])
            if param.type is float and not math.isfinite(value):  # NaN slips past every bound
                raise ValueError(f"must be a finite number, got {value}")
            if param.choices is not None and value not in param.choices:
                raise ValueError(f"expected one of {', '.join(map(str, param.choices))}, got {value!r}")
            if param.minimum is not None and value < param.minimum:
                raise ValueError(f"must be >= {param.minimum}, got {value}")
            if param.maximum is not None and value > param.maximum:
                raise ValueError(f"must be <= {param.maximum}, got {value}")
            problem = param.check(value) if param.check else None
            if problem:
                raise ValueError(problem)
        except ValueError as exc:
            raise ConfigError(f"{option}{name}: {exc} (plugin '{plugin}')") from None
        params[name] = value
    if info.validate is not None:
        try:
            info.validate(params)
        except ValueError as exc:
            raise ConfigError(f"{option.rstrip(' .')}: {exc} (plugin '{plugin}')") from None
    return params


# -- QA_TRACE_PLUGINS ------------------------------------------------------------------------------


def summarize(value: Any, depth: int = 0) -> str:
    """A short, one-line description of a hook argument or result: what it is and how big, never
    its contents (a model handle's repr can run to hundreds of lines of weights)."""
    import numpy as np

    from .types import RunContext

    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, np.generic):  # a numpy scalar: a loss, a count
        return repr(value.item())
    if isinstance(value, np.ndarray):
        return f"ndarray{list(value.shape)} {value.dtype}"
    if isinstance(value, (Batch, EncodedSplit)):
        return f"{type(value).__name__}({getattr(value, 'name', '') + ', ' if getattr(value, 'name', '') else ''}{len(value)} rows)"
    if isinstance(value, ModelSpec):
        return f"ModelSpec({value.plugin}, vocab {value.vocab_size}, max_len {value.max_len}, seed {value.seed})"
    if isinstance(value, RunContext):
        return f"RunContext({value.run_id})"
    if isinstance(value, PluginInfo):
        return f"PluginInfo({value.kind})"
    if isinstance(value, Mapping):
        keys = list(value)
        shown = ", ".join(map(str, keys[:3])) + (", ..." if len(keys) > 3 else "")
        return f"{{{shown}}} ({len(keys)} keys)"
    if isinstance(value, (tuple, list)) and len(value) <= 4 and depth == 0:
        return "(" + ", ".join(summarize(item, 1) for item in value) + ")"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__}[{len(value)}]"
    if hasattr(value, "__fspath__"):
        return str(value)
    if callable(value) and hasattr(value, "__name__"):
        return f"{value.__name__}()"
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def _trace_call(hook_name: str, hook_impls: list, kwargs: Mapping[str, Any]) -> None:
    plugins = ", ".join(impl.plugin_name for impl in hook_impls)
    arguments = ", ".join(f"{name}={summarize(value)}" for name, value in kwargs.items())
    from .config import redact_url  # a string argument may be a URI with a password in it

    print(redact_url(f"qa: trace: {hook_name}({arguments}) -> [{plugins}]"), file=sys.stderr)


def _trace_result(outcome: Any, hook_name: str, hook_impls: list, kwargs: Mapping[str, Any]) -> None:
    error = outcome.exception
    result = f"raised {type(error).__name__}" if error is not None else summarize(outcome.get_result())
    print(f"qa: trace: {hook_name} returned {result}", file=sys.stderr)


def load_plugins(entrypoints: bool = True) -> PluginManager:
    """The plugin manager every command uses: built-ins, then the installed entry points."""
    manager = PluginManager()
    manager.load_builtins()
    if entrypoints:
        manager.load_entrypoints()
    return manager
