"""qa_core.training_kit: the schedule formula both framework plugins follow, the plan's step
count, and the kit's parameter checks (each plugin's tests check its own implementation)."""

from __future__ import annotations

import math

import pytest

from qa_core import ConfigError, PluginInfo, training_kit
from qa_core.plugins import resolve_params

INFO = PluginInfo(kind="model", params=training_kit.PARAMS, validate=training_kit.validate)


def factors(schedule: str, total: int = 10, warmup: int = 4, min_ratio: float = 0.0) -> list[float]:
    return [training_kit.lr_factor(step, total, warmup, schedule, min_ratio) for step in range(total)]


def test_warmup_rises_linearly_from_the_first_step_to_the_full_rate():
    assert factors("cosine")[:5] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert factors("constant") == [0.25, 0.5, 0.75] + [1.0] * 7


def test_cosine_and_linear_decay_after_the_warmup_towards_min_lr_ratio():
    # 6 decay steps: progress 0, 1/6, ..., 5/6
    assert factors("cosine")[4:] == pytest.approx([0.5 * (1 + math.cos(math.pi * k / 6)) for k in range(6)])
    assert factors("linear")[4:] == pytest.approx([1 - k / 6 for k in range(6)])
    assert factors("linear", min_ratio=0.1)[4:] == pytest.approx([0.1 + 0.9 * (1 - k / 6) for k in range(6)])
    assert factors("cosine", warmup=0)[0] == 1.0  # no warm-up: the first step at the full rate


def test_plateau_leaves_the_rate_to_the_plateau_rule():
    assert factors("plateau", warmup=0) == [1.0] * 10


@pytest.mark.parametrize(
    "epochs, steps, accumulation, flush, expected",
    [(3, 10, 1, True, 30), (3, 10, 4, True, 9), (3, 10, 4, False, 7), (0, 10, 1, True, 0), (3, 0, 1, False, 0)],
)
def test_optimizer_steps_of_the_plan(epochs, steps, accumulation, flush, expected):
    assert training_kit.optimizer_steps(epochs, steps, accumulation, flush) == expected


@pytest.mark.parametrize(
    "given, message",
    [
        ({"schedule": "plateau", "warmup_steps": "10"}, r"warmup_steps=10 does not combine with schedule=plateau"),
        ({"schedule": "step"}, r"--param schedule: expected one of"),
        ({"precision": "8"}, r"--param precision: expected one of"),
        ({"gradient_accumulation_steps": "0"}, r"--param gradient_accumulation_steps: must be >= 1"),
        ({"plateau_factor": "1.5"}, r"--param plateau_factor: must be between 0 and 1"),
        ({"plateau_patience": "0"}, r"--param plateau_patience: must be >= 1"),
        ({"min_lr_ratio": "2"}, r"--param min_lr_ratio: must be <= 1"),
        ({"warmup_steps": "-1"}, r"--param warmup_steps: must be >= 0"),
    ],
)
def test_bad_training_kit_params_are_refused_with_one_clear_message(given, message):
    with pytest.raises(ConfigError, match=message):
        resolve_params("model", INFO, given)


def test_the_defaults_change_nothing():
    params = resolve_params("model", INFO, {})
    assert params == {"schedule": "constant", "warmup_steps": 0, "min_lr_ratio": 0.0, "plateau_factor": 0.5,
                      "plateau_patience": 2, "precision": "32", "gradient_accumulation_steps": 1}
