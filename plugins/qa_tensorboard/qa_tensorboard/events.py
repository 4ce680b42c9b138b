"""An event file, written with TensorBoard's protos and record writer and nothing heavier.

TensorBoard's ``EventFileWriter`` opens files through ``tf.io.gfile``, which imports TensorFlow
whenever it is installed; tensorboardX imports torch whenever *that* is installed. A Keras run
would pay for a second framework, and a torch run for TensorFlow. This module writes the same
files (TFRecord-framed ``Event`` protos, see ``tensorboard.summary.writer.record_writer``) with a
plain file handle; the tracker's worker thread writes, so nothing here is asynchronous.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, Mapping

from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.compat.proto.types_pb2 import DT_STRING
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.text import metadata as text_metadata
from tensorboard.summary.writer.record_writer import RecordWriter


class EventFile:
    """One event file in ``logdir``. ``purge_step``: TensorBoard hides every point an earlier
    file holds at or after that step (a restart, TensorBoard's own convention)."""

    def __init__(self, logdir: Path, name_tag: str, purge_step: int | None = None):
        logdir.mkdir(parents=True, exist_ok=True)
        # TensorBoard reads a folder's files in name order: the second they were opened first.
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{name_tag}.{os.getpid()}"
        self.path = logdir / name
        self._records = RecordWriter(open(self.path, "wb"))
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))
        if purge_step is not None:
            self._write(Event(wall_time=time.time(), step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def _write(self, event: Event) -> None:
        self._records.write(event.SerializeToString())

    def summary(self, values: list[Summary.Value], step: int = 0) -> None:
        if values:
            self._write(Event(wall_time=time.time(), step=step, summary=Summary(value=values)))

    def flush(self) -> None:
        self._records.flush()

    def close(self) -> None:
        if not self._records.closed:
            self._records.close()


def scalar_values(values: Mapping[str, float]) -> list[Summary.Value]:
    return [Summary.Value(tag=name, simple_value=float(value)) for name, value in values.items()]


def text_value(tag: str, markdown: str) -> Summary.Value:
    """A text dashboard entry (TensorBoard renders it as Markdown)."""
    tensor = TensorProto(dtype=DT_STRING, string_val=[markdown.encode("utf-8")], tensor_shape=TensorShapeProto())
    return Summary.Value(tag=f"{tag}/text_summary", metadata=text_metadata.create_summary_metadata(tag, ""), tensor=tensor)


def _hparams_value(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary.Value:
    return Summary.Value(tag=tag, metadata=hparams_metadata.create_summary_metadata(data), tensor=hparams_metadata.NULL_TENSOR)


def hparams_values(hparams: Mapping[str, Any], metrics: list[str]) -> list[Summary.Value]:
    """The HParams plugin's experiment (which hyperparameters and metrics the dashboard shows)
    and this session's values. ``hparams`` values are numbers, text or bools."""
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    infos = []
    for name, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
            kind = api_pb2.DATA_TYPE_BOOL
        elif isinstance(value, str):
            start.hparams[name].string_value = value
            kind = api_pb2.DATA_TYPE_STRING
        else:
            start.hparams[name].number_value = float(value)
            kind = api_pb2.DATA_TYPE_FLOAT64
        infos.append(api_pb2.HParamInfo(name=name, type=kind))
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metrics])
    return [
        _hparams_value(hparams_metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment, version=hparams_metadata.PLUGIN_DATA_VERSION)),
        _hparams_value(hparams_metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start, version=hparams_metadata.PLUGIN_DATA_VERSION)),
    ]


def session_end_value(status: int) -> Summary.Value:
    end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time())
    return _hparams_value(hparams_metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end, version=hparams_metadata.PLUGIN_DATA_VERSION))

