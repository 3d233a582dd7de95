"""Track features for playlists. The post worker analyses every master
(common/music/analysis.c) into the QA report's `analysis`; a succeeded job gets
its `tracks` row from it (migrations/0013_job_tracks.sql), a cached repeat
does not; `cadenzactl catalog import` analyses the files it imports into
`tracks` rows of their own, and fills rows missing when run again."""
import base64
import json
import math
import os
import struct
import subprocess
import uuid

import pytest

from conftest import ROOT, Api, new_key

NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def camelot(key, mode):
    """The Camelot number and letter of a pitch class and mode (common/music/track.c)."""
    major = key if mode else (key + 3) % 12
    return (7 * major + 7) % 12 + 1, "B" if mode else "A"


def camelot_distance(a, b):
    (na, la), (nb, lb) = camelot(*a), camelot(*b)
    d = abs(na - nb)
    return min(d, 12 - d) + (la != lb)


def unit_embedding(raw):
    assert len(raw) == 128
    v = struct.unpack("<32f", raw)
    assert math.sqrt(sum(x * x for x in v)) == pytest.approx(1.0, abs=1e-4)
    return v


@pytest.fixture(scope="module")
def tenant(env, cli):
    name, key = new_key(cli)
    api = Api(env["CADENZA_API_URL"], key)
    api.tenant = name
    return api


def track_row(psql, track_id):
    out = psql("SELECT row_to_json(t) FROM (SELECT id, source, tenant_id, title, artist,"
               " duration_s, tempo_bpm, key, mode, energy, loudness_lufs, moods, genres,"
               " popularity, encode(embedding, 'base64') AS embedding FROM tracks"
               " WHERE id = :'p1') t", track_id)
    return json.loads(out) if out else None


def test_succeeded_job_becomes_a_track_and_its_cached_repeat_does_not(tenant, psql):
    # A word the prompt reader ignores makes the request new to the prompt
    # cache on every run; the audio depends on the controls and the seed.
    take = uuid.uuid4().hex[:8]
    request = dict(prompt=f"trap beat with 808s, 140 bpm, F minor, 20 seconds, take{take}",
                   seed=4401)
    job = tenant.wait(tenant.submit(**request)["id"])
    assert job["state"] == "succeeded", job.get("failure") or job.get("qa", {}).get("flags")

    # The QA report carries the analysis of the master.
    a = job["qa"]["analysis"]
    assert a["tempo_bpm"] == pytest.approx(140, rel=0.03)
    assert a["mode"] in ("major", "minor") and a["key"] == NAMES[a["key_index"]]
    # The key asked for, its tonic in the other mode, or a neighbour on the
    # Camelot wheel (relative major, dominant, subdominant): what a chroma
    # profile can confuse.
    mode = 1 if a["mode"] == "major" else 0
    assert a["key_index"] == 5 or camelot_distance((a["key_index"], mode), (5, 0)) <= 1, a
    number, letter = camelot(a["key_index"], mode)
    assert a["camelot"] == f"{number}{letter}"
    assert 0 <= a["energy"] <= 1
    assert a["loudness_lufs"] == pytest.approx(job["qa"]["integrated_lufs"], abs=0.02)
    assert a["genres"] == ["trap"]
    assert a["duration_s"] == pytest.approx(job["qa"]["duration_s"], abs=0.01)
    assert job["qa"]["chain"]["analysis_ms"] >= 0
    emb = unit_embedding(base64.b64decode(a["embedding"]))

    # Its tracks row, for its tenant only, made from that analysis.
    row = track_row(psql, job["id"])
    assert row, "no tracks row for the succeeded job"
    assert row["source"] == "job" and row["tenant_id"] == tenant.tenant
    assert row["title"] == request["prompt"][:80] and row["artist"] == "Cadenza"
    assert row["tempo_bpm"] == pytest.approx(a["tempo_bpm"], rel=1e-4)
    assert (row["key"], row["mode"]) == (a["key_index"], mode)
    assert row["energy"] == pytest.approx(a["energy"], abs=1e-4)
    assert row["duration_s"] == pytest.approx(a["duration_s"], abs=0.01)
    assert row["moods"] == a["moods"] and row["genres"] == ["trap"]
    assert row["popularity"] == 0
    assert unit_embedding(base64.b64decode(row["embedding"])) == emb

    # The same request again is answered from the prompt cache: the same
    # audio, so no second row.
    status, _, cached = tenant.json("POST", "/v1/jobs", request)
    assert status in (200, 202) and cached["state"] == "succeeded", cached
    assert cached["cached_from"] == job["id"]
    assert track_row(psql, cached["id"]) is None
    assert psql("SELECT count(*) FROM tracks WHERE tenant_id = :'p1'", tenant.tenant) == "1"


def test_reviewed_job_becomes_a_track_when_approved(env, cli, psql):
    """A job held for review has its QA report (and analysis) stored when it
    enters in_review; its track appears when a curator approves it, not
    before, and a rejected one never gets one."""
    tenant, sub = new_key(cli)
    cur = cli("keys", "create", "--tenant", tenant, "--role", "curator").stdout.strip()
    submitter, curator = Api(env["CADENZA_API_URL"], sub), Api(env["CADENZA_API_URL"], cur)
    ids = []
    for n in range(2):
        job = submitter.submit(prompt=f"house groove {n}, 124 bpm", duration_s=12, review="always")
        ids.append(submitter.wait(job["id"], states={"in_review", "failed"})["id"])
    for i in ids:
        job = submitter.json("GET", f"/v1/jobs/{i}")[2]
        assert job["state"] == "in_review" and job["qa"]["analysis"]["tempo_bpm"] > 0
        assert track_row(psql, i) is None
    assert curator.json("POST", f"/v1/review/{ids[0]}/approve", {"reason": "ok"})[0] == 200
    assert curator.json("POST", f"/v1/review/{ids[1]}/reject", {"reason": "no"})[0] == 200
    row = track_row(psql, ids[0])
    assert row and row["tenant_id"] == tenant and row["title"] == "house groove 0, 124 bpm"
    assert row["tempo_bpm"] == pytest.approx(124, rel=0.03)
    assert track_row(psql, ids[1]) is None


def render(env, folder, name, genre, tempo, key, seed):
    """Renders a piece with the composer, as a file of the catalogue."""
    out = folder / f"render-{name}"
    subprocess.run([str(ROOT / "bin/cadenza-worker"), "render", "--prompt", f"{genre} {name}",
                    "--genre", genre, "--tempo", str(tempo), "--key", key, "--duration", "12",
                    "--seed", str(seed), "--out", str(out)],
                   check=True, capture_output=True, env=dict(os.environ, **env))
    target = folder / "catalog" / f"{name}.wav"
    target.parent.mkdir(exist_ok=True)
    (out / "raw.wav").rename(target)
    return target


def test_catalog_import_analyses_files_and_fills_missing_rows(env, cli, psql, tmp_path):
    # Fixed renders (the same bytes every run): their catalogue rows outlive
    # a run, so their tracks rows are removed first and the import must add
    # them again, as it does for files imported before features existed.
    pieces = {"features-house": ("house", 124, "C major", 22),
              "features-trap": ("trap", 140, "F minor", 44)}
    for name, (genre, tempo, key, seed) in pieces.items():
        render(env, tmp_path, name, genre, tempo, key, seed)
    folder = tmp_path / "catalog"
    psql("DELETE FROM tracks t USING catalog_tracks c WHERE t.id = 'c' || c.id"
         " AND c.title IN ('features-house', 'features-trap')")

    def run():
        out = cli("catalog", "import", str(folder), "--artist", "Features Test")
        return {line["title"]: line for line in map(json.loads, out.stdout.splitlines())}

    first = run()
    assert set(first) == set(pieces)
    assert {t["features"] for t in first.values()} == {"added"}
    for name, (_, tempo, _, _) in pieces.items():
        line = first[name]
        assert line["tempo_bpm"] == pytest.approx(tempo, rel=0.03)
        row = track_row(psql, f"c{line['id']}")
        assert row["source"] == "catalog" and row["tenant_id"] is None
        assert row["title"] == name and row["artist"] == "Features Test"
        assert row["tempo_bpm"] == pytest.approx(tempo, rel=0.03)
        assert row["duration_s"] > 10 and 0 <= row["energy"] <= 1 and row["popularity"] == 0
        assert row["genres"] == []
        unit_embedding(base64.b64decode(row["embedding"]))
    # Different music, different embeddings.
    house, trap = (struct.unpack("<32f", base64.b64decode(
        track_row(psql, f"c{first[n]['id']}")["embedding"])) for n in pieces)
    assert sum(a * b for a, b in zip(house, trap)) < 0.95

    # Imported again: nothing new. A row missing is filled by the next import.
    again = run()
    assert {t["status"] for t in again.values()} == {"exists"}
    assert {t["features"] for t in again.values()} == {"exists"}
    trap_id = first["features-trap"]["id"]
    psql("DELETE FROM tracks WHERE id = :'p1'", f"c{trap_id}")
    third = run()
    assert third["features-trap"]["features"] == "added"
    assert third["features-house"]["features"] == "exists"
    assert track_row(psql, f"c{trap_id}")["tempo_bpm"] == pytest.approx(140, rel=0.03)
