// A studio screen: its heading (the section the navigation names) and a line on what it is for.

import { useId, type ReactNode } from 'react';

export function Screen(props: { title: string; intro: ReactNode; children: ReactNode }) {
  const titleId = useId();
  return (
    <section className="screen" aria-labelledby={titleId}>
      <header className="screen-header">
        <h1 id={titleId}>{props.title}</h1>
        <p>{props.intro}</p>
      </header>
      {props.children}
    </section>
  );
}
