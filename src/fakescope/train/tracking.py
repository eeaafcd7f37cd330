"""Experiment tracking for training runs: MLflow (default, local), ClearML (offline) or none.

Every tracker has the same small interface (`start`, `log_metrics`, `log_artifact`,
`log_model`, `end`, usable as a context manager), so the trainer never imports a tracking
library itself. Neither backend needs a server or the network.

Viewing runs:

- MLflow writes to `runs/mlflow.db` (SQLite; `MLFLOW_TRACKING_URI` overrides it) with the
  files in `runs/mlartifacts`. From the repository root::

      mlflow ui --backend-store-uri sqlite:///runs/mlflow.db

  then open http://127.0.0.1:5000. A resumed training run continues the same MLflow run.
- ClearML runs in offline mode: each run leaves a session folder and a zip of it under
  `<run_dir>/clearml/offline/` (`tracker.offline_path`, `tracker.offline_zip`). To import
  one into a ClearML server, on a machine configured for it (`clearml-init`)::

      clearml-task --import-offline-session <run_dir>/clearml/offline/<task id>.zip

  or `Task.import_offline_session(path)` from Python. A resumed training run writes a new
  offline session tagged `resumed_from=<previous id>`; pass
  `previous_task_id=<id the first import got>` to `Task.import_offline_session` to merge it
  into the imported task.
"""

from __future__ import annotations

import logging
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from fakescope.errors import FakescopeError

log = logging.getLogger(__name__)

TRACKERS = ("mlflow", "clearml", "none")
STATUSES = ("FINISHED", "FAILED", "KILLED")
PARAM_VALUE_LIMIT = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
TAG_VALUE_LIMIT = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH
MLFLOW_BATCH_LIMIT = 100  # params or tags per log_batch call (MAX_PARAMS_TAGS_PER_BATCH)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts → `{"a.b": "value"}` with string values cut to MLflow's length limit."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, name))
        else:
            flat[name] = str(value)[:PARAM_VALUE_LIMIT]
    return flat


class Tracker(ABC):
    """One training run in an experiment tracker; calls before `start` or after `end` are errors."""

    def __init__(self, run_dir: Path | None = None, experiment: str = "fakescope", run_name: str | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.experiment = experiment
        self.run_name = run_name
        self.run_id: str | None = None
        self.active = False

    def start(
        self, params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None, resume_id: str | None = None
    ) -> Tracker:
        """Open the run (or continue `resume_id`, the `run_id` of an earlier start) and log its params."""
        if self.active:
            raise RuntimeError(f"{type(self).__name__} run {self.run_id} is already started")
        clean_tags = {str(k): str(v)[:TAG_VALUE_LIMIT] for k, v in (tags or {}).items()}
        self._start(flatten_params(params or {}), clean_tags, resume_id)
        self.active = True
        return self

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log scalar metrics (`"val/auc"` style names) for one step, usually the epoch."""
        self._require_active()
        self._log_metrics({str(k): float(v) for k, v in metrics.items()}, int(step))

    def log_artifact(self, path: Path | str, artifact_path: str | None = None) -> None:
        """Attach a file or folder to the run, optionally under the folder `artifact_path`."""
        self._require_active()
        self._log_artifact(_existing(path), artifact_path)

    def log_model(self, weights_path: Path | str, card_path: Path | str | None = None) -> None:
        """Attach the exported weights (and their JSON card) under `model/`."""
        for path in (weights_path, card_path):
            if path is not None:
                self.log_artifact(path, "model")

    def end(self, status: str = "FINISHED") -> None:
        """Close the run with FINISHED, FAILED or KILLED; a second call does nothing."""
        if status not in STATUSES:
            raise FakescopeError(f"tracker status {status!r} is not one of {', '.join(STATUSES)}")
        if self.active:
            self.active = False
            self._end(status)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.end("FINISHED")
        else:
            self.end("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")

    def _require_active(self) -> None:
        if not self.active:
            raise RuntimeError(f"{type(self).__name__}: call start() before logging (or the run has ended)")

    @abstractmethod
    def _start(self, params: dict[str, str], tags: dict[str, str], resume_id: str | None) -> None: ...

    @abstractmethod
    def _log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    @abstractmethod
    def _log_artifact(self, path: Path, artifact_path: str | None) -> None: ...

    @abstractmethod
    def _end(self, status: str) -> None: ...


class NoneTracker(Tracker):
    """Records nothing: smoke runs and tests use the trainer unchanged."""

    def _start(self, params: dict[str, str], tags: dict[str, str], resume_id: str | None) -> None:
        self.run_id = resume_id

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def _log_artifact(self, path: Path, artifact_path: str | None) -> None:
        pass

    def _end(self, status: str) -> None:
        pass


class MLflowTracker(Tracker):
    """A run in a local MLflow store; no server, no telemetry.

    `store_uri`: the given one, else `MLFLOW_TRACKING_URI`, else `default_store_uri()`.
    """

    def __init__(
        self,
        run_dir: Path | None = None,
        experiment: str = "fakescope",
        run_name: str | None = None,
        store_uri: str | None = None,
    ) -> None:
        super().__init__(run_dir, experiment, run_name)
        self.store_uri = store_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_store_uri()
        self._client: Any = None

    def _start(self, params: dict[str, str], tags: dict[str, str], resume_id: str | None) -> None:
        self._client = _mlflow_client(self.store_uri)
        if self.run_dir is not None:
            tags.setdefault("fakescope.run_dir", str(self.run_dir.resolve()))
        run = self._resume(resume_id) if resume_id else None
        if run is None:
            run = self._client.create_run(self._experiment_id(), run_name=self.run_name)
        else:
            params = self._unlogged(run.data.params, params)
        self.run_id = run.info.run_id
        from mlflow.entities import Param, RunTag

        for chunk in _chunks([Param(k, v) for k, v in params.items()]):
            self._client.log_batch(self.run_id, params=chunk)
        for chunk in _chunks([RunTag(k, v) for k, v in tags.items()]):
            self._client.log_batch(self.run_id, tags=chunk)
        log.info("MLflow run %s in %s", self.run_id, self.store_uri)

    def _experiment_id(self) -> str:
        experiment = self._client.get_experiment_by_name(self.experiment)
        if experiment is None:
            return self._client.create_experiment(self.experiment, artifact_location=artifact_location(self.store_uri))
        if experiment.lifecycle_stage == "deleted":
            self._client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id

    def _resume(self, run_id: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            run = self._client.get_run(run_id)
        except MlflowException:
            log.warning("MLflow run %s not found in %s; starting a new run", run_id, self.store_uri)
            return None
        self._client.update_run(run_id, status="RUNNING")
        return run

    @staticmethod
    def _unlogged(logged: Mapping[str, str], params: dict[str, str]) -> dict[str, str]:
        """MLflow params are write-once: keep new keys, warn about values that changed since the first start."""
        changed = sorted(k for k, v in params.items() if k in logged and logged[k] != v)
        if changed:
            log.warning("resumed MLflow run keeps its first values for params: %s", ", ".join(changed))
        return {k: v for k, v in params.items() if k not in logged}

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [Metric(k, v, now, step) for k, v in metrics.items()]
        for start in range(0, len(rows), 1000):  # MAX_METRICS_PER_BATCH
            self._client.log_batch(self.run_id, metrics=rows[start : start + 1000])

    def _log_artifact(self, path: Path, artifact_path: str | None) -> None:
        if path.is_dir():
            self._client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self._client.log_artifact(self.run_id, str(path), artifact_path)

    def _end(self, status: str) -> None:
        self._client.set_terminated(self.run_id, status)


def default_store_uri() -> str:
    """`sqlite:///<abs>/runs/mlflow.db`, absolute so that any working directory finds the same store."""
    return f"sqlite:///{Path('runs').resolve()}/mlflow.db"


def artifact_location(store_uri: str) -> str | None:
    """Artifacts beside a SQLite store (`<store dir>/mlartifacts`); other stores choose their own."""
    if not store_uri.startswith("sqlite:///"):
        return None
    return (Path(store_uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()


def _mlflow_client(store_uri: str) -> Any:
    """Import MLflow only when a run starts (it takes seconds), with telemetry and URL banners off."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if store_uri.startswith("sqlite:///"):
        Path(store_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=store_uri)


def _chunks(items: list, size: int = MLFLOW_BATCH_LIMIT) -> Iterable[list]:
    return (items[i : i + size] for i in range(0, len(items), size))


# Everything ClearML would patch or scan on Task.init; detect_repository=False skips the git
# and requirements scan (the trainer tags the git sha itself).
_CLEARML_NO_HOOKS = {
    name: False
    for name in (
        "hydra",
        "scikit",
        "joblib",
        "matplotlib",
        "tensorflow",
        "tensorboard",
        "tfdefines",
        "pytorch",
        "megengine",
        "xgboost",
        "catboost",
        "fastai",
        "lightgbm",
        "gradio",
        "jsonargparse",
        "detect_repository",
    )
}


class ClearMLTracker(Tracker):
    """A ClearML task in offline mode, written to `<run_dir or runs>/clearml/offline/<task id>`.

    Offline mode is process-wide and stays on after `end` (switching back online would try the server).
    """

    def __init__(self, run_dir: Path | None = None, experiment: str = "fakescope", run_name: str | None = None) -> None:
        super().__init__(run_dir, experiment, run_name)
        self.offline_path: Path | None = None
        self._task: Any = None
        self._previous_cache: str | None = None

    @property
    def offline_zip(self) -> Path | None:
        """The zipped session, written by `end`; import it with `clearml-task --import-offline-session`."""
        return None if self.offline_path is None else self.offline_path.with_name(self.offline_path.name + ".zip")

    def _start(self, params: dict[str, str], tags: dict[str, str], resume_id: str | None) -> None:
        cache = (self.run_dir or Path("runs")).resolve() / "clearml"
        self._previous_cache = os.environ.get("CLEARML_CACHE_DIR")
        os.environ["CLEARML_CACHE_DIR"] = str(cache)  # the offline session goes to <cache>/offline/<task id>
        from clearml import Task
        from clearml.config import config_obj

        # The default reporter is a forked subprocess that makes close() wait ~10 s; a thread is enough offline.
        config_obj.set_overrides({"sdk": {"development": {"report_use_subprocess": False}}})
        Task.set_offline(offline_mode=True)
        labels = [f"{k}={v}" for k, v in tags.items()] + ([f"resumed_from={resume_id}"] if resume_id else [])
        self._task = Task.init(
            project_name=self.experiment,
            task_name=self.run_name or "run",
            tags=labels,
            reuse_last_task_id=False,
            auto_connect_frameworks=_CLEARML_NO_HOOKS,
            auto_resource_monitoring=False,
            auto_connect_arg_parser=False,
            auto_connect_streams=False,
        )
        if params:
            self._task.connect(params, name="config")
        self.run_id = self._task.id
        self.offline_path = Path(self._task.get_offline_mode_folder())
        if resume_id:
            log.warning(
                "ClearML offline runs cannot be reopened: %s is a new session, tagged resumed_from=%s", self.run_id, resume_id
            )

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        logger = self._task.get_logger()
        for name, value in metrics.items():
            if not math.isfinite(value):
                continue  # ClearML would report NaN as 0.0, which reads as a real value
            title, _, series = name.rpartition("/")
            logger.report_scalar(title or name, series, value, iteration=step)

    def _log_artifact(self, path: Path, artifact_path: str | None) -> None:
        name = f"{artifact_path}/{path.name}" if artifact_path else path.name
        self._task.upload_artifact(name, artifact_object=path, wait_on_upload=True)

    def _end(self, status: str) -> None:
        self._task.add_tags([f"status={status}"])  # an offline session stores no task status of its own
        self._task.close()
        self._task = None
        if self._previous_cache is None:
            os.environ.pop("CLEARML_CACHE_DIR", None)
        else:
            os.environ["CLEARML_CACHE_DIR"] = self._previous_cache
        log.info("ClearML offline session: %s", self.offline_zip)


def create_tracker(
    name: str,
    run_dir: Path | None = None,
    experiment: str = "fakescope",
    run_name: str | None = None,
    store_uri: str | None = None,
) -> Tracker:
    """`mlflow` (in `store_uri`, see `MLflowTracker`), `clearml` or `none`; nothing is imported until `start`."""
    if name == "mlflow":
        return MLflowTracker(run_dir, experiment, run_name, store_uri=store_uri)
    if name == "clearml":
        return ClearMLTracker(run_dir, experiment, run_name)
    if name == "none":
        return NoneTracker(run_dir, experiment, run_name)
    raise FakescopeError(f"unknown tracker {name!r}: choose one of {', '.join(TRACKERS)}")


def _existing(path: Path | str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FakescopeError(f"{path}: artifact to log does not exist")
    return path
