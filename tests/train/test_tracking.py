"""Trackers write what the trainer logs where a person can read it back: MLflow SQLite, ClearML offline."""

import json
import math
from pathlib import Path

import pytest

from fakescope.errors import FakescopeError
from fakescope.train.tracking import (
    PARAM_VALUE_LIMIT,
    ClearMLTracker,
    MLflowTracker,
    NoneTracker,
    artifact_location,
    create_tracker,
    default_store_uri,
    flatten_params,
)

# Third-party noise: clearml's bundled pyhocon uses old pyparsing names, mlflow an old SQLAlchemy option.
pytestmark = [
    pytest.mark.filterwarnings("ignore::pyparsing.warnings.PyparsingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"),
]


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module: creating its tables takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/store/mlflow.db"


@pytest.fixture
def run_files(tmp_path: Path) -> dict[str, Path]:
    files = {"history": tmp_path / "history.json", "weights": tmp_path / "m.pth", "card": tmp_path / "m.json"}
    files["history"].write_text('[{"epoch": 1}]')
    files["weights"].write_bytes(b"\x00weights")
    files["card"].write_text('{"sha256": "x"}')
    return files


@pytest.fixture
def quiet_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Trackers must not write into the real home or an inherited store."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CLEARML_CACHE_DIR", raising=False)
    return home


def test_flatten_params_dots_strings_and_mlflow_limit():
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    flat = flatten_params({"optim": {"lr": 0.001, "sched": {"warmup": 1}}, "data": Path("a/b"), "long": "x" * 9000})
    assert flat == {"optim.lr": "0.001", "optim.sched.warmup": "1", "data": "a/b", "long": "x" * PARAM_VALUE_LIMIT}
    assert PARAM_VALUE_LIMIT == MAX_PARAM_VAL_LENGTH


def test_create_tracker_names_and_unknown_name():
    assert isinstance(create_tracker("mlflow", store_uri="sqlite:///x.db"), MLflowTracker)
    assert isinstance(create_tracker("clearml"), ClearMLTracker)
    assert isinstance(create_tracker("none"), NoneTracker)
    with pytest.raises(FakescopeError, match="wandb.*mlflow, clearml, none"):
        create_tracker("wandb")


def test_none_tracker_accepts_everything_and_checks_order(run_files):
    tracker = create_tracker("none", run_dir=run_files["history"].parent)
    with pytest.raises(RuntimeError, match="start"):
        tracker.log_metrics({"train/loss": 1.0}, step=1)
    with tracker.start(params={"a": {"b": 1}}, tags={"git": "abc"}, resume_id="r1") as t:
        t.log_metrics({"train/loss": 1.0}, step=1)
        t.log_artifact(run_files["history"])
        t.log_model(run_files["weights"], run_files["card"])
    assert tracker.run_id == "r1" and not tracker.active
    with pytest.raises(FakescopeError, match="missing.json"):
        tracker.start().log_artifact(run_files["history"].parent / "missing.json")
    with pytest.raises(FakescopeError, match="DONE"):
        tracker.end("DONE")


def test_default_store_uri_is_absolute_sqlite_with_artifacts_beside(tmp_path, monkeypatch, quiet_home):
    monkeypatch.chdir(tmp_path)
    uri = default_store_uri()
    assert uri == f"sqlite:///{tmp_path.resolve()}/runs/mlflow.db"
    assert MLflowTracker().store_uri == uri
    assert artifact_location(uri) == (tmp_path.resolve() / "runs" / "mlartifacts").as_uri()
    assert artifact_location("http://server:5000") is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert MLflowTracker().store_uri == "sqlite:///elsewhere.db"
    assert MLflowTracker(store_uri="sqlite:///given.db").store_uri == "sqlite:///given.db"


def test_mlflow_run_logs_and_reads_back_then_resumes(tmp_path, run_files, quiet_home, mlflow_uri):
    from mlflow.tracking import MlflowClient

    uri = mlflow_uri
    tracker = create_tracker("mlflow", run_dir=tmp_path / "run", run_name="tiny", store_uri=uri)
    tracker.start(params={"optim": {"lr": 0.001}, "epochs": 2}, tags={"model": "effnet", "git": "abc123"})
    tracker.log_metrics({"train/loss": 0.7, "val/auc": 0.6}, step=1)
    tracker.log_metrics({"train/loss": 0.5, "val/auc": 0.8}, step=2)
    tracker.log_artifact(run_files["history"])
    tracker.log_model(run_files["weights"], run_files["card"])
    tracker.end("KILLED")
    run_id = tracker.run_id

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.status == "KILLED" and run.info.run_name == "tiny"
    assert run.data.params == {"optim.lr": "0.001", "epochs": "2"}
    assert run.data.tags["model"] == "effnet" and run.data.tags["git"] == "abc123"
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "train/loss"))
    assert history == [(1, 0.7), (2, 0.5)]
    assert {a.path for a in client.list_artifacts(run_id)} == {"history.json", "model"}
    assert {a.path for a in client.list_artifacts(run_id, "model")} == {"model/m.pth", "model/m.json"}
    artifacts = Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"
    assert run.info.artifact_uri.startswith(artifacts.as_uri())
    assert (artifacts / run_id / "artifacts" / "model" / "m.pth").read_bytes() == b"\x00weights"

    with create_tracker("mlflow", run_dir=tmp_path / "run", store_uri=uri) as resumed:
        resumed.start(params={"optim": {"lr": 0.001}, "epochs": 3, "new": 1}, resume_id=run_id)
        assert resumed.run_id == run_id
        resumed.log_metrics({"train/loss": 0.4, "val/auc": math.nan}, step=3)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"optim.lr": "0.001", "epochs": "2", "new": "1"}
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2, 3]
    assert math.isnan(client.get_metric_history(run_id, "val/auc")[-1].value)
    assert [r.info.run_id for r in client.search_runs([run.info.experiment_id])] == [run_id]


def test_mlflow_failure_in_context_marks_run_failed(quiet_home, mlflow_uri):
    from mlflow.tracking import MlflowClient

    uri = mlflow_uri
    tracker = create_tracker("mlflow", experiment="failures", store_uri=uri).start(params={"a": 1})
    with pytest.raises(ValueError), tracker:
        raise ValueError("boom")
    assert MlflowClient(tracking_uri=uri).get_run(tracker.run_id).info.status == "FAILED"


def read_scalars(session: Path) -> dict[tuple[str, str], dict[int, float]]:
    """(title, series) → {iteration: value} from an offline session's metrics.jsonl (one JSON list per line)."""
    scalars: dict[tuple[str, str], dict[int, float]] = {}
    for line in (session / "metrics.jsonl").read_text().splitlines():
        for event in json.loads(line):
            if event["type"] == "training_stats_scalar":
                scalars.setdefault((event["metric"], event["variant"]), {})[event["iter"]] = event["value"]
    return scalars


def test_clearml_offline_session_holds_metrics_params_and_artifacts(tmp_path, run_files, quiet_home):
    run_dir = tmp_path / "run"
    tracker = create_tracker("clearml", run_dir=run_dir, experiment="fakescope", run_name="tiny")
    tracker.start(params={"optim": {"lr": 0.001}}, tags={"git": "abc123"})
    tracker.log_metrics({"train/loss": 0.7, "final/val/auc": 0.6, "lr": 0.01}, step=1)
    tracker.log_metrics({"train/loss": 0.5, "final/val/auc": math.nan, "lr": 0.02}, step=2)
    tracker.log_artifact(run_files["history"])
    tracker.log_model(run_files["weights"], run_files["card"])
    tracker.end("FINISHED")

    session = tracker.offline_path
    assert session == run_dir.resolve() / "clearml" / "offline" / tracker.run_id
    assert tracker.offline_zip.is_file()
    scalars = read_scalars(session)
    assert scalars[("train", "loss")] == {1: 0.7, 2: 0.5}
    assert scalars[("final/val", "auc")] == {1: 0.6}
    assert scalars[("lr", "lr")] == {1: 0.01, 2: 0.02}
    task = json.loads((session / "task.json").read_text())
    assert task["hyperparams"]["config"]["optim.lr"]["value"] == "0.001"
    assert set(task["tags"]) == {"git=abc123", "status=FINISHED"}
    assert {a["key"] for a in task["execution"]["artifacts"]} == {"history.json", "model/m.pth", "model/m.json"}
    stored = {p.name for p in (session / "data").rglob("*") if p.is_file()}
    assert {"history.json", "m.pth", "m.json"} <= stored
    assert not (quiet_home / ".clearml" / "cache").exists()

    resumed = create_tracker("clearml", run_dir=run_dir).start(resume_id=tracker.run_id)
    resumed.end("KILLED")
    assert resumed.run_id != tracker.run_id
    tags = json.loads((resumed.offline_path / "task.json").read_text())["tags"]
    assert set(tags) == {f"resumed_from={tracker.run_id}", "status=KILLED"}
