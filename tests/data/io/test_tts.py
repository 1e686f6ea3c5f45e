"""Offline speech synthesis: the same clip in every process, breathy voice variants included."""

from __future__ import annotations

from assoc_lightning.data.io.tts import Speaker, synthesize_in_subprocess, voice_variants


def test_two_generations_write_the_same_bytes(tmp_path):
    assert {"f2", "whisper"} <= set(voice_variants())
    speakers = [Speaker("en", v, 150, 50, 50) for v in ("f2", "whisper", "klatt3")]
    for run in ("a", "b"):  # two fresh processes, as two data dirs generated apart
        synthesize_in_subprocess(
            [
                (w, s, tmp_path / run / f"{s.variant}_{w}.wav")
                for s in speakers
                for w in ("one", "two")
            ]
        )
    clips = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(clips) == 6
    for name in clips:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
