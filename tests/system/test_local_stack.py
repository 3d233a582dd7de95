"""The local stack's scripts from a fresh clone in a private directory.

`git clone ... ~/cadenza && make test` as root once failed: /root is 0700,
Postgres runs as the postgres user when the scripts run as root, and that
user could not reach <checkout>/.cadenza/pg. This clones the repository
(its committed files, as a user would get them) into a 0700 directory,
starts Postgres and Redis there on ports of its own, and checks that they
answer; as root, that the state lives under /var/lib/cadenza/<name>-<hash>
with <checkout>/.cadenza a symlink to it, a different one for a second
clone; and that `stack.sh down` stops everything and removes the state
and the symlink. It never touches the main stack, its ports or its state.
"""
import hashlib
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
STATE_HOME = "/var/lib/cadenza"
TIMEOUT = 120


def free_ports(n):
    """n distinct loopback ports that nothing listens on now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def clone(parent):
    dest = pathlib.Path(parent) / "cadenza"
    git, opts = ["git"], []
    if os.stat(ROOT).st_uid != os.geteuid():
        # Git refuses to read a repository another user owns unless told it
        # is safe, in clone and in the upload-pack it starts.
        git += ["-c", "safe.directory=*"]
        opts = ["-u", "git -c safe.directory=* upload-pack"]
    cmd = [*git, "clone", "-q", "--no-hardlinks", *opts, str(ROOT), str(dest)]
    r = subprocess.run(cmd, timeout=TIMEOUT, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}: {r.stderr}"
    return dest


def run(checkout, env, *cmd, check=True):
    """Runs a command in the checkout, e.g. ("./deploy/local/redis.sh", "start")."""
    r = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert not check or r.returncode == 0, (
        f"{' '.join(cmd)} in {checkout} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def state_dir(checkout, env):
    """CADENZA_STATE_DIR as deploy/local/env.sh decides it for the checkout."""
    return run(checkout, env, "bash", "-c",
               '. deploy/local/env.sh && printf %s "$CADENZA_STATE_DIR"').stdout


def test_clone_in_private_directory_runs_and_cleans_up():
    pg_port, redis_port, kafka_port, controller_port, api_port = free_ports(5)
    # The clone's scripts see none of the main stack's settings (where the
    # Postgres binaries are is not one of them).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CADENZA_") or k == "CADENZA_PG_BINDIR"}
    env.update(CADENZA_PG_PORT=str(pg_port), CADENZA_REDIS_PORT=str(redis_port),
               CADENZA_KAFKA_PORT=str(kafka_port),
               CADENZA_KAFKA_CONTROLLER_PORT=str(controller_port),
               CADENZA_API_PORT=str(api_port))
    root = os.geteuid() == 0
    parents = [tempfile.mkdtemp(prefix="cadenza-clone-") for _ in range(2)]
    first = None
    state = None
    try:
        for p in parents:
            assert os.stat(p).st_mode & 0o777 == 0o700, f"{p} is not private"
        first, second = clone(parents[0]), clone(parents[1])
        state = state_dir(first, env)
        link = first / ".cadenza"
        assert not os.path.lexists(link), "sourcing env.sh alone must create no state"

        run(first, env, "./deploy/local/postgres.sh", "start")
        run(first, env, "./deploy/local/redis.sh", "start")

        out = subprocess.run(
            ["psql", "-X", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres",
             "-d", "cadenza", "-tAc", "SELECT 1"],
            capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == "1", f"psql on port {pg_port}: {out.stdout}{out.stderr}"
        pong = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(redis_port), "ping"],
                              capture_output=True, text=True, timeout=30)
        assert pong.stdout.strip() == "PONG", f"redis on port {redis_port}: {pong.stdout}{pong.stderr}"

        assert os.path.isfile(os.path.join(state, ".cadenza-state")), f"no marker in {state}"
        if root:
            real = os.path.realpath(first)
            key = f"cadenza-{hashlib.sha256(real.encode()).hexdigest()[:12]}"
            assert state == f"{STATE_HOME}/{key}", f"state of a clone in a 0700 directory: {state}"
            assert link.is_symlink() and os.readlink(link) == state, \
                f"{link} should be a symlink to {state}"
            other = state_dir(second, env)
            assert other.startswith(STATE_HOME + "/") and other != state, \
                f"two clones share or misplace their state: {state}, {other}"
        else:
            assert state == str(link), f"a user's clone keeps its state inside: {state}"

        run(first, env, "./deploy/local/stack.sh", "down")
        assert not port_open(pg_port), f"Postgres still listens on {pg_port} after down"
        assert not port_open(redis_port), f"Redis still listens on {redis_port} after down"
        assert not os.path.lexists(state), f"{state} is still there after down"
        assert not os.path.lexists(link), f"{link} is still there after down"
    finally:
        if first is not None and os.path.isdir(state or ""):
            try:
                run(first, env, "./deploy/local/stack.sh", "stop", check=False)
            except subprocess.TimeoutExpired:
                pass
            if os.path.isfile(os.path.join(state, ".cadenza-state")):
                shutil.rmtree(state, ignore_errors=True)
        for p in parents:
            shutil.rmtree(p, ignore_errors=True)
