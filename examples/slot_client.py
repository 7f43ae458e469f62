#!/usr/bin/env python3
"""A VMM slot manager talking to `memslot-oracle serve --socket PATH` where it would call /dev/kvm."""
import json, socket, sys

sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
io = sock.makefile("rw")

def ask(request):
    io.write(json.dumps(request) + "\n")
    io.flush()
    return json.loads(io.readline())

def set_user_memory_region(slot, flags, gpa, size, uaddr):
    """KVM_SET_USER_MEMORY_REGION: 0, or the errno's name as the kernel would return it."""
    a = ask({"op": "set_user_memory_region", "slot": slot, "flags": flags, "guest_phys_addr": hex(gpa),
             "memory_size": hex(size), "userspace_addr": hex(uaddr)})
    if "error" in a:
        raise SystemExit("serve refused the request: " + a["error"])
    return a.get("errno", 0)

print("user slots:", ask({"op": "hello", "protocol": 1})["profile"]["user_mem_slots"])
print("create 0:", set_user_memory_region(0, 0, 0x100000, 0x200000, 0x7F0000000000))
print("create 1 over 0:", set_user_memory_region(1, 0, 0x2FF000, 0x1000, 0x7F0000200000))
print("delete 0:", set_user_memory_region(0, 0, 0x100000, 0, 0))
