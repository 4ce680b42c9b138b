"""qa tracker plugin: log every ``qa run`` to MLflow, a tracker with a UI you run yourself.

    pip install ./plugins/qa_mlflow                  # mlflow-skinny + the SQLite store
    qa run --plugin bow --data data/ --logger mlflow  # -> runs/_mlflow/mlflow.db
    pip install "./plugins/qa_mlflow[server]"        # the full mlflow: `mlflow ui`, `mlflow server`
    mlflow ui --backend-store-uri sqlite:///runs/_mlflow/mlflow.db
    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 qa run ... --logger mlflow  # any tracking server

Modules: :mod:`.plugin` holds the hooks (the entry point; it never imports mlflow),
:mod:`.settings` turns ``--logger-param mlflow.KEY=VALUE`` options and environment variables into
a store and an experiment, :mod:`.names` maps the core's names and values onto MLflow's rules, and
:mod:`.session` owns one MLflow run.

It is also the worked example of a third-party tracker: it uses the documented hooks and the
public ``qa_core`` API only.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qa-mlflow")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

#: The tracker's name: the entry point's name, ``--logger mlflow``, ``--logger-param mlflow.KEY``.
NAME = "mlflow"

__all__ = ["NAME", "__version__"]
