// A titled card, the studio's unit of layout; its heading names it for assistive technology.

import { useId, type ReactNode, type Ref } from 'react';

export function Card(props: {
  title: string;
  badge?: ReactNode;
  busy?: boolean;
  className?: string;
  ref?: Ref<HTMLElement>;
  children: ReactNode;
}) {
  const titleId = useId();
  return (
    <article
      ref={props.ref}
      className={`card ${props.className ?? ''}`}
      aria-labelledby={titleId}
      aria-busy={props.busy || undefined}
    >
      <header className="card-header">
        <h2 id={titleId}>{props.title}</h2>
        {props.badge}
      </header>
      {props.children}
    </article>
  );
}

export function Badge(props: { tone: 'good' | 'bad' | 'pending'; children: ReactNode }) {
  return <span className={`badge badge-${props.tone}`}>{props.children}</span>;
}
