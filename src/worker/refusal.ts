// A request the engine declines for a reason the user can act on; the kind travels to the page as the
// error's kind (protocol.ts), the message as the sentence shown.

import type { EngineErrorKind } from './protocol';

export class EngineRefusal extends Error {
  override name = 'EngineRefusal';

  constructor(
    readonly kind: EngineErrorKind,
    message: string,
  ) {
    super(message);
  }
}
