// Compare: /compare?a=<run-id>&b=<run-id> — two runs side by side (two configurations of one
// photo, or two photos), with the settings and results that differ listed first.
import { el, getJSON, fileUrl, fmtTime, badge, runUrl, timeline, maskOverlay, lossPlot, validation, jointTable, flatten } from '/static/common.js';
import { urdfViewer } from '/static/viewer.js';

async function main() {
  const root = document.getElementById('app');
  const params = new URLSearchParams(location.search);
  const ids = [params.get('a'), params.get('b')];
  const list = await getJSON('/api/runs?limit=1000');
  const pickers = ids.map((id, k) => el('select', { name: 'ab'[k], onchange: () => {
    const q = new URLSearchParams({ a: pickers[0].value, b: pickers[1].value });
    location.search = q.toString();
  } }, el('option', { value: '' }, '— pick a run —'),
  list.runs.map((r) => el('option', { value: r.run_id, selected: r.run_id === id }, `${r.name} · ${r.run_id} · ${r.status}`))));
  const top = el('div', { class: 'pickers' }, el('label', {}, 'A ', pickers[0]), el('label', {}, 'B ', pickers[1]));
  if (!ids[0] || !ids[1]) {
    root.replaceChildren(el('h1', {}, 'Compare two runs'), top, el('p', { class: 'muted' }, 'Pick two runs.'));
    return;
  }
  let runs;
  try {
    runs = await Promise.all(ids.map((id) => getJSON(`/api/runs/${encodeURIComponent(id)}`)));
  } catch (err) {
    root.replaceChildren(top, el('p', { class: 'error' }, err.message));
    return;
  }
  root.replaceChildren(el('h1', {}, 'Compare two runs'), top, differences(runs),
    el('div', { class: 'columns' }, runs.map(column)));
  root.dataset.ready = '1';
}

/** Summary fields and configuration settings whose values differ between the two runs. */
function differences([a, b]) {
  const same = a.summary.image_sha256 === b.summary.image_sha256;
  const rows = [['photo', same ? 'same photo' : String(a.summary.image_sha256).slice(0, 12), same ? 'same photo' : String(b.summary.image_sha256).slice(0, 12)]];
  for (const key of ['status', 'validation', 'joints', 'seconds']) rows.push([key, a.summary[key], b.summary[key]]);
  const fa = flatten(a.config), fb = flatten(b.config);
  const changed = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].filter((k) => fa[k] !== fb[k]).sort();
  for (const key of changed) rows.push([`config ${key}`, fa[key] ?? '–', fb[key] ?? '–']);
  if (!changed.length) rows.push(['config', 'identical', 'identical']);
  return el('table', { class: 'diff' }, el('tr', {}, el('th', {}, ''), el('th', {}, 'A'), el('th', {}, 'B')),
    rows.map(([k, x, y]) => el('tr', { class: String(x) === String(y) ? '' : 'changed' }, el('td', {}, k), el('td', {}, String(x ?? '–')), el('td', {}, String(y ?? '–')))));
}

function column(run) {
  const s = run.summary;
  const host = el('div', { class: 'urdf-host' });
  if (run.urdf) urdfViewer(host, fileUrl(s.run_id, run.urdf), run.masks.map((m) => m.part)).catch(() => {});
  else host.append(el('p', { class: 'muted' }, 'no URDF built'));
  return el('div', { class: 'column' },
    el('h2', {}, el('a', { href: runUrl(s.run_id) }, s.name), ' ', badge(s.status), ' ', badge(s.validation)),
    el('p', { class: 'muted' }, el('code', {}, s.run_id), ` · ${fmtTime(s.created)}`),
    maskOverlay(run), host, jointTable(run),
    el('div', { class: 'plots' }, run.loss_curves.map(lossPlot)),
    validation(run), timeline(run));
}

main();
