"""Group commit of submissions: concurrent POST /v1/jobs share transactions,
each request is answered after its batch committed, and one bad row fails
only its own request."""
import concurrent.futures
import threading
import uuid

from conftest import Api, new_key


def test_durability_setting_is_unchanged(psql):
    assert psql("SHOW synchronous_commit") == "on"
    assert psql("SHOW fsync") == "on"


def test_concurrent_submissions_all_stored(env, cli, psql):
    tenant, key = new_key(cli)
    api = Api(env["CADENZA_API_URL"], key)
    n = 64
    start = threading.Barrier(16)

    def one(i):
        if i < 16:
            start.wait()
        headers = {"Idempotency-Key": f"gc-{i}"} if i % 4 == 0 else {}
        s, _, job = api.json("POST", "/v1/jobs", {"prompt": f"group {i}", "duration_s": 1,
                                                  "review": "always"}, headers=headers)
        assert s == 202, job
        # Answered after the commit: the job and its outbox row are visible now.
        assert psql("SELECT count(*) FROM outbox WHERE key = :'p1'", job["id"]) == "1"
        return job["id"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(one, range(n)))
    assert len(set(ids)) == n
    assert psql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1'", tenant) == str(n)
    assert psql("SELECT count(*) FROM idempotency_keys WHERE tenant_id = :'p1'", tenant) == "16"
    # Replays of the keyed ones return the same jobs.
    s, h, again = api.json("POST", "/v1/jobs", {"prompt": "group 0", "duration_s": 1,
                                                "review": "always"},
                           headers={"Idempotency-Key": "gc-0"})
    assert s == 202 and again["id"] == ids[0] and h["Idempotent-Replayed"] == "true"
    for i in ids:
        api.request("POST", f"/v1/jobs/{i}/cancel")


def test_one_bad_row_fails_only_itself(env, cli, psql):
    """A trigger makes the database refuse one prompt. Submitted among many
    at once, it fails alone (503, nothing stored) and its batch-mates are
    stored: the API retries a failed batch one job per transaction."""
    poison = f"poison-{uuid.uuid4().hex[:8]}"
    psql(f"""
        CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.request ->> 'prompt' = '{poison}' THEN
                RAISE EXCEPTION 'refused by test';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_poison BEFORE INSERT ON jobs
            FOR EACH ROW EXECUTE FUNCTION test_poison();""")
    log = f"{env['CADENZA_STATE_DIR']}/logs/api.log"
    fallbacks_before = open(log, errors="replace").read().count("storing them one by one")
    try:
        tenant, key = new_key(cli)
        api = Api(env["CADENZA_API_URL"], key)
        accepted = []
        for round_ in range(10):
            start = threading.Barrier(24)

            def one(i):
                start.wait()
                prompt = poison if i == 12 else f"good {round_}.{i}"
                return i, api.json("POST", "/v1/jobs", {"prompt": prompt, "duration_s": 1,
                                                        "review": "always"})

            with concurrent.futures.ThreadPoolExecutor(24) as pool:
                results = list(pool.map(one, range(24)))
            for i, (s, _, body) in results:
                if i == 12:
                    assert s == 503, body
                    assert body["type"] == "urn:cadenza:problem:unavailable"
                else:
                    assert s == 202, body
                    accepted.append(body["id"])
            fallbacks = open(log, errors="replace").read().count("storing them one by one")
            if fallbacks > fallbacks_before:
                break  # the poison shared a batch with good jobs at least once
        assert fallbacks > fallbacks_before, "the poison never shared a batch"
        assert psql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1'", tenant) == \
            str(len(accepted))
        assert psql("SELECT count(*) FROM jobs WHERE request ->> 'prompt' = :'p1'", poison) == "0"
    finally:
        psql("DROP TRIGGER test_poison ON jobs; DROP FUNCTION test_poison();")
    for i in accepted:
        api.request("POST", f"/v1/jobs/{i}/cancel")
