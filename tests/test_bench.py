"""The benchmark runs in a quick smoke mode; its figures are printed, never asserted as times."""

from fakescope.bench import VIDEO_STAGES, bench_table, bench_video, default_clips


def test_bench_video_smoke(capsys):
    clips = default_clips()
    assert len(clips) == 2
    rows = bench_video(clips[:1], num_frames=8, repeat=1)
    row = rows[0]
    assert row["status"] == "ok" and row["frames"] == 8
    assert row["ratio"] == row["total"] / row["duration"]
    assert set(row["stages"]) == set(VIDEO_STAGES) and sum(row["share"].values()) <= 1.0 + 1e-6
    assert row["vs_decode"] == row["total"] / row["decode_only"] and row["peak_mb"] > 0
    print(rows)
    assert bench_table(rows).row_count == 1


def test_bench_audio_smoke(tmp_path):
    from fakescope.bench import AUDIO_STAGES, bench_audio, speech_recordings

    files = speech_recordings(tmp_path, lengths=(2.0, 9.0))
    assert [round(__import__("soundfile").info(str(f)).duration, 1) for f in files] == [2.0, 9.0]
    rows = bench_audio(files, repeat=1)
    assert [r["status"] for r in rows] == ["ok", "ok"] and [r["windows"] for r in rows] == [1, 4]
    assert all(r["ratio"] == r["total"] / r["duration"] and set(r["stages"]) == set(AUDIO_STAGES) for r in rows)
    print(rows)
    assert bench_table(rows, AUDIO_STAGES, unit="windows").row_count == 2


def test_bench_memory_reports_each_file_kind_and_the_8k_case():
    from fakescope.bench import bench_memory, memory_table

    rows = bench_memory(default_clips()[:1], long_minutes=2)
    assert [r["kind"] for r in rows] == ["image", "video", "audio", "video 8K", "audio 2 min"]
    assert all(r["status"] in ("ok", "not_applicable") and r["peak_mb"] > 0 and r["growth_mb"] >= 0 for r in rows), rows
    assert rows[3]["bytes"] < 300_000  # a tiny file of 8K frames
    print(rows)
    assert memory_table(rows).row_count == 5
