// Run page: /run/<run-id>. Everything comes from /api/runs/<run-id> and /files/<run-id>/...
import { el, getJSON, fileUrl, fmtTime, badge, section, timeline, maskOverlay, clips, lossPlot, validation, jointTable } from '/static/common.js';
import { glbViewer, urdfViewer } from '/static/viewer.js';

const MESH_STAGE_TITLES = { reconstruct: 'reconstructed mesh', segment3d: 'mesh split into parts', amodal: 'completed parts (amodal)' };

async function main() {
  const runId = decodeURIComponent(location.pathname.split('/').pop());
  const root = document.getElementById('app');
  let run;
  try {
    run = await getJSON(`/api/runs/${encodeURIComponent(runId)}`);
  } catch (err) {
    root.replaceChildren(el('p', { class: 'error' }, String(err.message)));
    return;
  }
  document.title = `${run.summary.name} · ${runId}`;
  root.replaceChildren(
    header(run),
    section('Stages', timeline(run)),
    section('Photo and part masks', maskOverlay(run)),
    section('Meshes', meshes(run)),
    section('Articulation clips', clips(run)),
    section('Joint fitting loss', el('div', { class: 'plots' }, run.loss_curves.length ? run.loss_curves.map(lossPlot) : el('p', { class: 'muted' }, 'joint_fit did not run'))),
    section('URDF package', urdf(run), jointTable(run)),
    section('Validation', validation(run)),
    section('Configuration', el('details', {}, el('summary', {}, 'pipeline configuration (JSON)'), el('pre', {}, JSON.stringify(run.config, null, 2)))),
  );
  root.dataset.ready = '1';
}

function header(run) {
  const s = run.summary;
  return el('div', { class: 'run-header' },
    el('h1', {}, s.name || s.run_id),
    el('p', {}, el('code', {}, s.run_id), ' ', badge(s.status), ' validation ', badge(s.validation)),
    el('p', { class: 'muted' }, `created ${fmtTime(s.created)} · ${s.seconds} s of stages · ${s.joints ?? '–'} joint(s) · photo sha256 ${String(s.image_sha256).slice(0, 12)}`,
      s.failed_stage ? el('span', { class: 'error' }, ` · failed at ${s.failed_stage}`) : null),
    el('p', {}, el('a', { href: `/?photo=${String(s.image_sha256).slice(0, 16)}` }, 'other runs of this photo'), ' · ',
      el('a', { href: `/compare?a=${encodeURIComponent(s.run_id)}` }, 'compare with…')));
}

/** One 3D viewer; a selector switches between the stages that wrote GLB meshes. */
function meshes(run) {
  const stages = Object.keys(run.meshes);
  if (!stages.length) return el('p', { class: 'muted' }, 'no meshes recorded');
  const host = el('div', { class: 'mesh-host' });
  const show = (stage) => {
    host.replaceChildren();
    const paths = run.meshes[stage];
    glbViewer(host, paths.map((p) => fileUrl(run.summary.run_id, p)), paths.map((p) => p.split('/').pop()),
      run.masks.map((m) => m.part));
  };
  const pick = el('select', { onchange: (e) => show(e.target.value) },
    stages.map((s) => el('option', { value: s, selected: s === 'amodal' }, `${s}: ${MESH_STAGE_TITLES[s] || s}`)));
  show(stages.includes('amodal') ? 'amodal' : stages[stages.length - 1]);
  return el('div', {}, pick, host);
}

function urdf(run) {
  if (!run.urdf) return el('p', { class: 'muted' }, 'no URDF built');
  const host = el('div', { class: 'urdf-host' });
  urdfViewer(host, fileUrl(run.summary.run_id, run.urdf), run.masks.map((m) => m.part)).catch(() => {});
  return el('div', {}, el('p', {}, el('a', { href: fileUrl(run.summary.run_id, run.urdf) }, run.urdf)), host);
}

main();
