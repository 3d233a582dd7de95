"""Playlists against the real stack: a synthetic catalogue seeded with
`cadenzactl catalog seed`, listeners' signals, POST /v1/playlists and its
rules (checked here independently of the C code, from what the API
answers and what Postgres holds), the Redis cache and the scheduler's
precomputation."""
import json
import subprocess
import time
import uuid

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, Api, new_key
from test_cache_sse import redis_cli

TRACKS = 5000
TEMPO_STEP = 0.08  # of the previous track's tempo
WINDOW = 6  # no artist twice within this many tracks
ACTIVITY_TEMPO = {"workout": (110, 180), "running": (140, 190), "focus": (70, 130),
                  "relax": (60, 110), "party": (100, 135), "sleep": (50, 95),
                  "commute": (80, 140)}


def camelot(code):
    return int(code[:-1]), code[-1]


def camelot_distance(a, b):
    (na, la), (nb, lb) = camelot(a), camelot(b)
    d = abs(na - nb)
    return min(d, 12 - d) + (la != lb)


@pytest.fixture(scope="module")
def catalogue(env, cli, psql):
    out = cli("catalog", "seed", "--tracks", str(TRACKS)).stdout
    assert f"seeded {TRACKS} synthetic tracks" in out, out
    rows = psql("SELECT json_agg(json_build_object('id', id, 'title', title, 'artist', artist,"
                " 'genres', genres, 'tempo', tempo_bpm)) FROM tracks WHERE source = 'synthetic'")
    return {t["id"]: t for t in json.loads(rows)}


@pytest.fixture
def listener(env, cli, catalogue):
    """An Api for a fresh tenant, once the API's catalogue has the seeded tracks."""
    tenant, key = new_key(cli)
    api = Api(env["CADENZA_API_URL"], key)
    api.tenant = tenant
    deadline = time.monotonic() + 30
    while True:
        s, _, body = api.json("POST", "/v1/playlists", {"seed_tracks": ["s0"], "length_tracks": 1})
        if s == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # the catalogue is being read, or s0 has not been seen yet
    assert s == 200, body
    return api


def metric(url, name, **labels):
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def playlist(api, **request):
    s, h, body = api.json("POST", "/v1/playlists", request)
    assert s == 200, body
    return body, h


def check_rules(body, catalogue, exclude=()):
    tracks = body["tracks"]
    assert [t["position"] for t in tracks] == list(range(1, len(tracks) + 1))
    for t in tracks:
        assert t["reason"].strip(), t
        known = catalogue.get(t["track_id"])
        if known:  # a synthetic track: the answer matches the catalogue
            assert (t["title"], t["artist"]) == (known["title"], known["artist"])
        assert t["track_id"] not in exclude
    for prev, cur in zip(tracks, tracks[1:]):
        assert abs(cur["tempo_bpm"] - prev["tempo_bpm"]) <= TEMPO_STEP * prev["tempo_bpm"] + 0.1, \
            (prev, cur)
        assert camelot_distance(prev["key"], cur["key"]) <= 1, (prev["key"], cur["key"])
    for i, t in enumerate(tracks):
        window = tracks[max(0, i - WINDOW + 1):i]
        assert t["artist"] not in {w["artist"] for w in window}, (i, t["artist"])
    assert len({t["track_id"] for t in tracks}) == len(tracks)


REQUESTS = [
    {"length_tracks": 30},
    {"activity": "workout", "length_tracks": 50},
    {"activity": "sleep", "mood": "calm", "length_tracks": 20},
    {"activity": "focus", "novelty": 1, "length_tracks": 25},
    {"mood": "happy", "novelty": 0, "length_tracks": 40},
    {"mood": "dark", "length_minutes": 45},
    {"activity": "party", "mood": "energetic", "length_minutes": 30},
    {"seed_tracks": ["s1", "s2"], "length_tracks": 30},
]


@pytest.mark.parametrize("request_", REQUESTS, ids=[json.dumps(r) for r in REQUESTS])
def test_playlists_obey_their_rules(listener, catalogue, request_):
    body, h = playlist(listener, **request_)
    assert body["object"] == "playlist" and uuid.UUID(body["id"])
    assert h["Cadenza-Cache"] in ("hit", "miss")
    check_rules(body, catalogue)
    assert "note" not in body, body["note"]
    if "length_tracks" in request_:
        assert body["length_tracks"] == len(body["tracks"]) == request_["length_tracks"]
    else:  # by minutes: reached, and not by more than the last track
        total = sum(t["duration_s"] for t in body["tracks"])
        assert abs(total - body["duration_s"]) < 1
        assert 60 * request_["length_minutes"] <= total
        assert total - body["tracks"][-1]["duration_s"] < 60 * request_["length_minutes"]
    if "activity" in request_:
        lo, hi = ACTIVITY_TEMPO[request_["activity"]]
        assert all(lo <= t["tempo_bpm"] <= hi for t in body["tracks"])


def test_the_energy_follows_the_activity(listener):
    workout, _ = playlist(listener, activity="workout", length_tracks=40)
    e = [t["energy"] for t in workout["tracks"]]
    middle = sum(e[18:28]) / 10
    assert middle > sum(e[:5]) / 5 and middle > 0.75, e
    sleep, _ = playlist(listener, activity="sleep", length_tracks=30)
    e = [t["energy"] for t in sleep["tracks"]]
    assert sum(e[-5:]) / 5 < sum(e[:5]) / 5, e


def test_exclusions_are_respected(listener, catalogue):
    first, _ = playlist(listener, mood="happy", length_tracks=30)
    banned = [t["track_id"] for t in first["tracks"][:15]]
    second, _ = playlist(listener, mood="happy", length_tracks=30, exclude=banned)
    check_rules(second, catalogue, exclude=banned)
    assert not set(banned) & {t["track_id"] for t in second["tracks"]}


def test_signals_shape_the_taste(listener, catalogue, psql):
    # A listener who likes one genre gets mostly that genre, and is told why.
    jazz = [t for t in catalogue.values() if t["genres"] == ["jazz"]][:25]
    s, _, body = listener.json("POST", "/v1/users/fan-1/signals", {
        "signals": [{"track_id": t["id"], "kind": "like"} for t in jazz]})
    assert s == 202 and body == {"object": "signals", "user": "fan-1", "accepted": 25}, body
    mine, _ = playlist(listener, user="fan-1", length_tracks=30, novelty=0.5)
    genres = [catalogue[t["track_id"]]["genres"] for t in mine["tracks"]]
    assert sum(g == ["jazz"] for g in genres) >= 20, genres
    assert any(t["reason"].startswith("Because you liked") for t in mine["tracks"])
    # A stranger's playlist for the same request is not the jazz fan's.
    other, _ = playlist(listener, user="stranger", length_tracks=30, novelty=0.5)
    assert {t["track_id"] for t in other["tracks"]} != {t["track_id"] for t in mine["tracks"]}

    # Disliked tracks never come back; an artist disliked twice neither.
    played = [t["track_id"] for t in mine["tracks"][:3]]
    artist = catalogue[played[0]]["artist"]
    same_artist = [t["id"] for t in catalogue.values()
                   if t["artist"] == artist and t["id"] != played[0]][:1]
    s, _, _ = listener.json("POST", "/v1/users/fan-1/signals", {"signals": [
        {"track_id": i, "kind": "dislike"} for i in played + same_artist]})
    assert s == 202
    after, _ = playlist(listener, user="fan-1", length_tracks=30, novelty=0.5)
    assert not set(played) & {t["track_id"] for t in after["tracks"]}
    if same_artist:
        assert artist not in {t["artist"] for t in after["tracks"]}
    assert psql("SELECT count(*) FROM user_signals WHERE tenant_id = :'p1' AND user_id = 'fan-1'",
                listener.tenant) == str(25 + len(played) + len(same_artist))


BAD_SIGNALS = [
    ({"track_id": "nope", "kind": "like"}, 422, "unknown-track"),
    ({"signals": [{"track_id": "s1", "kind": "like"}, {"track_id": "nope", "kind": "like"}]},
     422, "unknown-track"),
    ({"track_id": "s1", "kind": "love"}, 422, "invalid-field"),
    ({"track_id": "s1", "kind": "skip", "position_s": -1}, 422, "invalid-field"),
    ({"track_id": "s1", "kind": "like", "extra": 1}, 422, "unknown-field"),
    ({"signals": []}, 422, "invalid-field"),
    ({"signals": [{"track_id": "s1", "kind": "like"}] * 101}, 422, "invalid-field"),
    ({"signals": [{"track_id": "s1", "kind": "like"}], "track_id": "s1"}, 422, "invalid-field"),
    ({"track_id": 5, "kind": "like"}, 422, "invalid-field"),
]


@pytest.mark.parametrize("body,status,kind", BAD_SIGNALS, ids=[json.dumps(b)[:60] for b, _, _ in BAD_SIGNALS])
def test_bad_signals_are_refused_and_store_nothing(listener, psql, body, status, kind):
    s, _, problem = listener.json("POST", "/v1/users/someone/signals", body)
    assert s == status and problem["type"] == f"urn:cadenza:problem:{kind}", problem
    assert psql("SELECT count(*) FROM user_signals WHERE tenant_id = :'p1'", listener.tenant) == "0"


def test_a_listener_id_is_checked(listener):
    s, _, problem = listener.json("POST", "/v1/users/a%20b/signals", {"track_id": "s1", "kind": "like"})
    assert s == 404, problem


BAD_PLAYLISTS = [
    ({"mood": "sad"}, "mood"),
    ({"activity": "swimming"}, "activity"),
    ({"length_tracks": 0}, "length_tracks"),
    ({"length_tracks": 201}, "length_tracks"),
    ({"length_tracks": 2.5}, "length_tracks"),
    ({"length_minutes": 0}, "length_minutes"),
    ({"length_minutes": 601}, "length_minutes"),
    ({"length_tracks": 5, "length_minutes": 5}, "length_minutes"),
    ({"novelty": 1.5}, "novelty"),
    ({"novelty": "high"}, "novelty"),
    ({"user": ""}, "user"),
    ({"user": "x" * 64}, "user"),
    ({"seed_tracks": ["s1"] * 21}, "seed_tracks"),
    ({"seed_tracks": "s1"}, "seed_tracks"),
    ({"exclude": [1, 2]}, "exclude"),
    ({"seed_tracks": ["no-such-track"]}, "seed_tracks[0]"),
    ({"tracks": 5}, "tracks"),
]


@pytest.mark.parametrize("body,field", BAD_PLAYLISTS, ids=[json.dumps(b)[:60] for b, _ in BAD_PLAYLISTS])
def test_bad_playlist_requests_are_refused(listener, psql, body, field):
    s, h, problem = listener.json("POST", "/v1/playlists", body)
    assert s == 422 and problem["field"] == field, problem
    assert h["Content-Type"] == "application/problem+json"


def test_malformed_and_wrongly_typed_bodies(listener):
    s, _, _ = listener.request("POST", "/v1/playlists", raw=b"{")
    assert s == 400
    s, _, _ = listener.request("POST", "/v1/playlists", raw=b"{}",
                               headers={"Content-Type": "text/plain"})
    assert s == 415


def test_cache_hits_and_reading_back(listener, env, cli, catalogue):
    request = {"mood": "melancholic", "length_tracks": 12, "novelty": 0.4,
               "exclude": ["s9", "s3", "s3"]}
    hits = metric(env["CADENZA_API_URL"], "cadenza_playlists_total", cache="hit")
    first, h1 = playlist(listener, **request)
    assert h1["Cadenza-Cache"] == "miss"
    # The same request, written differently (exclusions reordered): a hit.
    again, h2 = playlist(listener, **dict(request, exclude=["s3", "s9"]))
    assert h2["Cadenza-Cache"] == "hit" and again == first
    assert metric(env["CADENZA_API_URL"], "cadenza_playlists_total", cache="hit") == hits + 1
    assert first["request"]["exclude"] == ["s3", "s9"]
    s, _, stored = listener.json("GET", f"/v1/playlists/{first['id']}")
    assert s == 200 and stored == first
    # Another tenant neither reads it nor gets it from the cache.
    _, key = new_key(cli)
    other = Api(env["CADENZA_API_URL"], key)
    assert other.json("GET", f"/v1/playlists/{first['id']}")[0] == 404
    theirs, h3 = playlist(other, **request)
    assert h3["Cadenza-Cache"] == "miss" and theirs["id"] != first["id"]
    assert listener.json("GET", "/v1/playlists/not-a-uuid")[0] == 404


def test_a_tenants_own_tracks_are_its_alone(listener, env, cli, psql):
    """A succeeded job's track belongs to its tenant: others cannot seed with
    it, signal it or be given it."""
    track = f"private-{uuid.uuid4().hex[:8]}"
    psql("INSERT INTO tracks (id, source, tenant_id, title, artist, duration_s, tempo_bpm, key,"
         " mode, energy, loudness_lufs, embedding)"
         " SELECT :'p1', 'job', :'p2', 'Mine', 'Cadenza', 60, tempo_bpm, key, mode, energy, -14,"
         "        embedding FROM tracks WHERE id = 's1'", track, listener.tenant)
    deadline = time.monotonic() + 10
    while listener.json("POST", "/v1/playlists", {"seed_tracks": [track]})[0] != 200:
        assert time.monotonic() < deadline, "the track never reached the API's catalogue"
        time.sleep(0.2)
    _, key = new_key(cli)
    other = Api(env["CADENZA_API_URL"], key)
    s, _, problem = other.json("POST", "/v1/playlists", {"seed_tracks": [track]})
    assert s == 422 and problem["type"] == "urn:cadenza:problem:unknown-track"
    s, _, problem = other.json("POST", "/v1/users/u/signals", {"track_id": track, "kind": "like"})
    assert s == 422 and problem["type"] == "urn:cadenza:problem:unknown-track"
    for _ in range(3):
        body, _ = playlist(other, seed_tracks=["s1"], length_tracks=50, novelty=0.1 * _)
        assert track not in {t["track_id"] for t in body["tracks"]}


def test_the_scheduler_keeps_requested_playlists_fresh(listener, env):
    """A listener's signal drops their cached playlist; the scheduler, which
    counts requests, makes it again ahead of the next one."""
    request = {"user": "regular", "activity": "commute", "length_tracks": 15}
    made = metric(env["CADENZA_SCHED_METRICS_URL"], "cadenza_playlists_precomputed_total")
    first, h = playlist(listener, **request)
    assert h["Cadenza-Cache"] == "miss"
    s, _, _ = listener.json("POST", "/v1/users/regular/signals",
                            {"track_id": first["tracks"][0]["track_id"], "kind": "like"})
    assert s == 202
    # Nobody asks meanwhile: the scheduler remakes it on its own (the local
    # precompute round comes every 2 s), and files it under the listener again.
    mine = f"cz:pl:user:{listener.tenant}:regular"
    assert redis_cli(env, "EXISTS", mine) == "0"
    deadline = time.monotonic() + 20
    while redis_cli(env, "EXISTS", mine) == "0":
        assert time.monotonic() < deadline, "the playlist was not made again ahead of time"
        time.sleep(0.2)
    body, h = playlist(listener, **request)
    assert h["Cadenza-Cache"] == "hit" and body["id"] != first["id"], (h, body["id"])
    assert metric(env["CADENZA_SCHED_METRICS_URL"], "cadenza_playlists_precomputed_total") > made
    # Made after the signal: the liked track now has company for a reason.
    assert any(t["reason"].startswith("Because you liked") for t in body["tracks"]), body


def test_playlists_are_served_with_redis_down(listener, catalogue):
    subprocess.run([str(ROOT / "deploy/local/redis.sh"), "stop"], check=True,
                   capture_output=True)
    try:
        body, h = playlist(listener, mood="calm", length_tracks=10)
        assert h["Cadenza-Cache"] == "miss"
        check_rules(body, catalogue)
        s, _, _ = listener.json("POST", "/v1/users/offline/signals",
                                {"track_id": "s5", "kind": "like"})
        assert s == 202
    finally:
        subprocess.run([str(ROOT / "deploy/local/redis.sh"), "start"], check=True,
                       capture_output=True)


def test_a_succeeded_job_is_playable_by_its_tenant_only(listener, env, cli, catalogue):
    """A job's master, analysed by the post worker, joins its tenant's
    catalogue: it can seed that tenant's playlists and nobody else's."""
    job = listener.wait(listener.submit(prompt=f"playlist seed {uuid.uuid4().hex[:8]}, lofi piano",
                                        duration_s=8, seed=5150)["id"])
    assert job["state"] == "succeeded", job.get("failure")
    deadline = time.monotonic() + 10
    while True:
        s, _, body = listener.json("POST", "/v1/playlists",
                                   {"seed_tracks": [job["id"]], "length_tracks": 10})
        if s == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # the API reads new tracks every half second
    assert s == 200, body
    assert body["tracks"][0]["reason"].startswith("Sounds like")
    check_rules(body, catalogue)
    _, key = new_key(cli)
    s, _, problem = Api(env["CADENZA_API_URL"], key).json(
        "POST", "/v1/playlists", {"seed_tracks": [job["id"]]})
    assert s == 422 and problem["field"] == "seed_tracks[0]", problem


def test_an_explicit_mood_overrides_the_taste(listener, catalogue):
    """A listener who likes calm ambient music and asks for something
    energetic gets energetic tracks, the nearest to their taste."""
    calm = [t for t in catalogue.values() if t["genres"] == ["ambient"]][:25]
    s, _, _ = listener.json("POST", "/v1/users/calm-fan/signals", {
        "signals": [{"track_id": t["id"], "kind": "like"} for t in calm]})
    assert s == 202
    usual, _ = playlist(listener, user="calm-fan", length_tracks=20)
    asked, _ = playlist(listener, user="calm-fan", mood="energetic", length_tracks=20)
    mean = lambda p: sum(t["energy"] for t in p["tracks"]) / len(p["tracks"])
    assert mean(usual) < 0.4 and all(t["energy"] >= 0.55 for t in asked["tracks"]), \
        (mean(usual), [t["energy"] for t in asked["tracks"]])
