// Run list: /?q=&status=&validation=&photo=&sort=&order=&offset=&limit= (state kept in the URL).
import { el, getJSON, fmtTime, badge, runUrl } from '/static/common.js';

const app = document.getElementById('app');
app.innerHTML = `
  <form id="filters" class="filters">
    <input name="q" type="search" placeholder="run id or name">
    <select name="status"><option value="">any status</option><option>done</option><option>failed</option><option>running</option></select>
    <select name="validation"><option value="">any validation</option><option>passed</option><option>failed</option><option>none</option></select>
    <input name="photo" type="search" placeholder="photo sha256 prefix" size="14">
    <select name="limit"><option>25</option><option selected>50</option><option>100</option><option>200</option></select>
    <button type="button" id="compare" disabled>Compare 2 selected</button>
    <span id="count" class="muted"></span>
  </form>
  <table id="runs" class="runs">
    <thead><tr>
      <th></th><th>photo</th>
      <th data-sort="name">name / run</th><th data-sort="status">status</th><th data-sort="created">created</th>
      <th data-sort="seconds">time (s)</th><th data-sort="joints">joints</th><th data-sort="validation">validation</th>
      <th>stages</th>
    </tr></thead>
    <tbody></tbody>
  </table>
  <nav class="pager"><button id="prev">&larr; newer</button> <span id="page"></span> <button id="next">older &rarr;</button></nav>`;

const form = document.getElementById('filters');
const body = document.querySelector('#runs tbody');
const selected = new Set();
const params = new URLSearchParams(location.search);
const state = { sort: params.get('sort') || 'created', order: params.get('order') || 'desc', offset: Number(params.get('offset') || 0) };
for (const input of form.elements) if (input.name && params.has(input.name)) input.value = params.get(input.name);

async function load() {
  const query = new URLSearchParams(state);
  for (const input of form.elements) if (input.name && input.value) query.set(input.name, input.value);
  history.replaceState(null, '', `/?${query}`);
  let page;
  try {
    page = await getJSON(`/api/runs?${query}`);
  } catch (err) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 9, class: 'error' }, err.message)));
    return;
  }
  body.replaceChildren(...page.runs.map(row));
  document.getElementById('count').textContent = `${page.total} run(s)`;
  document.getElementById('page').textContent = page.total ? `${page.offset + 1}–${page.offset + page.runs.length} of ${page.total}` : '';
  document.getElementById('prev').disabled = page.offset === 0;
  document.getElementById('next').disabled = page.offset + page.limit >= page.total;
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.dataset.active = th.dataset.sort === state.sort ? state.order : '';
  }
  app.dataset.ready = '1';
}

function row(run) {
  const check = el('input', { type: 'checkbox', checked: selected.has(run.run_id), onchange: (e) => {
    if (e.target.checked) selected.add(run.run_id); else selected.delete(run.run_id);
    document.getElementById('compare').disabled = selected.size !== 2;
  } });
  return el('tr', {},
    el('td', {}, check),
    el('td', {}, run.photo ? el('a', { href: runUrl(run.run_id) }, el('img', { class: 'thumb', loading: 'lazy', width: 64, height: 64, src: `/thumb/${encodeURIComponent(run.run_id)}`, alt: '' })) : '–'),
    el('td', {}, el('a', { href: runUrl(run.run_id) }, run.name || '?'), el('br'), el('code', { class: 'muted' }, run.run_id)),
    el('td', {}, badge(run.status), run.failed_stage ? el('div', { class: 'muted' }, `at ${run.failed_stage}`) : null),
    el('td', {}, fmtTime(run.created)),
    el('td', { class: 'num' }, run.seconds.toFixed(1)),
    el('td', { class: 'num' }, run.joints ?? '–'),
    el('td', {}, badge(run.validation)),
    el('td', {}, el('span', { class: 'strip' }, run.stages.map((s) => el('i', { class: s.status, title: `${s.stage}: ${s.status}` })))));
}

for (const th of document.querySelectorAll('th[data-sort]')) {
  th.addEventListener('click', () => {
    state.order = state.sort === th.dataset.sort && state.order === 'desc' ? 'asc' : 'desc';
    state.sort = th.dataset.sort;
    state.offset = 0;
    load();
  });
}
let typing;
form.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(() => { state.offset = 0; load(); }, 200); });
form.addEventListener('submit', (e) => e.preventDefault());
document.getElementById('prev').onclick = () => { state.offset = Math.max(0, state.offset - Number(form.limit.value)); load(); };
document.getElementById('next').onclick = () => { state.offset += Number(form.limit.value); load(); };
document.getElementById('compare').onclick = () => {
  const [a, b] = [...selected];
  location.href = `/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
};
load();
