"""The post chain reaches every loudness preset from quiet, loud and clipped
sources, as ffmpeg's ebur128 meter measures it: within 0.5 LU of the target,
true peak at or under the ceiling plus 0.1 dB. First on files through
`cadenza-worker master` (the pool's chain), then end to end through jobs."""
import pytest

from conftest import Api, new_key
from post_helpers import PRESETS, ebur128, master, scale_to, synth_music

SOURCES = {"quiet": (-40, False), "moderate": (-25, False), "loud": (-9, False),
           "clipped": (-6, True)}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("loudness")
    base = d / "base.wav"
    synth_music(base, 20)
    made = {}
    for name, (lufs, clip) in SOURCES.items():
        made[name] = d / f"{name}.wav"
        scale_to(base, made[name], lufs, clip)
    return made


def test_sources_are_what_they_claim(sources):
    for name, (lufs, clip) in SOURCES.items():
        have, peak = ebur128(sources[name])
        if clip:
            assert peak >= -0.1  # flat at full scale
        else:
            assert abs(have - lufs) <= 0.2, (name, have)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_master_meets_preset(sources, tmp_path, source, preset):
    target, ceiling = PRESETS[preset]
    out = tmp_path / f"{source}-{preset}.flac"
    rc, qa = master(sources[source], out, "--preset", preset)
    assert rc == 0, qa
    lufs, peak = ebur128(out)  # a meter we did not write
    assert abs(lufs - target) <= 0.5, (source, preset, lufs)
    assert peak <= ceiling + 0.1, (source, preset, peak)
    assert qa["target"] == {"preset": preset, "integrated_lufs": target, "true_peak_dbtp": ceiling}
    assert abs(qa["integrated_lufs"] - lufs) <= 0.1  # our figures agree with ffmpeg's
    assert qa["verdicts"]["loudness"] == "pass" and qa["verdicts"]["true_peak"] == "pass"


def test_clipped_source_is_flagged(sources, tmp_path):
    rc, qa = master(sources["clipped"], tmp_path / "c.wav")
    assert rc == 0  # the master itself meets its target...
    assert qa["input"]["clipped_samples"] > 0
    assert qa["verdicts"]["source_clipping"] == "fail"  # ...but a person must look
    assert qa["verdict"] == "review" and any("clipped" in f for f in qa["flags"])
    rc, qa = master(sources["moderate"], tmp_path / "m.wav")
    assert qa["verdict"] == "pass" and qa["flags"] == []


def test_silence_is_refused(tmp_path):
    import subprocess
    silent = tmp_path / "silent.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "anullsrc=r=48000:cl=stereo", "-t", "5", str(silent)], check=True)
    rc, err = master(silent, tmp_path / "out.wav")
    assert rc == 1 and "silent" in err


def test_unreachable_target_is_flagged(sources, tmp_path):
    rc, qa = master(sources["moderate"], tmp_path / "x.wav", "--target", "-5", "--ceiling", "-9")
    assert rc == 1
    assert qa["verdicts"]["loudness"] == "fail" and qa["verdict"] == "review"
    _, peak = ebur128(tmp_path / "x.wav")
    assert peak <= -9 + 0.1  # the ceiling wins


def test_other_rates_are_resampled(sources, tmp_path):
    import subprocess
    src = tmp_path / "44k.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(sources["moderate"]), "-ar",
                    "44100", "-c:a", "pcm_f32le", str(src)], check=True)
    rc, qa = master(src, tmp_path / "out.flac")
    assert rc == 0 and qa["sample_rate"] == 48000 and qa["input"]["sample_rate"] == 44100
    assert abs(qa["duration_s"] - 20) < 0.01


@pytest.fixture(scope="module")
def api(env, cli):
    _, key = new_key(cli)
    return Api(env["CADENZA_API_URL"], key)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_job_meets_preset(api, tmp_path, preset):
    target, ceiling = PRESETS[preset]
    job = api.submit(prompt=f"post loudness test, {preset}", duration_s=12, seed=9100,
                     loudness={"preset": preset})
    assert job["request"]["loudness"] == {"preset": preset, "target_lufs": target,
                                          "true_peak_dbtp": ceiling}
    job = api.wait(job["id"])
    assert job["state"] == "succeeded", (job.get("failure"), job.get("qa"))
    status, _, data = api.request("GET", f"/v1/jobs/{job['id']}/audio?variant=master&format=flac")
    assert status == 200
    path = tmp_path / "master.flac"
    path.write_bytes(data)
    lufs, peak = ebur128(path)
    assert abs(lufs - target) <= 0.5 and peak <= ceiling + 0.1, (lufs, peak)


def test_explicit_numbers_override_the_preset(api):
    job = api.submit(prompt="post loudness override", duration_s=3, seed=9101,
                     loudness={"preset": "broadcast", "target_lufs": -20})
    assert job["request"]["loudness"] == {"preset": "broadcast", "target_lufs": -20,
                                          "true_peak_dbtp": -1}
    status, _, problem = api.json("POST", "/v1/jobs",
                                  {"prompt": "x", "loudness": {"preset": "loud"}})
    assert status == 422 and problem["field"] == "loudness.preset"
