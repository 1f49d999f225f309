import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './ui/App';
import './ui/styles.css';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');

// The built site works offline after the first visit (see src/service-worker.js). Not in the dev
// server, whose modules change as you edit them. Relative: the site may live under any path.
if (import.meta.env.PROD && 'serviceWorker' in navigator) {
  navigator.serviceWorker
    .register('./sw.js')
    .catch((error: unknown) => console.warn('The studio will not work offline:', error));
}

createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
