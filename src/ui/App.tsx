// The studio shell: brand header, section navigation, and the current section's screen.

import { useEffect } from 'react';
import { SECTIONS, sectionHref, useCurrentSection, type Section } from './navigation';
import { useEngineStore } from './stores/engine';

export function App() {
  const connect = useEngineStore((s) => s.connect);
  const current = useCurrentSection();
  const Screen = current.screen;

  // The engine starts with the page: every screen needs the GPU.
  useEffect(() => {
    void connect();
  }, [connect]);

  useEffect(() => {
    document.title = `${current.title} · octoclip`;
  }, [current]);

  return (
    <div className="app">
      <a className="skip-link" href="#content">
        Skip to content
      </a>
      <header className="topbar">
        <a className="brand" href={sectionHref(SECTIONS[0])}>
          <img src="/favicon.svg" alt="" width="28" height="28" />
          <span>octoclip</span>
        </a>
        <p className="tagline">Fine-tune CLIP with Block-LoRA on your own GPU, in the browser</p>
      </header>
      <nav className="sidebar" aria-label="Studio sections">
        <ul>
          {SECTIONS.map((section) => (
            <li key={section.id}>
              <NavItem section={section} current={section === current} />
            </li>
          ))}
        </ul>
      </nav>
      <main id="content" className="content" tabIndex={-1}>
        {Screen && <Screen />}
      </main>
    </div>
  );
}

function NavItem({ section, current }: { section: Section; current: boolean }) {
  if (!section.screen) {
    // Not a link: there is nothing to go to yet.
    return (
      <span className="nav-item nav-item-coming" aria-disabled="true" title={section.summary}>
        <span>{section.title}</span>
        <span className="coming">coming next</span>
      </span>
    );
  }
  return (
    <a className="nav-item" href={sectionHref(section)} aria-current={current ? 'page' : undefined} title={section.summary}>
      {section.title}
    </a>
  );
}
