// Small DOM helpers and the views shared by the run and compare pages (no 3D here).

export const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45',
  '#469990', '#9a6324', '#800000', '#000075'];

/** Colour of a part everywhere on a page: the k-th part (part_masks order) gets PALETTE[k]; the
 * base and anything unnamed are grey. `name` is a part name (door_0), a link name or a mesh file
 * name such as part_1.glb. */
export function partColour(name, partNames) {
  const k = partNames.indexOf(name);
  if (k >= 0) return PALETTE[k % PALETTE.length];
  const m = /^part_(\d+)\b/.exec(name);
  return m ? PALETTE[Number(m[1]) % PALETTE.length] : '#9ca3af';
}

/** document.createElement with attributes (on* are listeners) and children (strings or nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'checked') node.checked = Boolean(value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${url}: HTTP ${response.status}`);
  return body;
}

/** URL of a file of run `runId`, `rel` relative to the run folder. */
export const fileUrl = (runId, rel) => `/files/${encodeURIComponent(runId)}/${rel.split('/').map(encodeURIComponent).join('/')}`;
export const runUrl = (runId) => `/run/${encodeURIComponent(runId)}`;
export const fmtTime = (iso) => (iso ? iso.replace('T', ' ').replace('+00:00', ' UTC') : '–');
export const badge = (text) => el('span', { class: `badge ${text}` }, String(text));

export function section(title, ...children) {
  return el('section', {}, el('h2', {}, title), ...children);
}

/** Stage timeline: one bar per stage, length ∝ time, colour = status; outputs listed per stage. */
export function timeline(run) {
  const total = Math.max(...run.timeline.map((s) => s.seconds || 0), 1e-3);
  const rows = run.timeline.map((s, i) => el('div', { class: `stage ${s.status}` },
    el('span', { class: 'stage-name' }, `${String(i + 1).padStart(2, '0')} ${s.stage}`),
    el('span', { class: 'bar-track' }, el('span', { class: 'bar', style: `width:${(100 * (s.seconds || 0)) / total}%` })),
    el('span', { class: 'stage-time' }, s.seconds == null ? s.status : `${s.seconds.toFixed(2)} s`),
    el('details', { class: 'stage-detail' },
      el('summary', {}, s.error ? el('span', { class: 'error' }, s.error) : (s.summary || s.status)),
      el('ul', { class: 'outputs' }, s.outputs.map((p) => el('li', {}, el('a', { href: fileUrl(run.summary.run_id, p) }, p)))))));
  return el('div', { class: 'timeline' }, rows);
}

/** The photo with each part's mask tinted over it (CSS luminance masks), toggled per part. */
export function maskOverlay(run) {
  if (!run.photo) return el('p', { class: 'muted' }, 'no photo recorded');
  const id = run.summary.run_id;
  const stack = el('div', { class: 'overlay' }, el('img', { src: fileUrl(id, run.photo), alt: 'input photo' }));
  const legend = el('div', { class: 'legend' });
  const parts = run.masks.map((m) => m.part);
  const layers = run.masks.map((m) => ({ name: m.part, path: m.path, colour: partColour(m.part, parts), on: true }));
  if (run.foreground_mask) layers.push({ name: 'foreground', path: run.foreground_mask, colour: '#888888', on: false });
  for (const layer of layers) {
    const url = fileUrl(id, layer.path);
    const tint = el('div', { class: 'tint', style: `background:${layer.colour};mask-image:url("${url}")` });
    tint.hidden = !layer.on;
    stack.append(tint);
    legend.append(el('label', { class: 'swatch', style: `--c:${layer.colour}` },
      el('input', { type: 'checkbox', checked: layer.on, onchange: (e) => { tint.hidden = !e.target.checked; } }),
      ` ${layer.name} `, el('a', { href: url }, 'png')));
  }
  return el('div', { class: 'masks' }, stack, legend);
}

/** Each part's articulation clip: the animated preview and a frame-by-frame scrubber. */
export function clips(run) {
  if (!run.clips.length) return el('p', { class: 'muted' }, 'no articulation clips');
  const id = run.summary.run_id;
  return el('div', { class: 'clips' }, run.clips.map((clip) => {
    const preview = clip.preview.endsWith('.mp4')
      ? el('video', { src: fileUrl(id, clip.preview), controls: true, loop: true, muted: true, autoplay: true, playsinline: true })
      : el('img', { src: fileUrl(id, clip.preview), alt: `${clip.part} clip` });
    const figure = el('figure', {}, preview);
    if (clip.frames.length) {
      const frame = el('img', { src: fileUrl(id, clip.frames[0]), alt: `${clip.part} frame` });
      const label = el('span', {}, `frame 0/${clip.frames.length - 1}`);
      const scrub = el('input', { type: 'range', min: 0, max: clip.frames.length - 1, value: 0,
        oninput: (e) => { frame.src = fileUrl(id, clip.frames[e.target.value]); label.textContent = `frame ${e.target.value}/${clip.frames.length - 1}`; } });
      figure.append(frame, el('div', { class: 'scrub' }, scrub, label));
    }
    figure.append(el('figcaption', {}, clip.part));
    return figure;
  }));
}

/** SVG line plot of the joint-fitting loss per iteration, one line per joint type tried. */
export function lossPlot(curve) {
  const W = 380, H = 210, L = 58, R = 10, T = 22, B = 30;
  const series = Object.entries(curve.curves).filter(([, ys]) => ys.length);
  const all = series.flatMap(([, ys]) => ys).concat(curve.static_loss ?? []);
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'plot');
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  add('text', { x: L, y: 14, class: 'title' }, `${curve.part}: chose ${curve.chosen}`);
  if (!all.length) { add('text', { x: L, y: H / 2 }, 'no loss history recorded'); return svg; }
  const n = Math.max(...series.map(([, ys]) => ys.length), 2);
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi - lo < 1e-12) { hi += 1e-6; lo -= 1e-6; }
  const x = (i) => L + ((W - L - R) * i) / (n - 1);
  const y = (v) => T + ((H - T - B) * (hi - v)) / (hi - lo);
  add('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' });
  add('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' });
  for (const v of [lo, (lo + hi) / 2, hi]) add('text', { x: L - 4, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, v.toPrecision(3));
  add('text', { x: L, y: H - 8, class: 'tick' }, '0');
  add('text', { x: W - R, y: H - 8, class: 'tick', 'text-anchor': 'end' }, `iteration ${n - 1}`);
  if (curve.static_loss != null) {
    add('line', { x1: L, x2: W - R, y1: y(curve.static_loss), y2: y(curve.static_loss), class: 'static' });
    add('text', { x: W - R, y: y(curve.static_loss) - 3, class: 'tick', 'text-anchor': 'end' }, 'no motion');
  }
  series.forEach(([type, ys], k) => {
    add('polyline', { points: ys.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
      class: `curve ${type === curve.chosen ? 'chosen' : ''}`, stroke: PALETTE[k + 2] });
    const ly = T + 16 + 14 * (k + 1);
    add('line', { x1: W - R - 196, x2: W - R - 176, y1: ly - 4, y2: ly - 4, class: `curve ${type === curve.chosen ? 'chosen' : ''}`, stroke: PALETTE[k + 2] });
    add('text', { x: W - R - 4, y: ly, 'text-anchor': 'end', class: 'tick' },
      `${type}${type === curve.chosen ? ' (chosen)' : ''} final ${ys[ys.length - 1].toPrecision(3)}`);
  });
  return svg;
}

/** Validation summary: pass/fail, simulators, penetration, issues. */
export function validation(run) {
  const v = run.validation;
  if (!v) return el('p', { class: 'muted' }, 'not validated');
  return el('div', {},
    el('p', {}, badge(v.passed ? 'passed' : 'failed'), ` PyBullet ${v.pybullet}, MuJoCo ${v.mujoco}, `,
      `max penetration ${(1000 * (v.max_penetration_m || 0)).toFixed(2)} mm`),
    (v.issues || []).length ? el('ul', { class: 'issues' }, v.issues.map((i) => el('li', {}, i))) : null);
}

/** Joints of the package as a table. */
export function jointTable(run) {
  const joints = (run.package_json || {}).joints || [];
  if (!joints.length) return el('p', { class: 'muted' }, 'no package joints');
  const r = (xs) => (xs || []).map((v) => Number(v).toFixed(3)).join(', ');
  return el('table', { class: 'joints' },
    el('tr', {}, ['joint', 'type', 'axis (base)', 'origin (base, m)', 'lower', 'upper', 'confidence'].map((h) => el('th', {}, h))),
    joints.map((j) => el('tr', {}, [j.name, j.type, r(j.axis_base), r(j.origin_base), Number(j.lower).toFixed(3),
      Number(j.upper).toFixed(3), j.confidence == null ? '–' : Number(j.confidence).toFixed(2)].map((c) => el('td', {}, c)))));
}

/** Flatten nested config into {"a.b.c": value}. */
export function flatten(obj, prefix = '', out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, `${prefix}${k}.`, out);
    else out[`${prefix}${k}`] = JSON.stringify(v);
  }
  return out;
}
