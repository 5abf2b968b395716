// One page shell (app.html) for every route; the path picks the view module.
const path = location.pathname;
const view = path.startsWith('/run/') ? 'run' : path === '/compare' ? 'compare' : 'list';
import(`/static/${view}.js`);
