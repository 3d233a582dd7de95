"""Every delivery format of one job decodes (ffprobe) with the right duration,
channels and rate, downloads with its media type, and is recorded, with the
provenance manifest, as an artifact with its sha256, size and duration."""
import hashlib
import json
import pathlib

import pytest

from conftest import Api, new_key
from post_helpers import probe

FORMATS = {"flac": ("audio/flac", "flac"), "wav": ("audio/wav", "pcm_s24le"),
           "mp3": ("audio/mpeg", "mp3"), "opus": ("audio/ogg; codecs=opus", "opus")}
DURATION = 12.5


@pytest.fixture(scope="module")
def finished(env, cli):
    _, key = new_key(cli)
    api = Api(env["CADENZA_API_URL"], key)
    job = api.submit(prompt="post encodings test, strings", duration_s=DURATION, seed=9200,
                     outputs=["opus", "mp3", "wav", "flac"])
    assert job["request"]["outputs"] == ["flac", "wav", "mp3", "opus"]  # canonical order
    job = api.wait(job["id"])
    assert job["state"] == "succeeded", (job.get("failure"), job.get("qa"))
    return api, job


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_format_decodes(finished, tmp_path, fmt):
    api, job = finished
    mime, codec = FORMATS[fmt]
    art = [a for a in job["artifacts"] if a["kind"] == "master" and a["format"] == fmt]
    assert len(art) == 1
    status, headers, data = api.request("GET", art[0]["url"])
    assert status == 200 and headers["Content-Type"] == mime
    assert hashlib.sha256(data).hexdigest() == art[0]["sha256"] and len(data) == art[0]["bytes"]
    assert art[0]["duration_s"] == pytest.approx(DURATION, abs=0.01)
    path = tmp_path / f"master.{fmt}"
    path.write_bytes(data)
    duration, channels, rate, got_codec = probe(path)
    assert got_codec == codec and channels == 2 and rate == 48000
    # Lossy codecs pad to whole frames; gapless metadata trims most of it.
    assert duration == pytest.approx(DURATION, abs=0.06), duration


def test_mp3_is_320k(finished, tmp_path):
    api, job = finished
    _, _, data = api.request("GET", f"/v1/jobs/{job['id']}/audio?variant=master&format=mp3")
    seconds = DURATION
    assert len(data) * 8 / seconds == pytest.approx(320000, rel=0.03)


def test_unknown_format_is_refused(finished):
    api, job = finished
    status, _, problem = api.json("GET", f"/v1/jobs/{job['id']}/audio?format=aac")
    assert status == 422 and problem["field"] == "format"


def test_qa_report_fields(finished):
    _, job = finished
    qa = job["qa"]
    for field in ("integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs",
                  "clipped_samples", "silence_ratio", "dc_offset", "stereo_correlation"):
        assert qa[field] is not None, field
    assert qa["clipped_samples"] == 0 and qa["silence_ratio"] < 0.5
    assert abs(qa["dc_offset"]) < 0.001 and -1 <= qa["stereo_correlation"] <= 1
    assert qa["verdict"] == "pass" and qa["flags"] == []
    assert set(qa["verdicts"]) >= {"loudness", "true_peak", "silence", "source_clipping",
                                   "dc_offset", "catalog"}


def test_provenance_manifest(finished, psql):
    _, job = finished
    row = psql("SELECT uri || '|' || sha256 FROM artifacts WHERE job_id = :'p1'"
               " AND kind = 'manifest'", job["id"])
    uri, sha = row.split("|")
    path = pathlib.Path(uri.removeprefix("file://"))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    m = json.loads(path.read_text())
    assert m["job_id"] == job["id"] and m["seed"] == 9200
    assert m["model"] == {"name": "composer", "version": "1"}
    assert m["controls"] == job["request"].get("controls")
    raw = psql("SELECT sha256 FROM artifacts WHERE job_id = :'p1' AND kind = 'raw'", job["id"])
    assert m["input"]["sha256"] == raw
    outputs = {o["format"]: o["sha256"] for o in m["outputs"]}
    assert outputs == {a["format"]: a["sha256"] for a in job["artifacts"] if a["kind"] == "master"}
    assert m["chain"]["target_lufs"] == -14 and m["chain"]["limiter"]["oversampling"] == 4
    assert m["fingerprint"]["algorithm"] == "chromaprint" and m["fingerprint"]["items"] > 50


def test_a_sixteen_digit_seed_is_recorded_exactly(tenant_api, psql):
    """Seeds go up to 2^53 - 1; every document that names one must name
    that one, not a neighbour rounded to 15 digits."""
    seed = 6211499860674059
    api = tenant_api
    job = api.wait(api.submit(prompt="provenance of a large seed", duration_s=2, seed=seed)["id"])
    assert job["state"] == "succeeded" and job["seed"] == seed
    uri = psql("SELECT uri FROM artifacts WHERE job_id = :'p1' AND kind = 'manifest'", job["id"])
    assert json.loads(pathlib.Path(uri.removeprefix("file://")).read_text())["seed"] == seed
