/*
 * A tiny "VMM" for sut/recorder.test.ts: the memslot ioctls a VMM makes, against the stand-in
 * kernel of fake-kvm.c (/dev/null as /dev/kvm), each kind the recorder knows once or more.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct region2 {
  uint32_t slot, flags;
  uint64_t gpa, size, uaddr, gmem_offset;
  uint32_t gmem, pad1;
  uint64_t pad2[14];
};
struct clear_log {
  uint32_t slot, num_pages;
  uint64_t first_page, bitmap;
};
struct enable_cap {
  uint32_t cap, flags;
  uint64_t args[4];
  uint8_t pad[64];
};
struct gmem {
  uint64_t size, flags, reserved[6];
};
struct attrs {
  uint64_t address, size, attributes, flags;
};
struct dirty_log {
  uint32_t slot, pad;
  uint64_t bitmap;
};

#define SET_REGION 0x4020ae46u
#define SET_REGION2 0x40a0ae49u

static int set(int vm, unsigned long req, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size, int gmem) {
  struct region2 r = {slot, flags, gpa, size, 0x7f0000000000ull, 0x1000, (uint32_t)gmem, 0, {0}};
  return ioctl(vm, req, &r);
}

int main(void) {
  int kvm = open("/dev/null", O_RDWR);
  ioctl(kvm, 0xae03, 10);  /* CHECK_EXTENSION NR_MEMSLOTS on /dev/kvm */
  ioctl(kvm, 0xae03, 999); /* a capability spec/80 does not list: side log */
  int vm = ioctl(kvm, 0xae01, 0);
  ioctl(vm, 0xae03, 234); /* GUEST_MEMFD on the VM */
  set(vm, SET_REGION, 0, 0, 0x100000, 0x200000, 0);
  set(vm, SET_REGION, 1, 1, 0x400000, 0x1234, 0); /* EINVAL */
  struct dirty_log d = {7, 0, 0};
  ioctl(vm, 0x4010ae42, &d); /* ENOENT */
  d.slot = 0;
  ioctl(vm, 0x4010ae42, &d);
  uint8_t bits[16] = {0x03, 0, 0x80};
  struct clear_log c = {0, 100, 64, (uint64_t)(uintptr_t)bits};
  ioctl(vm, (unsigned long)(long)(int)0xc018aec0u, &c); /* sign-extended, as QEMU passes it */
  struct enable_cap e = {168, 0, {3, 0, 0, 0}, {0}};
  ioctl(vm, 0x4068aea3, &e);
  struct enable_cap e2 = {123, 0, {1, 2, 0, 0}, {0}};
  ioctl(vm, 0x4068aea3, &e2); /* not MANUAL_DIRTY_LOG_PROTECT2: side log */
  struct gmem g = {0x200000, 0, {0}};
  int gm = ioctl(vm, 0xc040aed4, &g);
  struct attrs a = {0x100000, 0x1000, 8, 0};
  ioctl(vm, 0x4020aed2, &a);
  set(vm, SET_REGION2, 2, 4, 0x800000, 0x200000, gm);
  int mfd = memfd_create("plain", 0);
  set(vm, SET_REGION2, 3, 4, 0xa00000, 0x200000, mfd);
  set(vm, SET_REGION2, 4, 4, 0xc00000, 0x200000, 900); /* no such fd */
  set(vm, SET_REGION2, 5, 1, 0xe00000, 0x200000, 900); /* no KVM_MEM_GUEST_MEMFD: the fd is not written */
  ioctl(kvm, 0xae01, 1); /* a VM type the kernel refuses */
  int vm2 = ioctl(kvm, 0xae01, 0);
  set(vm2, SET_REGION2, 0, 4, 0x100000, 0x200000, gm); /* the first VM's guest_memfd */
  set(vm, SET_REGION, 9, 0, 0x4000000, 0x1000, 0);     /* the older VM: side log */
  close(vm);
  close(vm2);
  printf("done\n");
  return 0;
}
