/**
 * Implementations by name: `model` (the reference model as an implementation) and whatever
 * impl/index.ts exports as IMPLEMENTATIONS (`scalable`, `legacy`).
 */
import type { ImplFactory } from '../impl/interface.js';
import { IMPLEMENTATIONS } from '../impl/index.js';
import { modelImplFactory } from '../properties/model-impl.js';

/** Every implementation the suite can check, by name. */
export const ALL_IMPLEMENTATIONS: Readonly<Record<string, ImplFactory>> = { ...IMPLEMENTATIONS, model: modelImplFactory };

/** The names `--impl` accepts. */
export const IMPL_NAMES: readonly string[] = Object.keys(ALL_IMPLEMENTATIONS);

/** The implementation called `name`; throws a RangeError naming the known ones. */
export function implFactory(name: string): ImplFactory {
  const f = ALL_IMPLEMENTATIONS[name];
  if (f === undefined) throw new RangeError(`unknown implementation "${name}" (known: ${IMPL_NAMES.join(', ')})`);
  return f;
}
