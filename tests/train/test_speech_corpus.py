"""The speech training corpus: labels, groups and splits that cannot leak, and a build that is
deterministic, resumable and a no-op when already done."""

import csv
import json
import logging
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fakescope.data import LABELS, Sample, check_no_leakage
from fakescope.data.speech_sources import (
    DIGIT_WORDS,
    SYNTH_FAMILIES,
    read_digit_utterances,
    read_synth_clips,
    synth_family,
    synth_groups,
)
from fakescope.errors import FakescopeError
from fakescope.media.channels import CONDITIONS
from fakescope.train.speech import tts
from fakescope.train.speech.catalogue import COLUMNS, DEFAULT_GENERATORS, generator_family
from fakescope.train.speech.corpus import build_speech_corpus
from fakescope.train.speech.fakes import GENERATORS
from fakescope.train.speech.generation import fake_condition
from fakescope.train.speech.tts import TTS_GENERATORS, tts_version
from fakescope.train.speech.vocoders import VOCODERS, weights_sha256
from tests.conftest import shared

FAMILIES = {"gan-vocoder", "autoregressive-flow-vocoder", "tts", "voice-conversion", "neural-codec"}
INSTALLED_TTS = [name for name in TTS_GENERATORS if tts_version(name)]
OWN_GENERATORS = {g for g in DEFAULT_GENERATORS if g in GENERATORS or g in INSTALLED_TTS}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def synth_rows() -> list[dict[str, str]]:
    return read_rows(shared("speech_synth") / "labels.csv")


def small_build(out: Path, **kwargs) -> Path:
    """Two digit utterances, two cheap generators, no synth clips: a build of a second or so."""
    settings = {"real_root": shared("speech_real"), "synth_root": None, "limit": 2, "workers": 1}
    return build_speech_corpus(out, **{"generators": ("phase_vocoder", "espeak"), **settings, **kwargs})


def test_every_speech_synth_generator_has_a_family():
    rows = synth_rows()
    families = {row["generator"]: synth_family(row["generator"]) for row in rows}
    assert {f for g, f in families.items() if g != "ground truth"} == FAMILIES
    assert families["ground truth"] == "real"
    assert families["Blow (voice conversion)"] == families["LVC-VC (voice anonymisation)"] == "voice-conversion"
    assert families["Vocos (from EnCodec tokens)"] == "neural-codec" and families["Vocos (mel)"] == "gan-vocoder"
    assert set(SYNTH_FAMILIES.values()) <= FAMILIES


def test_unknown_generator_is_an_error_naming_it():
    with pytest.raises(FakescopeError, match="labels.csv:7: unknown generator 'HiFi-GAN v9'"):
        synth_family("HiFi-GAN v9", where="labels.csv:7")


def test_synth_groups_join_each_real_with_what_was_made_from_it():
    rows = synth_rows()
    groups = synth_groups([r["file"] for r in rows], [r["label"] for r in rows])
    same = [
        # a vocoder of another source re-synthesising espnet's LJSpeech real
        ("fake/pwg_mbmelgan_LJ050-0031.wav", "real/espnet_real_LJ050-0031.wav"),
        # ESPnet's WaveNet output is stored as <id>_gen.wav
        ("fake/espnet_wnv-fastspeechv1-r9y9_LJ050-0030.wav", "real/espnet_real_LJ050-0030.wav"),
        # LVC: content p225_336 in the voice of p329_300 joins both recordings
        ("fake/lvc_adain_s2s_p225_336_p329_300.wav", "real/lvc_real_p225_336.wav"),
        ("fake/lvc_adain_s2s_p225_336_p329_300.wav", "real/lvc_real_p329_300.wav"),
        ("fake/lvc_lvcvc-anon_anon_p240_183.wav", "real/lvc_real_p240_183.wav"),
        # StarGANv2-VC: source, target and conversions share a speaker-pair folder
        ("fake/sgv2_autovc_seen_p226xp233.wav", "real/sgv2_real_p226xp233-source.wav"),
        ("real/sgv2_real_p226xp233-target.wav", "real/sgv2_real_p226xp233-source.wav"),
        # r9y9's demo names reals ..._target.wav and fakes ..._predicted.wav
        ("fake/wnv_wavenet_slt_slt-1.wav", "real/wnv_real_slt_slt-1.wav"),
    ]
    for a, b in same:
        assert groups[a] == groups[b], (a, b)
    assert groups["real/espnet_real_LJ050-0030.wav"] != groups["real/espnet_real_LJ050-0031.wav"]
    assert groups["real/wnv_real_slt_slt-1.wav"] != groups["real/wnv_real_slt_slt-2.wav"]
    sizes = Counter(groups.values())
    assert max(sizes.values()) <= 15 and len(sizes) > 150, "groups are utterances, not whole sources"


def test_synth_groups_on_plain_names():
    files = ["real/a_real_u1.wav", "fake/a_gan_u1.wav", "fake/b_gan_noisy_u1.wav", "fake/a_gan_u2.wav", "real/a_real_u3.wav"]
    groups = synth_groups(files, ["REAL", "FAKE", "FAKE", "FAKE", "REAL"])
    assert groups == {files[0]: "u1", files[1]: "u1", files[2]: "u1", files[3]: "u2", files[4]: "u3"}
    with pytest.raises(FakescopeError, match="real/oops.wav: name is not"):
        synth_groups(["real/oops.wav"], ["REAL"])


def test_synth_split_keeps_groups_whole_and_both_classes_in_val():
    clips = read_synth_clips(shared("speech_synth"), seed=1, val_fraction=0.25)
    assert len(clips) == 441
    splits = defaultdict(set)
    for clip in clips:
        splits[clip.group].add(clip.split)
    assert all(len(s) == 1 for s in splits.values())
    val = [c for c in clips if c.split == "val"]
    assert 0.15 < len(val) / len(clips) < 0.35 and {c.label for c in val} == {0, 1}
    assert {c.source for c in clips} == {"umelgan", "wnv", "lvc", "sgv2", "vocos", "univnet", "espnet", "pwg"}


def test_digit_utterances_use_every_file_once_and_hold_out_whole_speakers():
    root = shared("speech_real")
    utterances = read_digit_utterances(root, seed=3, val_speakers=2)
    files = [f for u in utterances for f in u.files]
    assert len(files) == len(set(files)) == 1500 and len(utterances) == 378
    assert all(2 <= len(u.files) <= 4 and len(u.words) == len(u.files) for u in utterances)
    for u in utterances[:20]:
        assert all(
            DIGIT_WORDS[int(f.name.split("_")[0])] == w and f"_{u.speaker}_" in f.name
            for f, w in zip(u.files, u.words, strict=True)
        )
    val = {u.speaker for u in utterances if u.split == "val"}
    assert len(val) == 2 and all(u.split == "train" for u in utterances if u.speaker not in val)
    assert read_digit_utterances(root, seed=3, val_speakers=2) == utterances
    assert read_digit_utterances(root, seed=4, val_speakers=2) != utterances
    assert len({u.speaker for u in read_digit_utterances(root, seed=3, val_speakers=2, limit=6)}) == 6
    with pytest.raises(FakescopeError, match="val_speakers must be 0 to 5"):
        read_digit_utterances(root, seed=3, val_speakers=6)


def test_second_pass_rejoins_train_recordings_within_their_group_and_leaves_val_speakers_alone():
    root = shared("speech_real")
    once = read_digit_utterances(root, seed=3, val_speakers=2)
    twice = read_digit_utterances(root, seed=3, val_speakers=2, passes=2)
    train_files = Counter(f for u in twice if u.split == "train" for f in u.files)
    assert len(train_files) == 1000 and set(train_files.values()) == {2}, "each train recording in exactly two utterances"
    assert [u for u in twice if u.split == "val"] == [u for u in once if u.split == "val"]
    assert len({u.key for u in twice}) == len(twice) and {u.key for u in once} <= {u.key for u in twice}
    groups: dict[str, set] = defaultdict(set)
    for u in twice:
        groups[u.group] |= set(u.files)
    assert all(len(files) <= 20 for files in groups.values()), "recordings never cross their group of 20"
    assert sum(len(files) for files in groups.values()) == 1500, "and every recording sits in one group"
    first = {u.files for u in twice if u.split == "train" and u.key.endswith("p1")}
    assert len(first) > 200 and not first & {u.files for u in once}, "the second pass joins other word sequences"


def test_fakes_get_the_same_condition_mix_as_reals():
    rng = np.random.default_rng(0)
    drawn = Counter(fake_condition(rng) for _ in range(2400))
    assert set(drawn) == set(CONDITIONS)
    assert drawn["clean"] / 2400 == pytest.approx(1 / 3, abs=0.03)
    assert all(n / 2400 == pytest.approx(1 / 12, abs=0.02) for c, n in drawn.items() if c != "clean")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("speech_corpus")
    started = time.monotonic()
    labels = build_speech_corpus(out, real_root=shared("speech_real"), synth_root=shared("speech_synth"), limit=6, workers=1)
    return labels, read_rows(labels), time.monotonic() - started


def test_build_writes_a_valid_labels_csv(corpus):
    labels, rows, _ = corpus
    assert list(rows[0]) == list(COLUMNS)
    assert {r["label"] for r in rows} == {"REAL", "FAKE"} and {r["split"] for r in rows} == {"train", "val"}
    check_no_leakage([Sample(Path(r["file"]), LABELS[r["label"]], r["group"], r["split"]) for r in rows], labels)
    assert all(r["condition"] in CONDITIONS for r in rows)
    digits = [r for r in rows if r["source"] == "fsdd"]
    synth = [r for r in rows if r["source"] != "fsdd" and r["generator"] not in OWN_GENERATORS]
    assert 0 < len(synth) <= 12 and len(digits) == 6 * (3 + len(OWN_GENERATORS))
    generators = {r["generator"]: r["family"] for r in digits if r["label"] == "FAKE"}
    expected = {name: generator_family(name) for name in OWN_GENERATORS}
    assert generators == expected
    # The utterance is the group (a real and its fakes together); a speaker is never on both sides.
    assert len({r["group"] for r in digits}) == 6 and all(r["group"].startswith(f"fsdd_{r['speaker']}_") for r in digits)
    assert all(len({r["split"] for r in digits if r["speaker"] == spk}) == 1 for spk in {r["speaker"] for r in digits})
    assert all(r["family"] == ("real" if r["label"] == "REAL" else synth_family(r["generator"])) for r in synth)


def test_each_speech_synth_real_is_also_faked_by_every_generator(corpus):
    labels, rows, _ = corpus
    reals = [r for r in rows if r["source"] != "fsdd" and r["label"] == "REAL" and r["condition"] == "clean"]
    made = [r for r in rows if r["source"] != "fsdd" and r["generator"] in OWN_GENERATORS]
    assert reals and len(made) == len(reals) * len(OWN_GENERATORS)
    for real in reals:
        utterance = real["file"].split("/")[1].split("_", 2)[2].removesuffix("_clean.wav")
        fakes = [
            r
            for r in made
            if r["file"].split("/")[1].split("_", 2)[2].startswith(utterance + "_")
            and r["file"].startswith(f"fake/{real['source']}_")
        ]
        assert {r["generator"] for r in fakes} == OWN_GENERATORS, real["file"]
        real_length = sf.info(labels.parent / real["file"]).frames
        for r in fakes:
            assert r["label"] == "FAKE" and r["family"] == generator_family(r["generator"])
            assert (r["group"], r["split"], r["speaker"]) == (real["group"], real["split"], real["speaker"])
            if r["generator"] in TTS_GENERATORS:  # a sentence cut to the real's length, not a longer clip
                assert sf.info(labels.parent / r["file"]).frames <= real_length, r["file"]


def test_each_real_utterance_is_written_clean_and_under_two_conditions(corpus):
    _, rows, _ = corpus
    by_utterance = defaultdict(list)
    for r in rows:
        if r["label"] == "REAL" and r["source"] == "fsdd":
            by_utterance[r["file"].rsplit("_", 1 + r["condition"].count("_"))[0]].append(r["condition"])
    assert len(by_utterance) == 6
    for conditions in by_utterance.values():
        assert len(conditions) == len(set(conditions)) == 3 and "clean" in conditions
    published = [r for r in rows if r["source"] != "fsdd" and r["generator"] not in OWN_GENERATORS]
    synth = Counter(r["file"].split("/")[1].rsplit("_" + r["condition"], 1)[0] for r in published)
    assert set(synth.values()) == {2}
    assert all(r["condition"] != "clean" for r in published if not r["file"].endswith("_clean.wav"))


def test_every_clip_is_16k_mono_pcm16_with_dither(corpus):
    labels, rows, _ = corpus
    root = labels.parent
    assert sorted(str(p.relative_to(root)) for p in root.glob("*/*.wav")) == sorted(r["file"] for r in rows)
    for r in rows:
        info = sf.info(root / r["file"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), r["file"]
        samples = sf.read(root / r["file"], dtype="int16")[0]
        assert 0.3 < len(samples) / 16000 < 4.0
        assert np.mean(samples == 0) < 0.2, f"{r['file']}: digital silence left in"


def test_manifest_records_settings_and_counts(corpus):
    labels, rows, _ = corpus
    manifest = json.loads((labels.parent / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["clips"] == len(rows)
    assert sum(manifest["counts"].values()) == len(rows)
    settings = manifest["settings"]
    assert settings["seed"] == 20261123 and settings["limit"] == 6
    assert settings["generators"] == [g for g in DEFAULT_GENERATORS if g in OWN_GENERATORS]
    assert settings["vocoders_sha256"] == {name: weights_sha256(name) for name in VOCODERS}
    assert set(settings["tts_versions"]) == set(INSTALLED_TTS) and all(settings["tts_versions"].values())


def test_same_settings_return_at_once_without_rewriting(corpus):
    labels, _, _ = corpus
    stamps = {p: p.stat().st_mtime_ns for p in labels.parent.rglob("*") if p.is_file()}
    started = time.monotonic()
    again = build_speech_corpus(
        labels.parent, real_root=shared("speech_real"), synth_root=shared("speech_synth"), limit=6, workers=1
    )
    assert again == labels and time.monotonic() - started < 1.0
    assert {p: p.stat().st_mtime_ns for p in labels.parent.rglob("*") if p.is_file()} == stamps


def test_an_interrupted_build_keeps_its_clips_and_rewrites_the_same_bytes(tmp_path):
    labels = small_build(tmp_path)
    clips = sorted(tmp_path.glob("*/*.wav"))
    original = {p: p.read_bytes() for p in clips}
    stamps = {p: p.stat().st_mtime_ns for p in clips}
    labels.unlink()
    clips[0].unlink()
    (tmp_path / "fake" / "half.wav.part").write_bytes(b"RIFF")
    assert small_build(tmp_path) == labels
    assert {p: p.read_bytes() for p in clips} == original
    assert all(p.stat().st_mtime_ns == stamps[p] for p in clips[1:])
    assert not list(tmp_path.glob("*/*.part"))


def test_a_changed_seed_rebuilds(tmp_path):
    first = read_rows(small_build(tmp_path, seed=1))
    hash1 = json.loads((tmp_path / "manifest.json").read_text())["settings_hash"]
    second = read_rows(small_build(tmp_path, seed=2))
    assert json.loads((tmp_path / "manifest.json").read_text())["settings_hash"] != hash1
    assert first != second
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("*/*.wav")) == sorted(r["file"] for r in second)


def test_workers_write_the_same_bytes_as_inline(tmp_path):
    kwargs = {"generators": ("world",), "limit": 2}  # WORLD: its D4C was not run-to-run stable at 8 kHz
    small_build(tmp_path / "inline", **kwargs)
    small_build(tmp_path / "pool", workers=2, **kwargs)
    inline = {p.relative_to(tmp_path / "inline"): p.read_bytes() for p in (tmp_path / "inline").glob("*/*.wav")}
    pool = {p.relative_to(tmp_path / "pool"): p.read_bytes() for p in (tmp_path / "pool").glob("*/*.wav")}
    assert len(inline) == 2 * (3 + 1) and inline == pool


def test_missing_espeak_is_skipped_and_recorded(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(tts, "ESPEAK", "espeak-ng-not-installed")
    with caplog.at_level(logging.WARNING):
        rows = read_rows(small_build(tmp_path))
    assert "without the espeak generator" in caplog.text
    assert {r["generator"] for r in rows if r["label"] == "FAKE"} == {"phase_vocoder"}
    settings = json.loads((tmp_path / "manifest.json").read_text())["settings"]
    assert settings["generators"] == ["phase_vocoder"] and settings["tts_versions"] == {}


def test_a_second_build_of_the_same_folder_waits_for_the_first(tmp_path):
    import fcntl

    tmp_path.mkdir(exist_ok=True)
    with (tmp_path / ".build.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = threading.Thread(target=small_build, args=(tmp_path,))
        waiting.start()
        waiting.join(timeout=0.5)
        assert waiting.is_alive() and not (tmp_path / "manifest.json").exists()
    waiting.join(timeout=30)
    assert not waiting.is_alive() and (tmp_path / "labels.csv").is_file()


def test_bad_requests_are_clear_errors(tmp_path):
    with pytest.raises(FakescopeError, match="unknown speech generator 'wavenet'"):
        small_build(tmp_path / "a", generators=("wavenet",))
    with pytest.raises(FakescopeError, match="no speech generator"):
        small_build(tmp_path / "a", generators=())
    foreign = tmp_path / "b"
    (foreign / "real").mkdir(parents=True)
    (foreign / "real" / "mine.wav").write_bytes(b"RIFF")
    with pytest.raises(FakescopeError, match="no manifest.json"):
        small_build(foreign)
    assert (foreign / "real" / "mine.wav").exists()
    with pytest.raises(FakescopeError, match="labels.csv: not found"):
        small_build(tmp_path / "c", real_root=tmp_path)
