import json
import math

import numpy as np
import pytest

from fakescope.errors import FakescopeError
from fakescope.evaluate import video_level, write_report


def strict_json(text: str):
    def reject(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


@pytest.fixture
def sections():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 8)
    y = (groups % 2).astype(int)
    p = np.clip(0.25 * y + 0.75 * rng.random(y.size), 0, 1)
    vy, vp, _ = video_level(y, p, [f"clip_{g}" for g in groups])
    return {"frame level": (y, p), "video <level> & more": (vy, vp)}


def test_report_is_self_contained_and_metrics_json_parses(tmp_path, sections):
    meta = {"model": "effnet-lite0.dfdc", "dataset": "dfdc_faces val", "date": "2025-01-01"}
    html_path = write_report(tmp_path / "run", sections, title="eval <dfdc>", meta=meta)
    assert html_path == tmp_path / "run" / "report.html"
    page = html_path.read_text(encoding="utf-8")
    assert "frame level" in page
    assert "video &lt;level&gt; &amp; more" in page and "video <level>" not in page
    assert "eval &lt;dfdc&gt;" in page and "effnet-lite0.dfdc" in page
    assert page.count("data:image/png;base64,") == 8
    assert "http" not in page and "<script" not in page and "<link" not in page

    summary = strict_json((tmp_path / "run" / "metrics.json").read_text())
    assert summary["meta"] == meta
    assert set(summary["sections"]) == set(sections)
    frame = summary["sections"]["frame level"]
    assert frame["metrics"]["n"] == 160
    assert 0.0 < frame["metrics"]["eer"] < 0.5
    assert frame["thresholds"]["real_below"] <= frame["thresholds"]["fake_at_or_above"]
    video = summary["sections"]["video <level> & more"]
    assert video["metrics"]["n"] == 20
    for plot in (*frame["plots"].values(), *video["plots"].values()):
        assert (tmp_path / "run" / plot).is_file()


def test_single_class_section_is_reported_without_roc_or_thresholds(tmp_path):
    write_report(tmp_path, {"fakes only": ([1, 1, 1], [0.2, 0.7, 0.9])}, title="t", meta={})
    summary = strict_json((tmp_path / "metrics.json").read_text())
    section = summary["sections"]["fakes only"]
    assert section["metrics"]["auc"] is None and section["metrics"]["eer"] is None
    assert section["thresholds"] is None
    assert set(section["plots"]) == {"reliability", "confusion"}
    assert math.isclose(section["metrics"]["recall"], 2 / 3)
    assert "Only one class" in (tmp_path / "report.html").read_text()


def test_report_input_errors(tmp_path):
    with pytest.raises(FakescopeError, match="no sections"):
        write_report(tmp_path, {}, title="t", meta={})
    with pytest.raises(FakescopeError, match="'bad'"):
        write_report(tmp_path, {"bad": ([0, 1], [0.5])}, title="t", meta={})
    with pytest.raises(FakescopeError, match="labels must be 0"):
        write_report(tmp_path, {"bad": ([0, 2], [0.5, 0.5])}, title="t", meta={})
