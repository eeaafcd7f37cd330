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
