"""Catalogue checks. A job's master is imported into the catalogue with
`cadenzactl catalog import`; submitting the same request and seed again
(with "cache": false, so it is generated again and not answered from the
prompt cache) renders the same audio, which the post pool must flag `needs_review` with
that catalogue track. The same holds when the catalogue holds an MP3
128 kbit/s re-encode of the track. Unrelated generated tracks pass."""
import json
import subprocess

import pytest

from conftest import TERMINAL, Api, new_key

DONE = TERMINAL | {"in_review"}

# Prompts and seeds no other test uses: the catalogue outlives a test run.
SONG_A = dict(prompt="catalogue test song A, solo harp", duration_s=15, seed=9300)
SONG_B = dict(prompt="catalogue test song B, brass band", duration_s=15, seed=9301)


@pytest.fixture(scope="module")
def api(env, cli):
    _, key = new_key(cli)
    return Api(env["CADENZA_API_URL"], key)


def master_of(api, request, tmp_path, name):
    job = api.wait(api.submit(**request)["id"], states=DONE)
    assert job["state"] in ("succeeded", "in_review"), job.get("failure")
    status, _, data = api.request("GET", f"/v1/jobs/{job['id']}/audio?variant=master&format=flac")
    assert status == 200
    path = tmp_path / name
    path.write_bytes(data)
    return path


def import_dir(cli, folder):
    out = cli("catalog", "import", str(folder), "--artist", "Catalogue Test")
    return [json.loads(line) for line in out.stdout.splitlines()]


def check_flagged(api, request, track_id):
    job = api.wait(api.submit(**request, cache=False)["id"], states=DONE)
    assert job["state"] == "in_review", job["state"]
    qa = job["qa"]
    assert qa["verdict"] == "review" and qa["verdicts"]["catalog"] == "fail"
    best = qa["catalog"]["best"]
    assert best["track_id"] == track_id and best["score"] >= qa["catalog"]["threshold"]
    assert best["offset_s"] == pytest.approx(0, abs=0.5)
    assert any(f"track {track_id}" in f for f in qa["flags"])
    return best


def test_resubmitted_catalogue_track_is_flagged(api, cli, tmp_path):
    folder = tmp_path / "catalog-a"
    folder.mkdir()
    master_of(api, SONG_A, folder, "song-a.flac")
    [track] = import_dir(cli, folder)
    assert track["status"] in ("imported", "exists") and track["title"] == "song-a"
    best = check_flagged(api, SONG_A, track["id"])
    assert best["score"] >= 0.95 and best["title"] == "song-a"
    [again] = import_dir(cli, folder)  # importing the same bytes again is a no-op
    assert again["id"] == track["id"] and again["status"] == "exists"


def test_mp3_reencode_in_catalogue_is_flagged(api, cli, tmp_path):
    src = master_of(api, SONG_B, tmp_path, "song-b.flac")
    folder = tmp_path / "catalog-b"
    folder.mkdir()
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-b:a", "128k",
                    str(folder / "song-b-128k.mp3")], check=True)
    [track] = import_dir(cli, folder)
    check_flagged(api, SONG_B, track["id"])


def test_unrelated_tracks_are_not_flagged(api):
    requests = [dict(prompt="catalogue test, unrelated ambient pads", duration_s=15, seed=9310),
                dict(prompt="catalogue test, unrelated jazz trio", duration_s=15, seed=9311),
                dict(prompt=SONG_A["prompt"], duration_s=15, seed=9312)]  # same prompt, new seed
    for r in requests:
        job = api.wait(api.submit(**r)["id"], states=DONE)
        assert job["state"] == "succeeded", (r, job["qa"].get("catalog"))
        assert job["qa"]["verdicts"]["catalog"] == "pass"
        assert job["qa"]["catalog"]["tracks_checked"] >= 1


def test_import_reports_unreadable_files(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("not audio")
    out = cli("catalog", "import", str(tmp_path), check=False)
    assert out.returncode == 1 and "notes.txt" in out.stderr
