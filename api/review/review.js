// The curators' page: sign in with a key, claim a task, listen, decide, next.
//
// Everything comes from the API with the curator's key (kept in
// sessionStorage, so it lives as long as the tab): the queue, the claimed
// task (its job, QA report, catalogue match and provenance manifest), and
// the audio, fetched with the key and played from blob URLs because an
// <audio src> cannot send an Authorization header. The waveform and the
// loudness curve are drawn from the QA report; no audio is decoded here.
//
// Keys (docs/review.md): n claim, space play/pause the selected player,
// j/k next/previous player, a approve, r reject, g regenerate, Esc cancel.

const KEY_STORE = 'cadenza.review.key';
const QUEUE_EVERY_MS = 5000;

const $ = (id) => document.getElementById(id);

const state = {
  key: sessionStorage.getItem(KEY_STORE),
  task: null, // the claimed task, as POST /v1/review/claim answers it
  players: [], // {kind, name, url, audio, row, objectUrl}
  selected: 0,
  reasonMode: null, // 'reject' | 'regenerate' while the reason form is open
  busy: false,
  queueTimer: 0,
};

// ---- helpers ------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.key}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if (res.status !== 204) {
    const text = await res.text();
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  }
  return { status: res.status, data };
}

const detail = (r) => (r.data && r.data.detail) || `HTTP ${r.status}`;

function age(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function clock(seconds) {
  if (!Number.isFinite(seconds)) return '0:00';
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

const num = (v, unit = '', digits = 2) =>
  (typeof v === 'number' ? `${v.toFixed(digits)}${unit}` : '–');

function say(text, bad = false) {
  const m = $('message');
  m.textContent = text;
  m.classList.toggle('bad', bad);
}

function rows(table, pairs) {
  table.replaceChildren(...pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => el('tr', {}, el('th', { text: k }), el('td', { text: v }))));
}

// ---- signing in -----------------------------------------------------------

async function signIn(key) {
  state.key = key;
  const r = await api('GET', '/v1/review/queue?limit=20');
  if (r.status !== 200) {
    state.key = null;
    sessionStorage.removeItem(KEY_STORE);
    $('signin-error').textContent = r.status === 403
      ? 'This key may not review: use a curator or admin key.' : detail(r);
    showSignedIn(false);
    return false;
  }
  sessionStorage.setItem(KEY_STORE, key);
  $('signin-error').textContent = '';
  showSignedIn(true);
  drawQueue(r.data);
  clearInterval(state.queueTimer);
  state.queueTimer = setInterval(refreshQueue, QUEUE_EVERY_MS);
  return true;
}

function signOut() {
  clearInterval(state.queueTimer);
  dropTask();
  state.key = null;
  sessionStorage.removeItem(KEY_STORE);
  showSignedIn(false);
}

function showSignedIn(on) {
  $('signin').hidden = on;
  $('desk').hidden = !on;
  $('signout').hidden = !on;
  $('who').textContent = on ? `key ${state.key.slice(0, 11)}…` : '';
  if (!on) $('stats').replaceChildren();
}

// ---- the queue ----------------------------------------------------------------

async function refreshQueue() {
  if (!state.key) return;
  const r = await api('GET', '/v1/review/queue?limit=20');
  if (r.status === 200) drawQueue(r.data);
  else if (r.status === 401) signOut();
}

function drawQueue(q) {
  const c = q.counts;
  const stat = (label, value) => el('span', {}, el('b', { text: value }), ` ${label}`);
  $('stats').replaceChildren(
    stat('open', c.open), stat('waiting', c.waiting), stat('claimed', c.claimed),
    stat('oldest', q.oldest_age_s == null ? '–' : age(q.oldest_age_s)),
    stat('decided today', c.decided_24h));
  $('stats').dataset.open = c.open;
  const current = state.task && state.task.job_id;
  $('queue-list').replaceChildren(...q.data.map((t) => el('li',
    { class: t.job_id === current ? 'current' : '', 'data-job': t.job_id },
    el('span', { class: 'age', text: age(t.age_s) }),
    el('span', { class: 'qprompt', text: t.prompt || t.job_id }),
    ...t.reasons.map((x) => el('span', { class: `tag ${x.rule}`, text: x.rule })),
    ...(t.claimed_by ? [el('span', { class: 'tag claimed', text: `claimed ${t.claimed_by}` })] : []))));
  $('queue-empty').hidden = q.data.length > 0;
}

// ---- claiming and showing a task ---------------------------------------------

async function claim() {
  if (state.busy) return;
  if (state.task) {
    say('Decide on this track first.');
    return;
  }
  state.busy = true;
  try {
    const r = await api('POST', '/v1/review/claim');
    if (r.status === 204) {
      say('Nothing waiting for review.');
    } else if (r.status === 200) {
      showTask(r.data);
      say('');
    } else {
      say(`Cannot claim: ${detail(r)}`, true);
    }
  } finally {
    state.busy = false;
    refreshQueue();
  }
}

function dropTask() {
  for (const p of state.players) {
    p.audio.pause();
    if (p.objectUrl) URL.revokeObjectURL(p.objectUrl);
  }
  state.players = [];
  state.task = null;
  closeReason();
  $('task').hidden = true;
}

function showTask(t) {
  dropTask();
  state.task = t;
  const job = t.job;
  const qa = job.qa || {};
  $('task').hidden = false;
  $('task').dataset.job = t.job_id;
  const prompt = job.request.prompt || '';
  $('task-title').textContent = prompt.length > 90 ? `${prompt.slice(0, 90)}…` : prompt;
  $('task-job').textContent = `job ${t.job_id}`;
  $('task-age').textContent = `waiting ${age(t.age_s)}`;
  tickLease();

  $('reasons').replaceChildren(...t.reasons.map((x) =>
    el('li', {}, el('span', { class: 'rule', text: `${x.rule}: ` }), x.detail)));

  // Players: the master, every stem, and the catalogue track it matched.
  const list = [];
  const master = job.artifacts.find((a) => a.kind === 'master' && a.format === 'flac')
    || job.artifacts.find((a) => a.kind === 'master');
  if (master) list.push({ kind: 'master', name: 'Master', url: master.url });
  for (const a of job.artifacts.filter((x) => x.kind === 'stem')) {
    list.push({ kind: 'stem', name: `Stem: ${a.name}`, url: a.url });
  }
  if (t.catalog_track && t.catalog_track.audio_url) {
    list.push({ kind: 'catalog', name: `Catalogue: ${t.catalog_track.title}`,
                url: t.catalog_track.audio_url });
  }
  state.players = list.map(makePlayer);
  $('players').replaceChildren(...state.players.map((p) => p.row));
  select(0);

  drawCurves();
  showQa(qa);
  showMatch(qa.catalog, t.catalog_track);
  showProvenance(job, t.provenance);
}

function tickLease() {
  const t = state.task;
  if (!t) return;
  const left = (Date.parse(t.claim_expires_at) - Date.now()) / 1000;
  $('task-lease').textContent = left > 0 ? `yours for ${age(left)}`
    : 'claim lapsed: another curator may take it';
}

// ---- players ---------------------------------------------------------------------

function makePlayer(p) {
  const audio = el('audio', { preload: 'none' });
  const button = el('button', { type: 'button', class: 'play', title: 'play / pause', text: '▶' });
  const time = el('span', { class: 'time', text: '0:00' });
  const bar = el('progress', { max: '1', value: '0' });
  const row = el('div', { class: 'player', 'data-kind': p.kind },
    button, el('div', { class: 'name' }, el('div', { text: p.name }), bar), time, audio);
  const player = { ...p, audio, row, objectUrl: null };
  button.addEventListener('click', () => {
    select(state.players.indexOf(player));
    toggle(player);
  });
  row.addEventListener('click', () => select(state.players.indexOf(player)));
  audio.addEventListener('timeupdate', () => {
    time.textContent = `${clock(audio.currentTime)} / ${clock(audio.duration)}`;
    bar.value = audio.duration ? audio.currentTime / audio.duration : 0;
    if (p.kind === 'master') drawCurves();
  });
  audio.addEventListener('play', () => { row.classList.add('playing'); button.textContent = '❚❚'; });
  audio.addEventListener('pause', () => { row.classList.remove('playing'); button.textContent = '▶'; });
  audio.addEventListener('ended', () => { row.classList.remove('playing'); button.textContent = '▶'; });
  return player;
}

// The audio needs the key, so it is fetched once and played from a blob.
async function load(p) {
  if (p.objectUrl) return true;
  const res = await fetch(p.url, { headers: { Authorization: `Bearer ${state.key}` } });
  if (!res.ok) {
    say(`Cannot load ${p.name}: HTTP ${res.status}`, true);
    return false;
  }
  p.objectUrl = URL.createObjectURL(await res.blob());
  p.audio.src = p.objectUrl;
  return true;
}

async function toggle(p) {
  if (!p) return;
  if (!p.audio.paused) {
    p.audio.pause();
    return;
  }
  for (const other of state.players) if (other !== p) other.audio.pause();
  if (await load(p)) {
    try {
      await p.audio.play();
    } catch (e) {
      say(`Cannot play ${p.name}: ${e.message}`, true);
    }
  }
}

function select(i) {
  if (!state.players.length) return;
  state.selected = (i + state.players.length) % state.players.length;
  state.players.forEach((p, k) => p.row.classList.toggle('selected', k === state.selected));
  state.players[state.selected].row.scrollIntoView({ block: 'nearest' });
}

// ---- drawings from the QA report ---------------------------------------------------

const LUFS_FLOOR = -50; // the bottom of the loudness scale

function drawCurves() {
  const canvas = $('curves');
  const task = state.task;
  if (!task) return;
  const qa = task.job.qa || {};
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(300, Math.round(canvas.clientWidth * ratio));
  const h = Math.round(180 * ratio);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const g = canvas.getContext('2d');
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const mid = h / 2;

  // Waveform: one bar per point from its lowest to its highest sample.
  const wave = qa.waveform;
  if (wave && wave.points) {
    g.fillStyle = css.getPropertyValue('--wave');
    const step = w / wave.points;
    for (let i = 0; i < wave.points; i++) {
      const top = mid - wave.max[i] * mid * 0.95;
      const bottom = mid - wave.min[i] * mid * 0.95;
      g.fillRect(i * step, top, Math.max(1, step - 0.5), Math.max(1, bottom - top));
    }
  }

  // Loudness: LUFS from LUFS_FLOOR (bottom) to 0 (top), with the target.
  const y = (lufs) => h - ((Math.max(LUFS_FLOOR, Math.min(0, lufs)) - LUFS_FLOOR) / -LUFS_FLOOR) * h;
  const curve = qa.loudness_curve;
  const duration = qa.duration_s || (wave ? wave.points * wave.seconds_per_point : 0);
  if (qa.target && typeof qa.target.integrated_lufs === 'number') {
    g.strokeStyle = css.getPropertyValue('--ok');
    g.setLineDash([6 * ratio, 4 * ratio]);
    g.lineWidth = ratio;
    g.beginPath();
    g.moveTo(0, y(qa.target.integrated_lufs));
    g.lineTo(w, y(qa.target.integrated_lufs));
    g.stroke();
    g.setLineDash([]);
  }
  if (curve && curve.lufs.length && duration > 0) {
    g.strokeStyle = css.getPropertyValue('--loud');
    g.lineWidth = 2 * ratio;
    g.beginPath();
    let pen = false;
    curve.lufs.forEach((v, i) => {
      const x = (((i + 1) * curve.hop_s) / duration) * w;
      if (v === null) { pen = false; return; }
      if (pen) g.lineTo(x, y(v)); else g.moveTo(x, y(v));
      pen = true;
    });
    g.stroke();
  }
  g.fillStyle = css.getPropertyValue('--muted');
  g.font = `${11 * ratio}px system-ui, sans-serif`;
  for (const mark of [-10, -20, -30, -40]) g.fillText(`${mark}`, 4 * ratio, y(mark) - 2 * ratio);

  // Where the master is playing.
  const master = state.players.find((p) => p.kind === 'master');
  if (master && master.audio.duration) {
    const x = (master.audio.currentTime / master.audio.duration) * w;
    g.fillStyle = css.getPropertyValue('--ink');
    g.fillRect(x, 0, Math.max(1, ratio), h);
  }
}

async function seek(event) {
  const master = state.players.find((p) => p.kind === 'master');
  if (!master || !(await load(master))) return;
  const rect = $('curves').getBoundingClientRect();
  const at = (event.clientX - rect.left) / rect.width;
  const go = () => { master.audio.currentTime = at * master.audio.duration; drawCurves(); };
  if (master.audio.readyState >= 1) go();
  else master.audio.addEventListener('loadedmetadata', go, { once: true });
}

function showQa(qa) {
  const t = qa.target || {};
  rows($('qa'), [
    ['Integrated', `${num(qa.integrated_lufs, ' LUFS')} (target ${num(t.integrated_lufs, ' LUFS', 1)})`],
    ['Loudness range', num(qa.loudness_range_lu, ' LU')],
    ['True peak', `${num(qa.true_peak_dbtp, ' dBTP')} (ceiling ${num(t.true_peak_dbtp, ' dBTP', 1)})`],
    ['Sample peak', num(qa.sample_peak_dbfs, ' dBFS')],
    ['Clipped samples', qa.clipped_samples],
    ['Silence', typeof qa.silence_ratio === 'number' ? `${(qa.silence_ratio * 100).toFixed(1)} %` : '–'],
    ['DC offset', num(qa.dc_offset, '', 5)],
    ['Stereo correlation', num(qa.stereo_correlation, '', 3)],
    ['Duration', num(qa.duration_s, ' s', 1)],
    ['Chain', qa.chain ? `gain ${num(qa.chain.gain_db, ' dB')}, compressor ${num(qa.chain.compressor_db, ' dB')}, limiter ${num(qa.chain.limiter_db, ' dB')}` : ''],
    ['Source', qa.input ? `${num(qa.input.integrated_lufs, ' LUFS')}, peak ${num(qa.input.true_peak_dbtp, ' dBTP')}, clipped ${qa.input.clipped_samples}` : ''],
  ]);
  $('verdicts').replaceChildren(...Object.entries(qa.verdicts || {}).map(([rule, v]) =>
    el('li', { class: v, text: `${rule}: ${v}` })));
}

function showMatch(catalog, track) {
  const box = $('match');
  if (!catalog) {
    box.replaceChildren(el('p', { class: 'muted', text: 'The catalogue was not checked.' }));
    return;
  }
  const best = catalog.best;
  if (!best) {
    box.replaceChildren(el('p', { class: 'muted',
      text: `No catalogue track is close (${catalog.tracks_checked} checked).` }));
    return;
  }
  const over = best.score >= catalog.threshold;
  const table = el('table', { class: 'figures' });
  rows(table, [
    ['Track', `${best.title}${best.artist ? ` — ${best.artist}` : ''} (#${best.track_id})`],
    ['Offset', `${num(best.offset_s, ' s', 1)} into the catalogue track`],
    ['Overlap', num(best.overlap_s, ' s', 1)],
    ['Threshold', num(catalog.threshold, '', 2)],
    ['Checked', `${catalog.tracks_checked} tracks`],
    ['Audio', track && track.audio_url ? 'in the players above (j/k to select)' : 'file not known'],
  ]);
  box.replaceChildren(
    el('div', { class: `score${over ? ' over' : ''}`, text: `score ${best.score.toFixed(3)}` }),
    table);
}

function showProvenance(job, m) {
  $('prompt').textContent = job.request.prompt || '';
  const c = job.request.controls || {};
  const chosen = (m && m.chosen) || {};
  rows($('provenance'), [
    ['Model', m && m.model ? `${m.model.name}@${m.model.version}` : job.model],
    ['Seed', String(job.seed)],
    ['Regenerated from', job.regenerated_from],
    ['Duration asked', `${job.request.duration_s} s`],
    ['Controls', Object.entries(c).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(', ') : v}`).join(' · ')],
    ['Chosen', Object.entries(chosen).filter(([, v]) => typeof v !== 'object')
      .map(([k, v]) => `${k} ${v}`).join(' · ')],
    ['Ignored words', (job.request.ignored || []).join(', ')],
    ['Input', m && m.input ? `raw ${m.input.sha256}` : ''],
    ['Outputs', m && m.outputs ? m.outputs.map((o) => `${o.format} ${o.sha256.slice(0, 16)}…`).join(' · ') : ''],
    ['Fingerprint', m && m.fingerprint ? `${m.fingerprint.algorithm}, ${m.fingerprint.items} items, ${m.fingerprint.sha256.slice(0, 16)}…` : ''],
    ['Made by', m ? `${m.worker} at ${m.created_at}` : 'no manifest'],
  ]);
  $('manifest').textContent = m ? JSON.stringify(m, null, 2) : 'no manifest';
}

// ---- decisions -------------------------------------------------------------------

function openReason(mode) {
  if (!state.task) return;
  state.reasonMode = mode;
  $('reason-form').hidden = false;
  $('reason-label').textContent = mode === 'reject' ? 'Why reject it? (required)'
    : 'Why regenerate it? (optional)';
  $('reason-submit').textContent = mode === 'reject' ? 'Reject' : 'Regenerate';
  $('reason').required = mode === 'reject';
  $('reason').value = '';
  $('reason').focus();
}

function closeReason() {
  state.reasonMode = null;
  $('reason-form').hidden = true;
  $('reason').blur();
}

async function decide(decision, reason) {
  const t = state.task;
  if (!t || state.busy) return;
  if (decision === 'reject' && !reason) {
    say('A rejection needs a reason.', true);
    return;
  }
  state.busy = true;
  let r;
  try {
    r = await api('POST', `/v1/review/${t.job_id}/${decision}`, reason ? { reason } : undefined);
  } finally {
    state.busy = false;
  }
  if (r.status === 200) {
    const done = { approve: `Approved: job ${t.job_id} is ${r.data.job.state}.`,
                   reject: `Rejected job ${t.job_id}.`,
                   regenerate: `Sent back: job ${r.data.regenerated_job && r.data.regenerated_job.id} will be made with a new seed.` };
    dropTask();
    await claim();
    const next = $('message').textContent;
    say(`${done[decision]} ${next}`.trim());
  } else {
    say(`Cannot ${decision}: ${detail(r)}`, true);
    if (r.status === 409 || r.status === 404) dropTask();
    refreshQueue();
  }
}

// ---- keys --------------------------------------------------------------------------

function onKey(e) {
  if (!state.key || e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
  if (typing) {
    if (e.key === 'Escape') closeReason();
    return;
  }
  const actions = {
    n: claim,
    ' ': () => toggle(state.players[state.selected]),
    j: () => select(state.selected + 1),
    k: () => select(state.selected - 1),
    a: () => decide('approve'),
    r: () => openReason('reject'),
    g: () => openReason('regenerate'),
    Escape: closeReason,
  };
  const act = actions[e.key];
  if (!act) return;
  e.preventDefault();
  act();
}

// ---- wiring ------------------------------------------------------------------------

function start() {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn($('key').value.trim());
  });
  $('signout').addEventListener('click', signOut);
  $('claim').addEventListener('click', claim);
  $('approve').addEventListener('click', () => decide('approve'));
  $('reject').addEventListener('click', () => openReason('reject'));
  $('regenerate').addEventListener('click', () => openReason('regenerate'));
  $('reason-cancel').addEventListener('click', closeReason);
  $('reason-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const mode = state.reasonMode;
    const reason = $('reason').value.trim();
    if (mode === 'reject' && !reason) return;
    closeReason();
    decide(mode, reason || undefined);
  });
  $('curves').addEventListener('click', seek);
  document.addEventListener('keydown', onKey);
  window.addEventListener('resize', drawCurves);
  setInterval(tickLease, 1000);
  if (state.key) signIn(state.key);
  else showSignedIn(false);
}

start();
