// Browser tests of the curators' page (/review/), against the running stack.
//
// playwright-core drives Debian's chromium (/usr/bin/chromium) headless with
// a fresh profile; nothing is downloaded. The flow is a curator's: sign in
// with the key, claim the oldest task, play the master with the space bar,
// move between players with j, approve with a, and the job is succeeded;
// then the next task is claimed by itself and rejected with r and a
// reason. A screenshot of the page with a task open is saved as
// tests/ui/artifacts/review.png. A track that matches the catalogue plays
// the catalogue track beside its master.
//
// Needs the stack's environment (CADENZA_API_URL, CADENZA_DATABASE_URL ...:
// `. .cadenza/env`), as tests/system/test_review_ui.py provides; it makes
// its own tenant, keys and jobs with bin/cadenzactl and the API.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const ARTIFACTS = path.join(HERE, 'artifacts');
const API = process.env.CADENZA_API_URL;
const CHROMIUM = process.env.CADENZA_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function cli(...args) {
  return execFileSync(path.join(ROOT, 'bin/cadenzactl'), args,
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

async function call(method, urlPath, key, body) {
  const res = await fetch(API + urlPath, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function waitFor(id, key, states, seconds = 180) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const { status, body } = await call('GET', `/v1/jobs/${id}`, key);
    assert.equal(status, 200);
    if (states.includes(body.state)) return body;
    assert.ok(Date.now() < deadline, `job ${id} still ${body.state}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

let ctx;
let profile;
let submitter;
let curator;
let jobs;

before(async () => {
  assert.ok(API, 'CADENZA_API_URL is not set: run with the stack environment (. .cadenza/env)');
  const tenant = `t-ui-${Math.random().toString(16).slice(2, 10)}`;
  submitter = cli('keys', 'create', '--tenant', tenant, '--role', 'submitter');
  curator = cli('keys', 'create', '--tenant', tenant, '--role', 'curator');
  // Two tracks that must be reviewed, the first with stems to listen to.
  jobs = [];
  for (const fields of [
    { prompt: 'review page: warm lo-fi hip hop with rhodes and soft drums', duration_s: 8, stems: true },
    { prompt: 'review page: bright solo harp', duration_s: 4 },
  ]) {
    const r = await call('POST', '/v1/jobs', submitter, { ...fields, review: 'always' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    jobs.push(r.body.id);
    await new Promise((done) => setTimeout(done, 20)); // the first is the oldest task
  }
  for (const id of jobs) await waitFor(id, submitter, ['in_review']);

  profile = mkdtempSync(path.join(tmpdir(), 'cadenza-ui-'));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1400, height: 1000 },
  });
});

after(async () => {
  await ctx?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test('a key that may not review is refused at sign-in', async () => {
  const page = await ctx.newPage();
  await page.goto(`${API}/review/`);
  await page.fill('#key', submitter);
  await page.press('#key', 'Enter');
  await page.waitForSelector('#signin-error:not(:empty)');
  assert.match(await page.textContent('#signin-error'), /may not review/);
  assert.equal(await page.isVisible('#desk'), false);
  await page.close();
});

test('sign in, claim, play, approve and reject with the keyboard', async () => {
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${API}/review/`);

  await page.fill('#key', curator);
  await page.press('#key', 'Enter');
  await page.waitForSelector('#desk:not([hidden])');
  await page.waitForFunction(() => Number(document.querySelector('#stats').dataset.open) >= 2);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('cadenza.review.key')), curator);

  // n claims the oldest task: the first job, with its master and stems.
  await page.keyboard.press('n');
  await page.waitForSelector(`#task[data-job="${jobs[0]}"]`);
  const kinds = await page.$$eval('.player', (ps) => ps.map((p) => p.dataset.kind));
  assert.equal(kinds[0], 'master');
  assert.ok(kinds.filter((k) => k === 'stem').length >= 2, kinds.join(','));
  assert.match(await page.textContent('#reasons'), /requested/);
  assert.match(await page.textContent('#qa'), /LUFS/);
  assert.match(await page.textContent('#provenance'), /composer@1/);
  // The curves are drawn from the QA report: the canvas is not blank.
  const inked = await page.evaluate(() => {
    const c = document.querySelector('#curves');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
    return n;
  });
  assert.ok(inked > 1000, `only ${inked} pixels drawn`);

  // Space plays the selected player (the master) and the audio advances.
  await page.keyboard.press('Space');
  await page.waitForFunction(() => {
    const a = document.querySelector('.player[data-kind="master"] audio');
    return a && !a.paused && a.currentTime > 0.3;
  }, null, { timeout: 20000 });
  // j selects the next player; space there pauses the master and plays it.
  await page.keyboard.press('j');
  assert.equal(await page.getAttribute('.player.selected', 'data-kind'), 'stem');
  await page.keyboard.press('Space');
  await page.waitForFunction(() => {
    const stem = document.querySelector('.player.selected audio');
    const master = document.querySelector('.player[data-kind="master"] audio');
    return stem && !stem.paused && stem.currentTime > 0.1 && master.paused;
  }, null, { timeout: 20000 });
  await page.keyboard.press('k');
  assert.equal(await page.getAttribute('.player.selected', 'data-kind'), 'master');

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'review.png'), fullPage: true });

  // a approves: the job succeeds, and the next task is claimed at once.
  await page.keyboard.press('a');
  await page.waitForFunction((id) => document.querySelector('#message').textContent.includes(`Approved: job ${id}`), jobs[0]);
  const approved = await waitFor(jobs[0], submitter, ['succeeded', 'rejected', 'canceled', 'failed'], 10);
  assert.equal(approved.state, 'succeeded');
  assert.equal(approved.review.decision, 'approve');
  assert.equal(approved.review.decided_by, curator.slice(0, 11));
  await page.waitForSelector(`#task[data-job="${jobs[1]}"]`);

  // r asks for a reason; Enter rejects with it.
  await page.keyboard.press('r');
  await page.waitForSelector('#reason-form:not([hidden])');
  await page.keyboard.type('sounds like a catalogue track');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('#message').textContent.includes('Rejected'));
  const rejected = await waitFor(jobs[1], submitter, ['rejected', 'succeeded'], 10);
  assert.equal(rejected.state, 'rejected');
  assert.equal(rejected.review.notes, 'sounds like a catalogue track');
  assert.match(await page.textContent('#message'), /Nothing waiting for review/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a catalogue match plays the catalogue track beside the master', async () => {
  // A tenant of its own; the song's master goes into the catalogue (kept
  // under the state directory, so a later run finds the same file), and
  // the same song made again is flagged with that track.
  const tenant = `t-ui-cat-${Math.random().toString(16).slice(2, 10)}`;
  const sub = cli('keys', 'create', '--tenant', tenant, '--role', 'submitter');
  const cur = cli('keys', 'create', '--tenant', tenant, '--role', 'curator');
  const song = { prompt: 'review page: catalogue test, celesta waltz', duration_s: 5, seed: 9530 };
  const done = ['succeeded', 'in_review', 'failed', 'rejected'];
  let job = await waitFor((await call('POST', '/v1/jobs', sub, song)).body.id, sub, done);
  const res = await fetch(`${API}/v1/jobs/${job.id}/audio?variant=master&format=flac`,
    { headers: { Authorization: `Bearer ${sub}` } });
  assert.equal(res.status, 200);
  const folder = path.join(process.env.CADENZA_STATE_DIR || path.join(ROOT, '.cadenza'), 'ui-catalog');
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, 'ui-celesta-waltz.flac'), Buffer.from(await res.arrayBuffer()));
  cli('catalog', 'import', folder, '--artist', 'UI Test');
  if (job.state !== 'in_review') { // first run: make it again, now that the catalogue has it
    job = await waitFor((await call('POST', '/v1/jobs', sub, { ...song, cache: false })).body.id,
      sub, done);
  }
  assert.equal(job.state, 'in_review');
  assert.ok(job.review.reasons.some((r) => r.rule === 'catalog'), JSON.stringify(job.review));

  const page = await ctx.newPage();
  await page.goto(`${API}/review/`);
  await page.fill('#key', cur);
  await page.press('#key', 'Enter');
  await page.waitForSelector('#desk:not([hidden])');
  await page.keyboard.press('n');
  await page.waitForSelector(`#task[data-job="${job.id}"]`);
  assert.match(await page.textContent('#match'), /score 1\.000/);
  // k from the master wraps to the last player: the catalogue track.
  await page.keyboard.press('k');
  assert.equal(await page.getAttribute('.player.selected', 'data-kind'), 'catalog');
  await page.keyboard.press('Space');
  await page.waitForFunction(() => {
    const a = document.querySelector('.player[data-kind="catalog"] audio');
    return a && !a.paused && a.currentTime > 0.2;
  }, null, { timeout: 20000 });
  await page.keyboard.press('g');
  await page.keyboard.press('Enter'); // regenerate, no reason
  await page.waitForFunction(() => document.querySelector('#message').textContent.includes('new seed'));
  const after = await waitFor(job.id, sub, ['rejected', 'succeeded'], 10);
  assert.equal(after.review.decision, 'regenerate');
  const next = await call('GET', `/v1/jobs/${after.review.regenerated_job}`, sub);
  assert.equal(next.body.regenerated_from, job.id);
  await call('POST', `/v1/jobs/${next.body.id}/cancel`, sub);
  await page.close();
});
