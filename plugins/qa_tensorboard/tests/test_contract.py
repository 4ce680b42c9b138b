"""The tensorboard tracker keeps the contract every tracker keeps (qa_core.testing), read back
with TensorBoard's own EventAccumulator: every epoch once, across a resume too."""

from __future__ import annotations

import sys
import types

from qa_core.testing import TrackerPluginContract, TrainingRun


class TestTensorBoardContract(TrackerPluginContract):
    tracker = "tensorboard"
    options = {}  # events in the run directory's tensorboard/
    failing_options = {"logdir": "/dev/null/not-a-folder"}
    continues_on_resume = True

    def recorded_metrics(self, run: TrainingRun, name: str) -> dict[int, float]:
        # Before TensorBoard first resolves its lazy `tf`: the stub instead of importing TensorFlow.
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(run.run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
        events.Reload()
        return {event.step: event.value for event in events.Scalars(name)}
