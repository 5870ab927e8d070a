// The console's entry point: styles, the router, the session, then the app.

import { render } from 'preact';
import './styles/app.css';
import { App } from './app.jsx';
import { startRouter } from './state/router.js';
import { loadSession, sessionLost } from './state/session.js';
import { setUnauthorizedHandler } from './api.js';

startRouter();
setUnauthorizedHandler(sessionLost);
loadSession().catch(() => {
  // The server did not answer: the app shows the login page with the error.
});
render(<App />, /** @type {HTMLElement} */ (document.getElementById('app')));
