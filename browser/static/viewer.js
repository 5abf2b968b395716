// 3D views: GLB meshes (orbit, wireframe, per-part colours) and URDF packages (one slider per joint).
// Frames: the run's meshes and URDF are in the URDF base frame (z up, +x the object's front), so
// the camera's up is +z and it starts in front of the object, a little to the side and above.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { OBJLoader } from 'three/addons/loaders/OBJLoader.js';
import { MTLLoader } from 'three/addons/loaders/MTLLoader.js';
import URDFLoader from 'urdf-loader';
import { el, partColour } from '/static/common.js';

/** A canvas with orbit controls that renders on demand. `host` gets the canvas. */
export function createViewer(host, { height = 360 } = {}) {
  const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
  const canvas = renderer.domElement;
  canvas.className = 'viewer-canvas';
  host.append(canvas);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xeef0f3);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x777777, 2.2));
  const sun = new THREE.DirectionalLight(0xffffff, 1.6);
  sun.position.set(2, 1, 3);
  scene.add(sun);
  const grid = new THREE.GridHelper(2, 20, 0xbbbbbb, 0xdddddd);
  grid.rotation.x = Math.PI / 2; // XY plane: the floor of a z-up frame
  scene.add(grid);
  const camera = new THREE.PerspectiveCamera(40, 1, 0.01, 100);
  camera.up.set(0, 0, 1);
  camera.position.set(2, 0.8, 1);
  const controls = new OrbitControls(camera, canvas);
  const render = () => renderer.render(scene, camera);
  controls.addEventListener('change', render);

  function resize() {
    const width = Math.max(host.clientWidth, 200);
    renderer.setSize(width, height);
    camera.aspect = width / height;
    camera.updateProjectionMatrix();
    render();
  }
  new ResizeObserver(resize).observe(host);
  resize();

  /** Point the camera at `object` from the front (+x), to the side (+y) and above (+z). */
  function frame(object) {
    const box = new THREE.Box3().setFromObject(object);
    if (box.isEmpty()) return render();
    const centre = box.getCenter(new THREE.Vector3());
    const radius = box.getSize(new THREE.Vector3()).length() / 2;
    const distance = radius / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2)) * 1.1;
    camera.position.copy(centre).add(new THREE.Vector3(1.0, 0.75, 0.55).normalize().multiplyScalar(distance));
    camera.near = distance / 100;
    camera.far = distance * 10;
    camera.updateProjectionMatrix();
    grid.position.set(centre.x, centre.y, box.min.z);
    grid.scale.setScalar(radius * 1.5);
    controls.target.copy(centre);
    controls.update();
    render();
  }
  return { scene, camera, renderer, controls, canvas, render, frame };
}

/** Each mesh's own material, and a flat colour per part, switchable; wireframe on any. */
function paintable(root, viewer) {
  const meshes = [];
  root.traverse((o) => { if (o.isMesh) meshes.push(o); });
  for (const mesh of meshes) {
    mesh.userData.ownMaterial = mesh.material;
    mesh.userData.partMaterial = new THREE.MeshStandardMaterial({
      color: mesh.userData.partColour || '#9ca3af', side: THREE.DoubleSide, flatShading: true });
  }
  return {
    setColours(byPart) {
      for (const mesh of meshes) mesh.material = byPart ? mesh.userData.partMaterial : mesh.userData.ownMaterial;
      viewer.render();
    },
    setWireframe(on) {
      for (const mesh of meshes) {
        mesh.userData.partMaterial.wireframe = on;
        for (const m of [].concat(mesh.material, mesh.userData.ownMaterial)) m.wireframe = on;
      }
      viewer.render();
    },
  };
}

function toggles(paint, { colours = true } = {}) {
  const wire = el('input', { type: 'checkbox', onchange: (e) => paint.setWireframe(e.target.checked) });
  const col = el('input', { type: 'checkbox', checked: colours, onchange: (e) => paint.setColours(e.target.checked) });
  return el('div', { class: 'viewer-tools' },
    el('label', {}, wire, ' wireframe'), el('label', {}, col, ' colour by part'));
}

/** A viewer showing the GLB files `urls` together, one colour per file: part_<k>.glb gets the
 * k-th part's colour (as its mask), other files grey. `names` label the files. */
export function glbViewer(host, urls, names, partNames = []) {
  const box = el('div', { class: 'viewer' });
  host.append(box);
  const viewer = createViewer(box);
  const group = new THREE.Group();
  viewer.scene.add(group);
  const legend = el('div', { class: 'legend' });
  const loader = new GLTFLoader();
  const loaded = urls.map((url, i) => loader.loadAsync(url).then((gltf) => {
    gltf.scene.traverse((o) => { if (o.isMesh) o.userData.partColour = partColour(names[i], partNames); });
    group.add(gltf.scene);
  }));
  legend.append(...names.map((name) => el('span', { class: 'swatch', style: `--c:${partColour(name, partNames)}` },
    name.replace(/^part_(\d+)\.glb$/, (m, k) => (partNames[k] ? `${m} (${partNames[k]})` : m)))));
  return Promise.all(loaded).then(() => {
    const paint = paintable(group, viewer);
    paint.setColours(true);
    box.append(toggles(paint), legend);
    viewer.frame(group);
    box.dataset.ready = '1';
    return viewer;
  }).catch((err) => { box.append(el('p', { class: 'error' }, `could not load meshes: ${err}`)); throw err; });
}

/** OBJ visuals with their MTL (same stem) and texture; falls back to the URDF's <material>. */
function loadMesh(path, manager, material, done) {
  if (!path.toLowerCase().endsWith('.obj')) return URDFLoader.prototype.defaultMeshLoader(path, manager, material, done);
  const objLoader = new OBJLoader(manager);
  const fail = (err) => done(null, err);
  new MTLLoader(manager).load(path.replace(/\.obj$/i, '.mtl'), (mtl) => {
    mtl.preload();
    objLoader.setMaterials(mtl).load(path, (obj) => done(obj), undefined, fail);
  }, undefined, () => objLoader.load(path, (obj) => {
    obj.traverse((o) => { if (o.isMesh) o.material = material; });
    done(obj);
  }, undefined, fail));
}

/** The URDF at `url` with one slider per movable joint; resolves once every mesh is loaded.
 * With "colour by part", a link named like a part gets that part's colour (as its mask). */
export function urdfViewer(host, url, partNames = []) {
  const box = el('div', { class: 'viewer urdf' });
  host.append(box);
  const viewer = createViewer(box, { height: 400 });
  const manager = new THREE.LoadingManager();
  const loader = new URDFLoader(manager);
  loader.loadMeshCb = loadMesh;
  return new Promise((resolve, reject) => {
    let robot = null;
    manager.onLoad = () => {
      if (!robot) return;
      robot.traverse((o) => { if (o.isMesh) o.userData.partColour = partColour(linkName(o), partNames); });
      const paint = paintable(robot, viewer);
      box.append(toggles(paint, { colours: false }), jointSliders(robot, viewer));
      viewer.frame(robot);
      box.dataset.ready = '1';
      resolve({ viewer, robot });
    };
    manager.onError = (item) => box.append(el('p', { class: 'error' }, `could not load ${item}`));
    loader.load(url, (r) => { robot = r; viewer.scene.add(r); }, undefined, (err) => {
      box.append(el('p', { class: 'error' }, `could not load ${url}: ${err}`));
      reject(err);
    });
  });
}

function linkName(mesh) {
  let o = mesh;
  while (o && !o.isURDFLink) o = o.parent;
  return o ? o.urdfName : '';
}

function jointSliders(robot, viewer) {
  const panel = el('div', { class: 'sliders' });
  const movable = Object.values(robot.joints).filter((j) => ['revolute', 'prismatic', 'continuous'].includes(j.jointType));
  if (!movable.length) panel.append(el('p', { class: 'muted' }, 'no movable joints'));
  for (const joint of movable) {
    const lower = joint.jointType === 'continuous' ? -Math.PI : Number(joint.limit.lower);
    const upper = joint.jointType === 'continuous' ? Math.PI : Number(joint.limit.upper);
    const unit = joint.jointType === 'prismatic' ? 'm' : '°';
    const show = (v) => (unit === 'm' ? v.toFixed(3) : THREE.MathUtils.radToDeg(v).toFixed(1)) + ' ' + unit;
    const value = el('span', { class: 'value' }, show(0));
    const slider = el('input', {
      type: 'range', min: lower, max: upper, step: (upper - lower) / 200 || 0.01, value: Math.min(Math.max(0, lower), upper),
      'data-joint': joint.urdfName,
      oninput: (e) => { robot.setJointValue(joint.urdfName, Number(e.target.value)); value.textContent = show(Number(e.target.value)); viewer.render(); },
    });
    panel.append(el('label', { class: 'slider' }, el('span', { class: 'joint' }, `${joint.urdfName} (${joint.jointType})`), slider, value));
  }
  return panel;
}
