"""The composer and the model backends, black-box against the running stack.

Ten varied prompts (kept here) go through the whole path; for each job the
tempo of the raw mix and of the master is measured by aubio (`aubio tempo`,
which we did not write) and must be within 2% of the requested tempo or of
exactly double or half;
its length, read by ffprobe, must be within 50 ms of the request; every
instrument group the prompt asks for must have a stem that is not silent.
Also: the same request and seed give the same mix (sha256), another seed
other music; a prompt of unknown words still makes music and lists them;
out-of-range requests are refused naming the field; progress is reported
and a canceled job stops; http@1 works against tests/reference_model.py and
reports each failure class of the contract.
"""
import array
import json
import os
import pathlib
import re
import struct
import subprocess
import sys
import time

import pytest

from conftest import ROOT, new_key, Api

# (prompt, extra request fields, seed, groups the prompt asks for, tempo)
PROMPTS = [
    ("warm lo-fi hip hop with rhodes and vinyl drums, 82 bpm, A minor, 45 seconds", {}, 11,
     {"harmony", "drums"}, 82),
    ("upbeat synthwave with arpeggios and a drum machine, 112 bpm, F# minor", {"duration_s": 40},
     12, {"harmony", "drums"}, 112),
    ("dark trap with 808s and hi-hats, 136 bpm", {"duration_s": 40}, 13, {"bass", "drums"}, 136),
    ("jazz trio with piano, upright bass and brushes, Bb major", {"tempo_bpm": 132, "duration_s": 50},
     14, {"harmony", "bass", "drums"}, 132),
    ("happy pop with piano, acoustic guitar and strings, 118 bpm", {"duration_s": 40}, 15,
     {"harmony", "pad"}, 118),
    ("deep house with rhodes, synth bass and claps", {"tempo_bpm": 124, "duration_s": 45}, 16,
     {"harmony", "bass", "drums"}, 124),
    ("folk song with acoustic guitar, fiddle and shaker, 96 bpm, G major, 40 seconds", {}, 17,
     {"harmony", "melody", "drums"}, 96),
    ("roots reggae with organ, bass and drums, 76 bpm", {"duration_s": 48}, 18,
     {"harmony", "bass", "drums"}, 76),
    ("blues shuffle with organ, harmonica and drums, 88 bpm, key of E", {"duration_s": 44}, 19,
     {"harmony", "melody", "drums"}, 88),
    ("calm solo piano, 100 bpm, C major, one minute", {}, 20, {"harmony", "melody"}, 100),
]


def download(api, job, kind, name=None):
    art = next(a for a in job["artifacts"] if a["kind"] == kind and (name is None or a["name"] == name))
    status, _, data = api.request("GET", art["url"])
    assert status == 200, (art["url"], status)
    return art, data


def wav_rms(data):
    """RMS of a float or 16-bit PCM WAV's samples (every 5th, which is plenty)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            code, bits = fmt[0], fmt[5]
            samples = array.array("f" if code == 3 else "h")
            samples.frombytes(body[:len(body) // samples.itemsize * samples.itemsize])
            scale = 1.0 if code == 3 else 32768.0
            picked = samples[::5]
            return (sum((x / scale) ** 2 for x in picked) / max(1, len(picked))) ** 0.5
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


def aubio_tempo(path):
    out = subprocess.run(["aubio", "tempo", str(path)], capture_output=True, text=True, check=True)
    return float(re.search(r"([\d.]+) bpm", out.stdout).group(1))


def ffprobe_duration(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=duration",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def tempo_matches(measured, wanted):
    return any(abs(measured / (wanted * k) - 1) <= 0.02 for k in (1, 2, 0.5))


@pytest.fixture(scope="module")
def api(env, cli):
    _, key = new_key(cli)
    return Api(env["CADENZA_API_URL"], key)


@pytest.fixture(scope="module")
def ten(api):
    """The ten prompts, submitted together and followed to their end."""
    jobs = [api.submit(prompt=p, seed=seed, stems=True, **fields)
            for p, fields, seed, _, _ in PROMPTS]
    return [api.wait(j["id"], timeout=300) for j in jobs]


@pytest.mark.parametrize("i", range(len(PROMPTS)))
def test_prompt_is_followed(api, ten, tmp_path, i):
    prompt, fields, seed, groups, tempo = PROMPTS[i]
    job = ten[i]
    assert job["state"] == "succeeded", job.get("failure")
    assert job["request"]["ignored"] == (["roots"] if prompt.startswith("roots") else [])
    duration = job["request"]["duration_s"]

    # Tempo and length of the mix, by tools we did not write.
    _, mix = download(api, job, "raw")
    path = tmp_path / "mix.wav"
    path.write_bytes(mix)
    measured = aubio_tempo(path)
    print(f"{prompt!r}: asked {tempo} BPM, aubio measured {measured}")
    assert tempo_matches(measured, tempo), (measured, tempo)
    assert abs(ffprobe_duration(path) - duration) <= 0.05
    _, master = download(api, job, "master")  # and the delivered master too
    (tmp_path / "master.flac").write_bytes(master)
    assert abs(ffprobe_duration(tmp_path / "master.flac") - duration) <= 0.05
    assert tempo_matches(aubio_tempo(tmp_path / "master.flac"), tempo)

    # Every group asked for has a stem that sounds; every stem is as long.
    stems = {a["name"] for a in job["artifacts"] if a["kind"] == "stem"}
    assert groups <= stems, (groups, stems)
    for g in groups:
        art, data = download(api, job, "stem", g)
        assert art["format"] == "wav" and abs(art["duration_s"] - duration) <= 0.05
        assert wav_rms(data) > 1e-3, f"stem {g} is silent"

    # The score comes with it.
    art, midi = download(api, job, "midi")
    assert art["format"] == "mid" and midi[:4] == b"MThd"


def test_provenance_in_the_generated_event(ten, psql):
    job = ten[0]
    detail = json.loads(psql(f"SELECT detail FROM job_events WHERE job_id = '{job['id']}' "
                             f"AND event = 'generated'"))
    assert detail["model"] == "composer@1" and detail["seed"] == 11
    assert detail["controls"] == job["request"]["controls"]
    chosen = detail["chosen"]
    assert chosen["tempo_bpm"] == 82 and chosen["key"] == "A minor" and chosen["style"] == "lofi"
    assert sum(s["bars"] for s in chosen["form"]) == chosen["bars"]
    assert {a["kind"] for a in detail["artifacts"]} == {"raw", "midi", "stem"}
    uri = psql(f"SELECT uri FROM artifacts WHERE job_id = '{job['id']}' AND kind = 'manifest'")
    manifest = json.loads(pathlib.Path(uri.removeprefix("file://")).read_text())
    assert manifest["seed"] == 11 and manifest["chosen"] == chosen


def test_same_seed_same_mix_other_seed_other_music(api):
    request = dict(prompt="dreamy synthwave with pads and a saw lead, 104 bpm", duration_s=12, seed=4242)
    jobs = [api.submit(**request), api.submit(**request), api.submit(**dict(request, seed=4243)),
            api.submit(**dict(request, stems=True))]
    done = [api.wait(j["id"]) for j in jobs]
    assert all(j["state"] == "succeeded" for j in done), [j.get("failure") for j in done]
    mix = [next(a for a in j["artifacts"] if a["kind"] == "raw")["sha256"] for j in done]
    midi = [next(a for a in j["artifacts"] if a["kind"] == "midi")["sha256"] for j in done]
    assert mix[0] == mix[1] and midi[0] == midi[1]
    assert mix[2] != mix[0] and midi[2] != midi[0]
    assert mix[3] == mix[0]  # keeping stems does not change the mix


def test_nothing_understood_still_makes_music(api):
    job = api.submit(prompt="Zorblax quintessential marmalade", duration_s=8, seed=5)
    assert job["request"]["ignored"] == ["zorblax", "quintessential", "marmalade"]
    assert job["request"]["controls"] == {"duration_s": 8}
    job = api.wait(job["id"])
    assert job["state"] == "succeeded", job.get("failure")
    _, mix = download(api, job, "raw")
    assert wav_rms(mix) > 1e-3
    assert abs(job["qa"]["integrated_lufs"] + 14) <= 0.5


@pytest.mark.parametrize("fields,field", [
    ({"duration_s": 0}, "duration_s"),
    ({"duration_s": 601}, "duration_s"),
    ({"tempo_bpm": 500}, "tempo_bpm"),
    ({"instruments": ["piano", "kazoo"]}, "instruments[1]"),
    ({"model": "http@1", "stems": True}, "stems"),
])
def test_out_of_range_is_refused(api, psql, fields, field):
    before = psql("SELECT count(*) FROM jobs")
    status, headers, body = api.json("POST", "/v1/jobs", dict(prompt="lofi", **fields))
    assert status == 422 and headers["Content-Type"] == "application/problem+json"
    assert body["field"] == field and body["detail"]
    assert psql("SELECT count(*) FROM jobs") == before


def test_progress_and_cancel_between_steps(api, env, psql):
    """A ten-minute piece reports progress while it renders and stops within
    a second of being canceled (the worker checks between steps)."""
    job = api.submit(prompt="ambient pads", duration_s=600, seed=3)
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len([p for p in seen if p > 0]) < 2:
        _, _, j = api.json("GET", f"/v1/jobs/{job['id']}")
        if j["state"] == "generating" and (not seen or j["progress"]["percent"] != seen[-1]):
            seen.append(j["progress"]["percent"])
        time.sleep(0.2)
    assert len([p for p in seen if p > 0]) >= 2, seen  # progress events, every 2 s
    status, _, canceled = api.json("POST", f"/v1/jobs/{job['id']}/cancel")
    assert status == 200 and canceled["state"] == "canceled"
    canceled_at = time.monotonic()
    log = pathlib.Path(env["CADENZA_STATE_DIR"]) / "logs" / "worker-inference.log"
    while time.monotonic() < canceled_at + 10:
        lines = [l for l in log.read_text().splitlines() if job["id"] in l]
        if lines and "render stopped: job canceled" in lines[-1]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the worker did not stop the canceled render")
    assert time.monotonic() - canceled_at < 2
    assert psql(f"SELECT count(*) FROM job_events WHERE job_id = '{job['id']}' "
                f"AND event = 'generated'") == "0"
    folder = pathlib.Path(env["CADENZA_ARTIFACT_DIR"]) / job["id"]
    assert not folder.exists() or not [f for f in folder.rglob("*") if f.is_file()]


# ---------------------------------------------------------------- http@1

@pytest.fixture(scope="module")
def reference_model(env):
    """tests/reference_model.py on the port the stack's workers call."""
    port = env["CADENZA_HTTP_MODEL_PORT"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests/reference_model.py"), "--port", port],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().startswith("listening on"), "reference model did not start"
    yield proc
    proc.terminate()
    proc.wait(timeout=10)


def failure_class(api, psql, job_id, timeout=120):
    """The failure class of the job's failed event (a retry may follow it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cls = psql(f"SELECT detail->'failure'->>'class' FROM job_events "
                   f"WHERE job_id = '{job_id}' AND event = 'failed' ORDER BY id LIMIT 1")
        if cls:
            return cls
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never failed")


def test_http_model_down(api, psql):
    """Nothing listening (the reference model's fixture is not used here)."""
    job = api.submit(prompt="anything", model="http@1", duration_s=3, seed=1)
    assert failure_class(api, psql, job["id"]) == "backend_unavailable"


def test_http_model_answers(api, psql, reference_model):
    job = api.submit(prompt="dreamy synthwave, 100 bpm", model="http@1", duration_s=6, seed=9)
    job = api.wait(job["id"])
    assert job["state"] == "succeeded", job.get("failure")
    assert job["model"] == "http@1"
    art = next(a for a in job["artifacts"] if a["kind"] == "master")
    assert abs(art["duration_s"] - 6) <= 0.05
    detail = json.loads(psql(f"SELECT detail FROM job_events WHERE job_id = '{job['id']}' "
                             f"AND event = 'generated'"))
    assert detail["model"] == "http@1" and detail["chosen"]["model_version"] == "reference-1"
    assert not any(a["kind"] in ("stem", "midi") for a in job["artifacts"])


@pytest.mark.parametrize("word,cls", [
    ("reference:unavailable", "backend_unavailable"),
    ("reference:garbage", "model_error"),
    ("reference:error", "model_error"),
    ("reference:short", "model_error"),
    ("reference:slow", "timeout"),
])
def test_http_model_failures_are_classified(api, psql, reference_model, word, cls):
    job = api.submit(prompt=f"anything {word}", model="http@1", duration_s=3, seed=1)
    assert failure_class(api, psql, job["id"]) == cls
