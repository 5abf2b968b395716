// Run list: /?q=&status=&validation=&photo=&sort=&order=&offset=&limit= (state kept in the URL).
import { el, getJSON, fmtTime, badge, runUrl } from '/static/common.js';

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
  document.body.dataset.ready = '1';
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
