"""The mlflow tracker keeps the contract every tracker keeps (qa_core.testing), read back from a
real SQLite store: every epoch's metrics, and one MLflow run across a resume."""

from __future__ import annotations

from qa_core.testing import TrackerPluginContract, TrainingRun


class TestMlflowContract(TrackerPluginContract):
    tracker = "mlflow"
    options = {"experiment": "contract"}  # the default store: <runs-dir>/_mlflow/mlflow.db
    failing_options = {"tracking_uri": "http://127.0.0.1:9"}  # nothing listens on port 9
    continues_on_resume = True

    def recorded_metrics(self, run: TrainingRun, name: str) -> dict[int, float]:
        from mlflow.tracking import MlflowClient

        store = f"sqlite:///{run.run_dir.parent.resolve() / '_mlflow' / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=store)
        experiment = client.get_experiment_by_name("contract")
        (found,) = client.search_runs([experiment.experiment_id], filter_string=f"tags.`qa.run_id` = '{run.run_dir.name}'")
        return {point.step: point.value for point in client.get_metric_history(found.info.run_id, name)}
