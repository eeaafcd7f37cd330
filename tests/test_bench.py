"""The benchmark runs in a quick smoke mode; its figures are printed, never asserted as times."""

from fakescope.bench import STAGES, bench_table, bench_video, default_clips


def test_bench_video_smoke(capsys):
    clips = default_clips()
    assert len(clips) == 2
    rows = bench_video(clips[:1], num_frames=8, repeat=1)
    row = rows[0]
    assert row["status"] == "ok" and row["frames"] == 8
    assert row["ratio"] == row["total"] / row["duration"]
    assert set(row["stages"]) == set(STAGES) and sum(row["share"].values()) <= 1.0 + 1e-6
    print(rows)
    assert bench_table(rows).row_count == 1
