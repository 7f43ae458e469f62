/*
 * A stand-in kernel for sut/recorder.test.ts (a host without /dev/kvm): an LD_PRELOAD library
 * loaded after the recorder, so the recorder's "real" ioctl is this one. /dev/null plays
 * /dev/kvm (the test sets MEMSLOT_RECORD_KVM_DEV to its device number); KVM_CREATE_VM answers
 * a new fd of /dev/zero. Fixed answers, for the recorder's lines to be checked exactly:
 * set-region EINVAL when memory_size is not page-aligned, else 0; KVM_GET_DIRTY_LOG ENOENT for
 * slot 7, else 0; KVM_CHECK_EXTENSION the cap number; KVM_CREATE_VM EINVAL for a nonzero type;
 * KVM_CREATE_GUEST_MEMFD a memfd; everything else 0.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  uint32_t req = (uint32_t)request;
  if (((req >> 8) & 0xff) != 0xAE) {
    int (*next)(int, unsigned long, ...) = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    return next(fd, request, arg);
  }
  switch (req & 0xff) {
    case 0x01: /* KVM_CREATE_VM */
      if (arg != 0) {
        errno = EINVAL;
        return -1;
      }
      return open("/dev/zero", O_RDWR | O_CLOEXEC);
    case 0x03: /* KVM_CHECK_EXTENSION */
      return (int)arg;
    case 0x46: /* KVM_SET_USER_MEMORY_REGION */
    case 0x49: /* KVM_SET_USER_MEMORY_REGION2 */
      if (((const uint64_t *)arg)[2] & 0xfff) {
        errno = EINVAL;
        return -1;
      }
      return 0;
    case 0x42: /* KVM_GET_DIRTY_LOG */
      if (*(const uint32_t *)arg == 7) {
        errno = ENOENT;
        return -1;
      }
      return 0;
    case 0xd4: /* KVM_CREATE_GUEST_MEMFD */
      return memfd_create("fake-gmem", MFD_CLOEXEC);
    default:
      return 0;
  }
}
