/**
 * KVM_GET_DIRTY_LOG, as spec/25-dirty-log.md states it.
 */
import type { RuleId } from '../spec/rules.js';
import type { Step, VmState } from './state.js';
import { findSlot } from './state.js';
import type { DirtyLogResult, Errno } from './types.js';

function answer(vm: VmState, errno: Errno | null, rule: RuleId): Step<DirtyLogResult> {
  const result: DirtyLogResult = errno === null ? { ok: true, rule } : { ok: false, errno, rule };
  return { state: vm, result, fired: [rule], published: [] };
}

/**
 * Mirrors: kvm_get_dirty_log_protect() (x86 selects KVM_GENERIC_DIRTYLOG_READ_PROTECT).
 * The bitmap's contents are not modelled: no guest runs, so there is nothing dirty to report.
 * @returns success, or EINVAL / ENOENT with the deciding rule.
 */
export function getDirtyLog(vm: VmState, slot: number): Step<DirtyLogResult> {
  const asId = slot >>> 16;
  const id = slot & 0xffff;
  // [MS-DLG-01]
  if (asId >= vm.profile.addressSpaces) return answer(vm, 'EINVAL', 'MS-DLG-01');
  // [MS-DLG-02] User ids only: internal slots never have a dirty log to fetch.
  if (id >= vm.profile.userMemSlots) return answer(vm, 'EINVAL', 'MS-DLG-02');
  const memslot = findSlot(vm, asId, id);
  // [MS-DLG-03]
  if (memslot === undefined) return answer(vm, 'ENOENT', 'MS-DLG-03');
  // [MS-DLG-04]
  if (memslot.dirtyBitmap === null) return answer(vm, 'ENOENT', 'MS-DLG-04');
  // [MS-DLG-05]
  return answer(vm, null, 'MS-DLG-05');
}
