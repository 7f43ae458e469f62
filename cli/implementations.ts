/**
 * Implementations by name: whatever impl/index.ts exports as IMPLEMENTATIONS (`scalable`,
 * `legacy`). The model is not among them: it is what every check compares with.
 */
import type { ImplFactory } from '../impl/interface.js';
import { IMPLEMENTATIONS } from '../impl/index.js';

/** Every implementation the suite can check, by name. */
export const ALL_IMPLEMENTATIONS: Readonly<Record<string, ImplFactory>> = { ...IMPLEMENTATIONS };

/** The names `--impl` accepts. */
export const IMPL_NAMES: readonly string[] = Object.keys(ALL_IMPLEMENTATIONS);

/** The implementation called `name`; throws a RangeError naming the known ones. */
export function implFactory(name: string): ImplFactory {
  const f = ALL_IMPLEMENTATIONS[name];
  if (f === undefined) throw new RangeError(`unknown implementation "${name}" (known: ${IMPL_NAMES.join(', ')})`);
  return f;
}
