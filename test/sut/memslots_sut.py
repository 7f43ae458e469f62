#!/usr/bin/env python3
"""A system under test (SUT) for memslot-oracle, written from the spec alone.

It implements KVM memslot semantics (spec chapters 10-40, profile of chapter 60) and speaks
the SUT protocol v1 (spec/80-protocol.md) over stdin/stdout as JSON Lines.  Standard
library only.

    python3 test/sut/memslots_sut.py [--profile-json '{...}'] [--no-introspection]
                                     [--bug NAME [N]] [--delay-reset MS] [--tag LABEL]
                                     [--nomem-above PAGES]

--nomem-above PAGES is no bug: it plays a machine short of memory, where a create or move of
more than PAGES pages fails with ENOMEM after every check (spec chapter 27).

--bug plants one deliberate defect (each marked "BUG(name)" below) so that the oracle can
be shown to catch it.  Semantic bugs: overlap-adjacent, overlap-partial, delete-missing-ok,
readonly-toggle-ok, id-limit-off-by-one, limit-509, generation-move, no-as-isolation,
wrong-shape.  Broken-SUT bugs taking a request count N: crash-after, hang-after,
garbage-after.
"""

import argparse
import json
import sys
import time

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
U64 = (1 << 64) - 1
U32 = (1 << 32) - 1

KVM_MEM_LOG_DIRTY_PAGES = 1 << 0
KVM_MEM_READONLY = 1 << 1
V1_FLAGS = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY

# Chapter 60: x86_64-nosmm, the default profile.
DEFAULT_PROFILE = {
    "address_spaces": 1,
    "user_mem_slots": 32764,
    "mem_slots_num": 32767,
    "max_gfn": "0xffffffffff",
    "user_addr_max": "0x7ffffffff000",
    "max_nr_pages": "0x7fffffff",
    "readonly_mem": True,
    "v1_flags_mask": True,
    "max_nr_pages_user_only": True,
    "nr_memslot_pages_check": True,
}
CORE_FIELDS = ("address_spaces", "user_mem_slots", "mem_slots_num", "max_gfn",
               "user_addr_max", "max_nr_pages")
BOOL_FIELDS = ("readonly_mem", "v1_flags_mask", "max_nr_pages_user_only",
               "nr_memslot_pages_check")

REQUIRED_OPS = ["reset", "set_user_memory_region", "get_dirty_log"]
OPTIONAL_OPS = ["set_internal_memslot", "get_slots", "get_generation", "gfn_to_memslot",
                "hva_to_memslots"]

SEMANTIC_BUGS = ("overlap-adjacent", "overlap-partial", "delete-missing-ok",
                 "readonly-toggle-ok", "id-limit-off-by-one", "limit-509",
                 "generation-move", "no-as-isolation", "wrong-shape")
COUNTED_BUGS = ("crash-after", "hang-after", "garbage-after")


class Errno(Exception):
    """A failed ioctl: the errno's name."""

    def __init__(self, name):
        super().__init__(name)
        self.name = name


class BadRequest(Exception):
    """A request that cannot be parsed: answered with {"error": ...}."""


def parse_u64(value, field):
    # Protocol: u64 are strings, 0x-hex (the oracle's form) or decimal.  A JSON integer is
    # tolerated too (be liberal in what you accept).
    if isinstance(value, bool):
        raise BadRequest(f"{field}: expected a u64 string")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        s = value.strip()
        try:
            n = int(s[2:], 16) if s[:2].lower() == "0x" else int(s, 10)
        except ValueError:
            raise BadRequest(f"{field}: not a u64: {value!r}") from None
        if s[:1] in "+-" or (s[:2].lower() == "0x" and s[2:3] in "+-"):
            raise BadRequest(f"{field}: not a u64: {value!r}")
    else:
        raise BadRequest(f"{field}: expected a u64 string")
    if not 0 <= n <= U64:
        raise BadRequest(f"{field}: out of u64 range: {value!r}")
    return n


def parse_u32(value, field):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U32:
        raise BadRequest(f"{field}: expected a u32 number")
    return value


def hex64(n):
    return hex(n & U64)


def get_field(req, name):
    if name not in req:
        raise BadRequest(f"missing field {name!r}")
    return req[name]


class Profile:
    def __init__(self, obj):
        if not isinstance(obj, dict):
            raise ValueError("profile must be a JSON object")
        for key in obj:
            if key not in DEFAULT_PROFILE:
                raise ValueError(f"unknown profile field {key!r}")
        # Fields left out take the x86_64-nosmm value (a convenience of this SUT; chapter 60
        # makes the six core fields mandatory in a profile *file*).
        merged = dict(DEFAULT_PROFILE)
        merged.update(obj)
        self.address_spaces = merged["address_spaces"]
        if self.address_spaces not in (1, 2) or isinstance(self.address_spaces, bool):
            raise ValueError("address_spaces must be 1 or 2")
        self.user_mem_slots = merged["user_mem_slots"]
        self.mem_slots_num = merged["mem_slots_num"]
        for name in ("user_mem_slots", "mem_slots_num"):
            v = merged[name]
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0x10000:
                raise ValueError(f"{name} must be an integer in 0..65536")
        if self.mem_slots_num < self.user_mem_slots:
            raise ValueError("mem_slots_num must be at least user_mem_slots")
        self.max_gfn = None if merged["max_gfn"] is None else parse_u64(merged["max_gfn"], "max_gfn")
        self.user_addr_max = parse_u64(merged["user_addr_max"], "user_addr_max")
        self.max_nr_pages = parse_u64(merged["max_nr_pages"], "max_nr_pages")
        for name in BOOL_FIELDS:
            if not isinstance(merged[name], bool):
                raise ValueError(f"{name} must be a boolean")
            setattr(self, name, merged[name])

    def to_json(self):
        return {
            "address_spaces": self.address_spaces,
            "user_mem_slots": self.user_mem_slots,
            "mem_slots_num": self.mem_slots_num,
            "max_gfn": None if self.max_gfn is None else hex64(self.max_gfn),
            "user_addr_max": hex64(self.user_addr_max),
            "max_nr_pages": hex64(self.max_nr_pages),
            "readonly_mem": self.readonly_mem,
            "v1_flags_mask": self.v1_flags_mask,
            "max_nr_pages_user_only": self.max_nr_pages_user_only,
            "nr_memslot_pages_check": self.nr_memslot_pages_check,
        }


class Slot:
    __slots__ = ("as_id", "id", "base_gfn", "npages", "flags", "userspace_addr", "bitmap")

    def __init__(self, as_id, id_, base_gfn, npages, flags, userspace_addr, bitmap):
        self.as_id = as_id
        self.id = id_
        self.base_gfn = base_gfn
        self.npages = npages
        self.flags = flags
        self.userspace_addr = userspace_addr
        self.bitmap = bitmap  # None, or the allocation number of its dirty bitmap

    @property
    def end_gfn(self):  # exclusive
        return self.base_gfn + self.npages

    @property
    def hva_end(self):  # exclusive
        return self.userspace_addr + self.npages * PAGE_SIZE


class VM:
    def __init__(self, profile, bugs, nomem_above=None):
        self.p = profile
        self.bugs = bugs
        self.nomem_above = nomem_above
        n = profile.address_spaces
        self.slots = [dict() for _ in range(n)]  # per address space: id -> Slot
        self.generation = list(range(n))         # MS-GEN-01
        self.nr_memslot_pages = 0
        self.next_bitmap = 0

    # --- helpers -------------------------------------------------------------------------

    def _publish(self, as_id, times):
        n = self.p.address_spaces
        self.generation[as_id] = (self.generation[as_id] + times * n) & U64

    def _new_bitmap(self):
        b = self.next_bitmap
        self.next_bitmap += 1
        return b

    def _overlaps(self, as_id, id_, base_gfn, npages):
        end = base_gfn + npages
        spaces = [as_id]
        if "no-as-isolation" in self.bugs:
            # BUG(no-as-isolation): overlap is checked against every address space.
            spaces = range(self.p.address_spaces)
        for a in spaces:
            for s in self.slots[a].values():
                if a == as_id and s.id == id_:
                    continue  # a slot never overlaps itself (MS-OVL-01)
                if "overlap-adjacent" in self.bugs:
                    # BUG(overlap-adjacent): closed-interval test, touching ranges conflict.
                    if base_gfn <= s.end_gfn and end >= s.base_gfn:
                        return True
                elif "overlap-partial" in self.bugs:
                    # BUG(overlap-partial): only asks whether the new base gfn lies inside
                    # another slot; a range that contains another slot is missed.
                    if s.base_gfn <= base_gfn < s.end_gfn:
                        return True
                elif base_gfn < s.end_gfn and end > s.base_gfn:
                    return True
        return False

    def _dirty_bitmap_for(self, new_flags, old):
        if not new_flags & KVM_MEM_LOG_DIRTY_PAGES:
            return None                      # MS-DLG-08
        if old is not None and old.bitmap is not None:
            return old.bitmap                # MS-DLG-06
        return self._new_bitmap()            # MS-DLG-07

    # --- the common path of chapter 20 (MS-VAL-03 onward) --------------------------------

    def _set_memory_region(self, as_id, id_, flags, gpa, size, uaddr):
        p = self.p
        # [MS-VAL-03] valid flags
        valid = KVM_MEM_LOG_DIRTY_PAGES | (KVM_MEM_READONLY if p.readonly_mem else 0)
        if flags & ~valid:
            raise Errno("EINVAL")
        # [MS-VAL-04] size alignment
        if size & (PAGE_SIZE - 1):
            raise Errno("EINVAL")
        # [MS-VAL-05] guest address alignment
        if gpa & (PAGE_SIZE - 1):
            raise Errno("EINVAL")
        # [MS-VAL-06] user address alignment
        if uaddr & (PAGE_SIZE - 1):
            raise Errno("EINVAL")
        # [MS-VAL-07] user address limit
        end = (uaddr + size) & U64
        if end < uaddr or end > p.user_addr_max:
            raise Errno("EINVAL")
        # [MS-VAL-08] address-space bound
        if as_id >= p.address_spaces:
            raise Errno("EINVAL")
        # [MS-VAL-09] id bound
        if id_ >= p.mem_slots_num:
            raise Errno("EINVAL")
        # [MS-VAL-10] guest range wrap
        if ((gpa + size) & U64) < gpa:
            raise Errno("EINVAL")
        npages = size >> PAGE_SHIFT
        base_gfn = gpa >> PAGE_SHIFT
        # [MS-VAL-11] size limit
        if npages > p.max_nr_pages and (id_ < p.user_mem_slots or not p.max_nr_pages_user_only):
            raise Errno("EINVAL")

        space = self.slots[as_id]
        old = space.get(id_)

        if size == 0:
            if old is None:
                if "delete-missing-ok" in self.bugs:
                    return  # BUG(delete-missing-ok): deleting a missing slot "succeeds".
                raise Errno("EINVAL")  # [MS-DEL-01]
            # [MS-DEL-02] delete: two publishes (MS-GEN-03)
            del space[id_]
            self.nr_memslot_pages -= old.npages
            self._publish(as_id, 2)
            return

        if old is None:
            change = "CREATE"
            # [MS-CRT-01] page-count overflow (unsigned long = u64 on x86-64)
            if p.nr_memslot_pages_check and ((self.nr_memslot_pages + npages) & U64) < self.nr_memslot_pages:
                raise Errno("EINVAL")
            if "limit-509" in self.bugs and id_ < p.user_mem_slots:
                # BUG(limit-509): a VMM-side table of 509 user slots per address space,
                # out of room where the kernel creates the slot.
                live = sum(1 for s in space.values() if s.id < p.user_mem_slots)
                if live >= 509:
                    raise Errno("ENOSPC")
        else:
            # [MS-MOD-01] user address change
            if uaddr != old.userspace_addr:
                raise Errno("EINVAL")
            # [MS-MOD-02] resize
            if npages != old.npages:
                raise Errno("EINVAL")
            # [MS-MOD-03] READONLY toggle
            if (flags ^ old.flags) & KVM_MEM_READONLY:
                if "readonly-toggle-ok" not in self.bugs:
                    raise Errno("EINVAL")
                # BUG(readonly-toggle-ok): falls through to a FLAGS_ONLY/MOVE change.
            if base_gfn != old.base_gfn:
                change = "MOVE"              # [MS-MOV-01]
            elif flags != old.flags:
                change = "FLAGS_ONLY"        # [MS-FLG-01]
            else:
                return                       # [MS-NOP-01] nothing published

        if change in ("CREATE", "MOVE"):
            # [MS-OVL-01] overlap in the same address space, internal slots included
            if self._overlaps(as_id, id_, base_gfn, npages):
                raise Errno("EEXIST")
            # [MS-X86-01] max gfn
            if p.max_gfn is not None and base_gfn + npages - 1 > p.max_gfn:
                if change == "MOVE":
                    self._publish(as_id, 2)  # [MS-GEN-05] the INVALID copy was published
                raise Errno("EINVAL")

        if self.nomem_above is not None and id_ < p.user_mem_slots and change in ("CREATE", "MOVE") and npages > self.nomem_above:
            # [MS-RES-01] the per-page metadata cannot be allocated
            if change == "MOVE":
                self._publish(as_id, 2)  # [MS-RES-02] the INVALID copy was published and restored
            raise Errno("ENOMEM")

        bitmap = self._dirty_bitmap_for(flags, old)
        space[id_] = Slot(as_id, id_, base_gfn, npages, flags, uaddr, bitmap)
        if change == "CREATE":
            self.nr_memslot_pages += npages  # [MS-CRT-02]
            self._publish(as_id, 1)          # [MS-GEN-02]
        elif change == "FLAGS_ONLY":
            self._publish(as_id, 1)          # [MS-GEN-02]
        else:  # MOVE
            if "generation-move" in self.bugs:
                self._publish(as_id, 1)      # BUG(generation-move): one publish, not two.
            else:
                self._publish(as_id, 2)      # [MS-GEN-03]

    # --- requests -----------------------------------------------------------------------

    def set_user_memory_region(self, slot, flags, gpa, size, uaddr):
        p = self.p
        as_id, id_ = slot >> 16, slot & 0xFFFF
        # [MS-VAL-01] v1 flag mask
        if p.v1_flags_mask and flags & ~V1_FLAGS:
            raise Errno("EINVAL")
        # [MS-VAL-02] user id bound (low 16 bits only)
        if "id-limit-off-by-one" in self.bugs:
            if id_ > p.user_mem_slots:  # BUG(id-limit-off-by-one): '>' instead of '>='.
                raise Errno("EINVAL")
        elif id_ >= p.user_mem_slots:
            raise Errno("EINVAL")
        self._set_memory_region(as_id, id_, flags, gpa, size, uaddr)

    def get_dirty_log(self, slot):
        as_id, id_ = slot >> 16, slot & 0xFFFF
        # [MS-DLG-01], [MS-DLG-02]
        if as_id >= self.p.address_spaces or id_ >= self.p.user_mem_slots:
            raise Errno("EINVAL")
        s = self.slots[as_id].get(id_)
        # [MS-DLG-03], [MS-DLG-04]
        if s is None or s.bitmap is None:
            raise Errno("ENOENT")
        # [MS-DLG-05]

    def set_internal_memslot(self, id_, gpa, size, hva):
        # [MS-VAL-09] checked first by __x86_set_memory_region()
        if id_ >= self.p.mem_slots_num:
            raise Errno("EINVAL")
        slot0 = self.slots[0].get(id_)
        if size:
            if slot0 is not None:
                raise Errno("EEXIST")        # [MS-INT-01]
        else:
            if slot0 is None:
                return                       # [MS-INT-02]
            hva = slot0.userspace_addr       # a delete passes the slot's own hva
        # [MS-INT-03] every address space in turn; the first failure is the answer
        for as_id in range(self.p.address_spaces):
            self._set_memory_region(as_id, id_, 0, gpa, size, hva)

    def get_slots(self, as_id):
        out = sorted(self.slots[as_id].values(), key=lambda s: s.base_gfn)
        return [{
            "slot": (s.as_id << 16) | s.id,
            "flags": s.flags,
            "guest_phys_addr": hex64(s.base_gfn << PAGE_SHIFT),
            "memory_size": hex64(s.npages << PAGE_SHIFT),
            "userspace_addr": hex64(s.userspace_addr),
        } for s in out]

    def gfn_to_memslot(self, as_id, gfn):
        for s in self.slots[as_id].values():  # [MS-LKP-02]
            if s.base_gfn <= gfn < s.end_gfn:
                return (s.as_id << 16) | s.id
        return None

    def hva_to_memslots(self, start, end):
        hits = []
        if end <= start:
            return hits  # [MS-LKP-05] an empty range yields nothing
        for as_id in range(self.p.address_spaces):
            for s in self.slots[as_id].values():
                uaddr, uend = s.userspace_addr, s.hva_end
                if uaddr < end and uend > start:
                    gfn_start = s.base_gfn + ((max(start, uaddr) - uaddr) >> PAGE_SHIFT)
                    gfn_end = s.base_gfn + ((min(end, uend) + PAGE_SIZE - 1 - uaddr) >> PAGE_SHIFT)
                    hits.append(((s.as_id << 16) | s.id, gfn_start, gfn_end))
        hits.sort()
        return [{"slot": sl, "gfn_start": hex64(a), "gfn_end": hex64(b)} for sl, a, b in hits]


class Server:
    def __init__(self, profile, bugs, introspection, nomem_above=None):
        self.profile = profile
        self.bugs = bugs
        self.nomem_above = nomem_above
        self.ops = list(REQUIRED_OPS) + (OPTIONAL_OPS if introspection else [])
        self.vm = VM(profile, bugs, nomem_above)

    def _as_id(self, req):
        as_id = parse_u32(get_field(req, "as_id"), "as_id")
        if as_id >= self.profile.address_spaces:
            raise BadRequest(f"as_id {as_id} out of range")
        return as_id

    def handle(self, req):
        if not isinstance(req, dict):
            raise BadRequest("a request must be a JSON object")
        op = req.get("op")
        if op == "hello":
            if req.get("protocol") != 1:
                raise BadRequest(f"unsupported protocol {req.get('protocol')!r}")
            return {"protocol": 1, "name": "memslots_sut.py (python3 spec-only SUT)"
                    + (" bug=" + ",".join(sorted(self.bugs)) if self.bugs else ""),
                    "ops": self.ops, "profile": self.profile.to_json()}
        if not isinstance(op, str) or op not in self.ops:
            raise BadRequest(f"unsupported op {op!r}")
        vm = self.vm
        try:
            if op == "reset":
                self.vm = VM(self.profile, self.bugs, self.nomem_above)
                return {"ok": True}
            if op == "set_user_memory_region":
                args = (parse_u32(get_field(req, "slot"), "slot"),
                        parse_u32(get_field(req, "flags"), "flags"),
                        parse_u64(get_field(req, "guest_phys_addr"), "guest_phys_addr"),
                        parse_u64(get_field(req, "memory_size"), "memory_size"),
                        parse_u64(get_field(req, "userspace_addr"), "userspace_addr"))
                vm.set_user_memory_region(*args)
                if "wrong-shape" in self.bugs:
                    return {"ok": True}  # BUG(wrong-shape): the answer of reset, not of the ioctl.
                return {"ret": 0}
            if op == "get_dirty_log":
                vm.get_dirty_log(parse_u32(get_field(req, "slot"), "slot"))
                return {"ret": 0}
            if op == "set_internal_memslot":
                vm.set_internal_memslot(
                    parse_u32(get_field(req, "id"), "id"),
                    parse_u64(get_field(req, "guest_phys_addr"), "guest_phys_addr"),
                    parse_u64(get_field(req, "memory_size"), "memory_size"),
                    parse_u64(req.get("userspace_addr", "0x0"), "userspace_addr"))
                return {"ret": 0}
            if op == "get_slots":
                return {"slots": vm.get_slots(self._as_id(req))}
            if op == "get_generation":
                return {"generation": hex64(vm.generation[self._as_id(req)])}
            if op == "gfn_to_memslot":
                as_id = self._as_id(req)
                return {"slot": vm.gfn_to_memslot(as_id, parse_u64(get_field(req, "gfn"), "gfn"))}
            if op == "hva_to_memslots":
                return {"slots": vm.hva_to_memslots(parse_u64(get_field(req, "start"), "start"),
                                                    parse_u64(get_field(req, "end"), "end"))}
        except Errno as e:
            if op == "set_user_memory_region" and "wrong-shape" in self.bugs:
                return {"ok": True}  # BUG(wrong-shape)
            return {"errno": e.name}
        raise BadRequest(f"unsupported op {op!r}")


def write(obj_or_line):
    line = obj_or_line if isinstance(obj_or_line, str) else json.dumps(obj_or_line, separators=(",", ":"))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile-json", default=None,
                    help="the profile (chapter 60 format); fields left out take x86_64-nosmm values")
    ap.add_argument("--no-introspection", action="store_true",
                    help="list only the required ops in hello")
    ap.add_argument("--delay-reset", type=int, default=0, metavar="MS",
                    help="a correct but slow SUT: answer the first reset after MS milliseconds")
    ap.add_argument("--tag", default=None,
                    help="ignored; a label that makes this process easy to find (tests)")
    ap.add_argument("--nomem-above", type=int, default=None, metavar="PAGES",
                    help="a machine short of memory: creates and moves of more pages fail with ENOMEM")
    ap.add_argument("--bug", nargs="+", action="append", default=[], metavar=("NAME", "N"),
                    help="plant a bug: " + ", ".join(SEMANTIC_BUGS) + ", or "
                    + ", ".join(f"{b} N" for b in COUNTED_BUGS))
    args = ap.parse_args(argv)

    try:
        profile = Profile(json.loads(args.profile_json) if args.profile_json else {})
    except (ValueError, BadRequest) as e:
        ap.error(f"--profile-json: {e}")

    bugs = set()
    after = {}
    for spec in args.bug:
        name = spec[0]
        if name in COUNTED_BUGS:
            if len(spec) != 2 or not spec[1].isdigit():
                ap.error(f"--bug {name} needs a request count N")
            after[name] = int(spec[1])
        elif name in SEMANTIC_BUGS:
            if len(spec) != 1:
                ap.error(f"--bug {name} takes no argument")
            bugs.add(name)
        else:
            ap.error(f"unknown bug {name!r}")

    server = Server(profile, bugs, not args.no_introspection, args.nomem_above)
    handled = 0
    for raw in sys.stdin:
        line = raw.strip()
        if not line:
            continue
        # The broken-SUT modes fire on request N+1 (after N requests were answered).
        if "crash-after" in after and handled >= after["crash-after"]:
            sys.stderr.write(f"memslots_sut.py: BUG(crash-after): simulated crash after {handled} requests\n")
            sys.stderr.flush()
            sys.exit(3)
        if "hang-after" in after and handled >= after["hang-after"]:
            sys.stderr.write(f"memslots_sut.py: BUG(hang-after): hanging after {handled} requests\n")
            sys.stderr.flush()
            while True:  # stop answering; the oracle must time out and kill us
                time.sleep(3600)
        if "garbage-after" in after and handled >= after["garbage-after"]:
            write("Segmentation fault (core dumped) -- BUG(garbage-after)")
            handled += 1
            continue
        try:
            req = json.loads(line)
            answer = server.handle(req)
            if args.delay_reset and isinstance(req, dict) and req.get("op") == "reset":
                time.sleep(args.delay_reset / 1000)  # slow, not wrong
                args.delay_reset = 0
        except json.JSONDecodeError as e:
            answer = {"error": f"cannot parse request: {e}"}
        except BadRequest as e:
            answer = {"error": str(e)}
        write(answer)
        handled += 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
