"""The curators' page in a real browser: runs the Playwright tests in
tests/ui (node --test, playwright-core driving Debian's headless chromium)
against the running stack, so `make test` runs them with everything else.
Their screenshot is kept as tests/ui/artifacts/review.png."""
import os
import shutil
import subprocess

from conftest import ROOT

UI = ROOT / "tests/ui"


def test_review_page_in_chromium(env):
    node = shutil.which("node")
    assert node, "node is missing: deploy/local/install-deps.sh installs it"
    assert (UI / "node_modules/playwright-core").is_dir(), \
        "playwright-core is missing: deploy/local/install-deps.sh runs npm ci in tests/ui"
    assert os.access("/usr/bin/chromium", os.X_OK), "chromium is missing: install-deps.sh"
    shot = UI / "artifacts/review.png"
    if shot.exists():
        shot.unlink()
    run = subprocess.run([node, "--test", "--test-reporter=spec", "review.test.mjs"], cwd=UI,
                         env=dict(os.environ, **env), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-3000:]
    assert "pass 3" in run.stdout and "fail 0" in run.stdout, run.stdout[-3000:]
    assert shot.stat().st_size > 20000
