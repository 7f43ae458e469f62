/*
 * memslot-recorder: an LD_PRELOAD library that records a VMM's memslot ioctls as a trace
 * (spec/70-traces.md), each request with the kernel's answer as `expect`.
 *
 *   MEMSLOT_RECORD_OUT=trace.jsonl MEMSLOT_RECORD_EXTRA=trace.extra.jsonl \
 *     LD_PRELOAD=memslot-recorder.so qemu-system-x86_64 -enable-kvm ...
 *
 * `memslot-oracle record --out FILE -- CMD ARGS` sets these up (and writes the profile line
 * first); built on first use by sut/recorder.ts. Every ioctl() is passed through unchanged;
 * errno is kept. Without MEMSLOT_RECORD_OUT the library only passes calls through.
 *
 * What is written to the trace (appended, one write() per line, O_APPEND):
 *   KVM_CREATE_VM                  {"op":"reset"[,"vm_type":N]}: each VM starts a new part
 *   KVM_SET_USER_MEMORY_REGION(2)  set_user_memory_region(2); a v2 guest_memfd fd is the
 *                                  handle of the KVM_CREATE_GUEST_MEMFD that returned it in
 *                                  this VM, else "other_vm" (a guest_memfd of another VM),
 *                                  "closed" (no open fd: fcntl F_GETFD fails with EBADF) or
 *                                  "memfd" (any other open file: the kernel refuses it alike)
 *   KVM_GET_DIRTY_LOG              get_dirty_log (the bitmap is not written: without the
 *                                  guest's writes the model cannot know it)
 *   KVM_CLEAR_DIRTY_LOG            clear_dirty_log, with the bitmap the VMM passed
 *   KVM_ENABLE_CAP                 enable_cap for MANUAL_DIRTY_LOG_PROTECT2; others: side log
 *   KVM_CREATE_GUEST_MEMFD         create_guest_memfd
 *   KVM_SET_MEMORY_ATTRIBUTES      set_memory_attributes
 *   KVM_CHECK_EXTENSION            check_extension ("vm" or "system") for spec/80's caps;
 *                                  others: side log
 * /dev/kvm is recognised by its device number (10:232; MEMSLOT_RECORD_KVM_DEV=MAJOR:MINOR names
 * a stand-in, for tests), a VM by the fd KVM_CREATE_VM returned, a guest_memfd by the fd
 * KVM_CREATE_GUEST_MEMFD returned; close() forgets an fd.
 * The side log (MEMSLOT_RECORD_EXTRA, optional) gets, as JSON lines, what the trace cannot
 * express: other capabilities, requests on a VM older than the newest (the trace is one VM at a
 * time), answers outside the protocol (a negative check_extension, a positive set-region).
 *
 * Ioctl numbers are compared on their low 32 bits: QEMU passes them as a signed int, so
 * KVM_CLEAR_DIRTY_LOG (0xc018aec0) arrives sign-extended.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* include/uapi/linux/kvm.h, spelled out so old headers (no region2) do not matter. */
struct rec_region {
  uint32_t slot, flags;
  uint64_t guest_phys_addr, memory_size, userspace_addr;
};
struct rec_region2 {
  uint32_t slot, flags;
  uint64_t guest_phys_addr, memory_size, userspace_addr;
  uint64_t guest_memfd_offset;
  uint32_t guest_memfd, pad1;
  uint64_t pad2[14];
};
struct rec_dirty_log {
  uint32_t slot, padding1;
  uint64_t dirty_bitmap;
};
struct rec_clear_dirty_log {
  uint32_t slot, num_pages;
  uint64_t first_page;
  uint64_t dirty_bitmap;
};
struct rec_enable_cap {
  uint32_t cap, flags;
  uint64_t args[4];
  uint8_t pad[64];
};
struct rec_create_guest_memfd {
  uint64_t size, flags, reserved[6];
};
struct rec_memory_attributes {
  uint64_t address, size, attributes, flags;
};

#define KVMIO 0xAE
#define REQ_CREATE_VM ((uint32_t)_IO(KVMIO, 0x01))
#define REQ_CHECK_EXTENSION ((uint32_t)_IO(KVMIO, 0x03))
#define REQ_SET_REGION ((uint32_t)_IOW(KVMIO, 0x46, struct rec_region))
#define REQ_SET_REGION2 ((uint32_t)_IOW(KVMIO, 0x49, struct rec_region2))
#define REQ_GET_DIRTY_LOG ((uint32_t)_IOW(KVMIO, 0x42, struct rec_dirty_log))
#define REQ_CLEAR_DIRTY_LOG ((uint32_t)_IOWR(KVMIO, 0xc0, struct rec_clear_dirty_log))
#define REQ_ENABLE_CAP ((uint32_t)_IOW(KVMIO, 0xa3, struct rec_enable_cap))
#define REQ_CREATE_GUEST_MEMFD ((uint32_t)_IOWR(KVMIO, 0xd4, struct rec_create_guest_memfd))
#define REQ_SET_MEMORY_ATTRIBUTES ((uint32_t)_IOW(KVMIO, 0xd2, struct rec_memory_attributes))
#define KVM_MEM_GUEST_MEMFD 4u
#define CAP_MANUAL_DIRTY_LOG_PROTECT2 168u

_Static_assert(sizeof(struct rec_region2) == 160, "kvm_userspace_memory_region2 is 160 bytes");
_Static_assert(sizeof(struct rec_enable_cap) == 104, "kvm_enable_cap is 104 bytes");
_Static_assert(REQ_CLEAR_DIRTY_LOG == 0xc018aec0u, "KVM_CLEAR_DIRTY_LOG");
_Static_assert(REQ_SET_REGION == 0x4020ae46u, "KVM_SET_USER_MEMORY_REGION");

/* spec/80's capabilities (model/capabilities.ts CAPS). */
static const struct {
  unsigned num;
  const char *name;
} CAPS[] = {
    {3, "USER_MEMORY"},    {10, "NR_MEMSLOTS"},  {81, "READONLY_MEM"}, {118, "MULTI_ADDRESS_SPACE"}, {168, "MANUAL_DIRTY_LOG_PROTECT2"},
    {192, "DIRTY_LOG_RING"}, {223, "DIRTY_LOG_RING_ACQ_REL"}, {231, "USER_MEMORY2"}, {233, "MEMORY_ATTRIBUTES"}, {234, "GUEST_MEMFD"},
    {235, "VM_TYPES"},     {244, "GUEST_MEMFD_FLAGS"},
};

static const char *cap_name(unsigned long cap) {
  for (size_t i = 0; i < sizeof CAPS / sizeof CAPS[0]; i++)
    if (CAPS[i].num == cap) return CAPS[i].name;
  return NULL;
}

/* Linux's uapi errno names (model/errno.ts); glibc's numbers are the kernel's on x86-64. */
#define E(x) {x, #x}
static const struct {
  int num;
  const char *name;
} ERRNOS[] = {
    E(EPERM),       E(ENOENT),       E(ESRCH),       E(EINTR),        E(EIO),          E(ENXIO),          E(E2BIG),        E(ENOEXEC),
    E(EBADF),       E(ECHILD),       E(EAGAIN),      E(ENOMEM),       E(EACCES),       E(EFAULT),         E(ENOTBLK),      E(EBUSY),
    E(EEXIST),      E(EXDEV),        E(ENODEV),      E(ENOTDIR),      E(EISDIR),       E(EINVAL),         E(ENFILE),       E(EMFILE),
    E(ENOTTY),      E(ETXTBSY),      E(EFBIG),       E(ENOSPC),       E(ESPIPE),       E(EROFS),          E(EMLINK),       E(EPIPE),
    E(EDOM),        E(ERANGE),       E(EDEADLK),     E(ENAMETOOLONG), E(ENOLCK),       E(ENOSYS),         E(ENOTEMPTY),    E(ELOOP),
    E(ENOMSG),      E(EIDRM),        E(EOVERFLOW),   E(EBADFD),       E(EILSEQ),       E(EOPNOTSUPP),     E(EADDRINUSE),   E(EADDRNOTAVAIL),
    E(ENETDOWN),    E(ECONNRESET),   E(ENOBUFS),     E(ETIMEDOUT),    E(ECONNREFUSED), E(EALREADY),       E(EINPROGRESS),  E(ECANCELED),
    E(EOWNERDEAD),  E(ENOTRECOVERABLE), E(ERFKILL),  E(EHWPOISON),    E(ENOTSUP),      E(ENODATA),        E(ETIME),        E(EPROTO),
};
#undef E

static const char *errno_name(int e) {
  for (size_t i = 0; i < sizeof ERRNOS / sizeof ERRNOS[0]; i++)
    if (ERRNOS[i].num == e) return ERRNOS[i].name;
  return NULL;
}

/* fd tables. kind: 0 unknown, 1 /dev/kvm, 2 VM, 3 guest_memfd. */
#define FD_MAX 65536
static unsigned char fd_kind[FD_MAX];
static int fd_vm[FD_MAX];     /* VM serial (1-based) of a VM or guest_memfd fd */
static int fd_handle[FD_MAX]; /* guest_memfd handle within its VM */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_close)(int);
static int out_fd = -1, extra_fd = -1, opened;
static int vm_count;      /* VMs created so far (the newest is vm_count) */
static int cur_vm;        /* the VM the trace speaks for: the newest created, 0 before any */
static int next_handle;   /* the next guest_memfd handle of cur_vm */

static void read_kvm_dev(void);

static void init_real(void) {
  if (real_ioctl == NULL) real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
  if (real_close == NULL) real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
}

static int open_log(const char *var) {
  const char *p = getenv(var);
  if (p == NULL || *p == '\0') return -1;
  int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fprintf(stderr, "memslot-recorder: cannot open %s=%s: %s\n", var, p, strerror(errno));
  return fd;
}

static void open_logs(void) {
  if (opened) return;
  opened = 1;
  read_kvm_dev();
  out_fd = open_log("MEMSLOT_RECORD_OUT");
  extra_fd = open_log("MEMSLOT_RECORD_EXTRA");
}

static void write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

/* A growable line buffer. */
struct buf {
  char *p;
  size_t n, cap;
};
static void bput(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bput(struct buf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->n;
    int k = vsnprintf(b->p == NULL ? NULL : b->p + b->n, room, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < room) {
      b->n += (size_t)k;
      return;
    }
    size_t cap = b->cap == 0 ? 512 : b->cap;
    while (cap - b->n <= (size_t)k) cap *= 2;
    char *np = realloc(b->p, cap);
    if (np == NULL) return;
    b->p = np;
    b->cap = cap;
  }
}
static void emit(int fd, struct buf *b) {
  bput(b, "\n");
  if (fd >= 0 && b->p != NULL) write_all(fd, b->p, b->n);
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

/* `,"expect":{...}` for a set-region-like answer: {"ret":0} or {"errno":"NAME"}. Returns 0 when
 * the answer cannot be written in the protocol's form. */
static int put_ret_expect(struct buf *b, int ret, int err) {
  if (ret == 0) {
    bput(b, ",\"expect\":{\"ret\":0}}");
    return 1;
  }
  const char *n = ret < 0 ? errno_name(err) : NULL;
  if (n == NULL) return 0;
  bput(b, ",\"expect\":{\"errno\":\"%s\"}}", n);
  return 1;
}

static void extra_answer(struct buf *b, int ret, int err) {
  if (ret < 0) {
    const char *n = errno_name(err);
    if (n != NULL) bput(b, ",\"errno\":\"%s\"}", n);
    else bput(b, ",\"errno\":%d}", err);
  } else bput(b, ",\"ret\":%d}", ret);
}

static struct buf extra_start(const char *ioctl_name, int vm) {
  struct buf b = {0};
  bput(&b, "{\"pid\":%ld,\"ioctl\":\"%s\",\"vm\":%d", (long)getpid(), ioctl_name, vm);
  return b;
}

/* A request line (`t`, without its closing brace) the trace could not hold: into the side log. */
static void trace_or_extra(struct buf *t, int ret, int err, int vm, const char *why) {
  if (why == NULL && put_ret_expect(t, ret, err)) {
    emit(out_fd, t);
    return;
  }
  struct buf b = {0};
  bput(&b, "{\"pid\":%ld,\"vm\":%d,\"not_in_trace\":\"%s\",\"request\":%s}", (long)getpid(), vm, why ? why : "an answer outside the protocol",
       t->p == NULL ? "{" : t->p);
  free(t->p);
  t->p = NULL;
  extra_answer(&b, ret, err);
  emit(extra_fd, &b);
}

/* /dev/kvm's device number: 10:232, or MEMSLOT_RECORD_KVM_DEV=MAJOR:MINOR (a stand-in, for tests). */
static unsigned kvm_major = 10, kvm_minor = 232;
static void read_kvm_dev(void) {
  const char *d = getenv("MEMSLOT_RECORD_KVM_DEV");
  unsigned a, b;
  if (d != NULL && sscanf(d, "%u:%u", &a, &b) == 2) {
    kvm_major = a;
    kvm_minor = b;
  }
}

/* Which kind an fd is, classifying /dev/kvm on first sight. */
static int classify(int fd) {
  if (fd < 0 || fd >= FD_MAX) return 0;
  if (fd_kind[fd] != 0) return fd_kind[fd];
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == kvm_major && minor(st.st_rdev) == kvm_minor) {
    fd_kind[fd] = 1;
  }
  return fd_kind[fd];
}

/* The trace's name for a guest_memfd fd passed to KVM_SET_USER_MEMORY_REGION2 of VM `vm`. */
static void put_gmem(struct buf *b, uint32_t fd32, int vm) {
  int fd = (int)fd32;
  if (fd32 < FD_MAX && fd_kind[fd] == 3) {
    if (fd_vm[fd] == vm) bput(b, "%d", fd_handle[fd]);
    else bput(b, "\"other_vm\"");
    return;
  }
  if (fd32 > (uint32_t)INT32_MAX || (fcntl(fd, F_GETFD) < 0 && errno == EBADF)) {
    bput(b, "\"closed\"");
    return;
  }
  bput(b, "\"memfd\"");
}

static void hex_bitmap(struct buf *b, uint64_t addr, uint32_t num_pages, int *ok) {
  size_t n = ((size_t)num_pages + 63) / 64 * 8;
  unsigned char *m = n == 0 ? NULL : malloc(n);
  *ok = 1;
  if (n > 0) {
    if (m == NULL) {
      *ok = 0;
      return;
    }
    struct iovec local = {m, n}, remote = {(void *)(uintptr_t)addr, n};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)n) {
      free(m);
      *ok = 0;
      return;
    }
  }
  while (n > 0 && m[n - 1] == 0) n--;
  bput(b, "\"");
  for (size_t i = 0; i < n; i++) bput(b, "%02x", m[i]);
  bput(b, "\"");
  free(m);
}

/* Records one call (the lock is held). `pre` holds a clear_dirty_log bitmap read before the call. */
static void record(int fd, uint32_t req, unsigned long arg, int ret, int err, struct buf *pre, int pre_ok) {
  int kind = classify(fd);
  if (kind == 0) return;
  if (out_fd < 0 && extra_fd < 0) return;
  int vm = kind == 2 ? fd_vm[fd] : 0;
  int old_vm = kind == 2 && vm != cur_vm;
  struct buf t = {0};

  if (req == REQ_CREATE_VM && kind == 1) {
    if (ret >= 0) {
      vm_count++;
      cur_vm = vm_count;
      next_handle = 0;
      if (ret < FD_MAX) {
        fd_kind[ret] = 2;
        fd_vm[ret] = cur_vm;
      }
    }
    bput(&t, "{\"op\":\"reset\"");
    if (arg != 0) bput(&t, ",\"vm_type\":%lu", arg & 0xffffffffUL);
    if (ret >= 0) bput(&t, ",\"expect\":{\"ok\":true}}");
    else if (errno_name(err) != NULL) bput(&t, ",\"expect\":{\"errno\":\"%s\"}}", errno_name(err));
    else bput(&t, "}");
    emit(out_fd, &t);
    return;
  }
  if (req == REQ_CHECK_EXTENSION && (kind == 1 || kind == 2)) {
    const char *name = cap_name(arg);
    if (name != NULL && ret >= 0 && !old_vm) {
      bput(&t, "{\"op\":\"check_extension\",\"cap\":\"%s\",\"fd\":\"%s\",\"expect\":{\"value\":%d}}", name, kind == 1 ? "system" : "vm", ret);
      emit(out_fd, &t);
      return;
    }
    struct buf b = extra_start("KVM_CHECK_EXTENSION", vm);
    bput(&b, ",\"fd\":\"%s\",\"cap\":%lu", kind == 1 ? "system" : "vm", arg);
    if (name != NULL) bput(&b, ",\"cap_name\":\"%s\",\"not_in_trace\":\"%s\"", name, old_vm ? "an older VM" : "a negative answer");
    extra_answer(&b, ret, err);
    emit(extra_fd, &b);
    return;
  }
  if (kind != 2) return;
  if (req == REQ_SET_REGION || req == REQ_SET_REGION2) {
    const struct rec_region2 *r = (const struct rec_region2 *)arg;
    int v2 = req == REQ_SET_REGION2;
    bput(&t, "{\"op\":\"set_user_memory_region%s\",\"slot\":%u,\"flags\":%u,\"guest_phys_addr\":\"0x%llx\",\"memory_size\":\"0x%llx\",\"userspace_addr\":\"0x%llx\"",
         v2 ? "2" : "", r->slot, r->flags, (unsigned long long)r->guest_phys_addr, (unsigned long long)r->memory_size, (unsigned long long)r->userspace_addr);
    if (v2 && (r->flags & KVM_MEM_GUEST_MEMFD)) {
      bput(&t, ",\"guest_memfd_offset\":\"0x%llx\",\"guest_memfd\":", (unsigned long long)r->guest_memfd_offset);
      put_gmem(&t, r->guest_memfd, vm);
    }
  } else if (req == REQ_GET_DIRTY_LOG) {
    const struct rec_dirty_log *d = (const struct rec_dirty_log *)arg;
    bput(&t, "{\"op\":\"get_dirty_log\",\"slot\":%u", d->slot);
  } else if (req == REQ_CLEAR_DIRTY_LOG) {
    const struct rec_clear_dirty_log *c = (const struct rec_clear_dirty_log *)arg;
    if (!pre_ok) {
      free(t.p);
      struct buf b = extra_start("KVM_CLEAR_DIRTY_LOG", vm);
      bput(&b, ",\"slot\":%u,\"first_page\":\"0x%llx\",\"num_pages\":%u,\"not_in_trace\":\"the bitmap could not be read\"", c->slot,
           (unsigned long long)c->first_page, c->num_pages);
      extra_answer(&b, ret, err);
      emit(extra_fd, &b);
      return;
    }
    bput(&t, "{\"op\":\"clear_dirty_log\",\"slot\":%u,\"first_page\":\"0x%llx\",\"num_pages\":%u,\"bitmap\":%s", c->slot,
         (unsigned long long)c->first_page, c->num_pages, pre->p == NULL ? "\"\"" : pre->p);
  } else if (req == REQ_ENABLE_CAP) {
    const struct rec_enable_cap *c = (const struct rec_enable_cap *)arg;
    if (c->cap != CAP_MANUAL_DIRTY_LOG_PROTECT2) {
      struct buf b = extra_start("KVM_ENABLE_CAP", vm);
      const char *name = cap_name(c->cap);
      bput(&b, ",\"cap\":%u,%s%s%s\"flags\":%u,\"args\":[\"0x%llx\",\"0x%llx\",\"0x%llx\",\"0x%llx\"]", c->cap, name ? "\"cap_name\":\"" : "",
           name ? name : "", name ? "\"," : "", c->flags, (unsigned long long)c->args[0], (unsigned long long)c->args[1],
           (unsigned long long)c->args[2], (unsigned long long)c->args[3]);
      extra_answer(&b, ret, err);
      emit(extra_fd, &b);
      free(t.p);
      return;
    }
    bput(&t, "{\"op\":\"enable_cap\",\"cap\":\"MANUAL_DIRTY_LOG_PROTECT2\",\"args0\":\"0x%llx\",\"flags\":%u", (unsigned long long)c->args[0], c->flags);
  } else if (req == REQ_CREATE_GUEST_MEMFD) {
    const struct rec_create_guest_memfd *g = (const struct rec_create_guest_memfd *)arg;
    bput(&t, "{\"op\":\"create_guest_memfd\",\"size\":\"0x%llx\",\"flags\":\"0x%llx\"", (unsigned long long)g->size, (unsigned long long)g->flags);
    if (ret >= 0 && ret < FD_MAX) {
      fd_kind[ret] = 3;
      fd_vm[ret] = vm;
      fd_handle[ret] = old_vm ? -1 : next_handle;
    }
    if (ret >= 0 && !old_vm) next_handle++;
    if (ret >= 0) ret = 0; /* the protocol's answer is {"ret":0}, not the fd */
  } else if (req == REQ_SET_MEMORY_ATTRIBUTES) {
    const struct rec_memory_attributes *a = (const struct rec_memory_attributes *)arg;
    bput(&t, "{\"op\":\"set_memory_attributes\",\"address\":\"0x%llx\",\"size\":\"0x%llx\",\"attributes\":\"0x%llx\",\"flags\":\"0x%llx\"",
         (unsigned long long)a->address, (unsigned long long)a->size, (unsigned long long)a->attributes, (unsigned long long)a->flags);
  } else {
    return;
  }
  /* The trace speaks for the newest VM only: an older VM's request goes to the side log, as written. */
  trace_or_extra(&t, ret, err, vm, old_vm ? "an older VM" : NULL);
}

static int interesting(uint32_t req) {
  return req == REQ_CREATE_VM || req == REQ_CHECK_EXTENSION || req == REQ_SET_REGION || req == REQ_SET_REGION2 || req == REQ_GET_DIRTY_LOG ||
         req == REQ_CLEAR_DIRTY_LOG || req == REQ_ENABLE_CAP || req == REQ_CREATE_GUEST_MEMFD || req == REQ_SET_MEMORY_ATTRIBUTES;
}

int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  init_real();
  uint32_t req = (uint32_t)request; /* the low 32 bits: QEMU's numbers are sign-extended ints */
  if (real_ioctl == NULL) {
    errno = ENOSYS;
    return -1;
  }
  if (!interesting(req)) return real_ioctl(fd, request, arg);
  pthread_mutex_lock(&lock);
  open_logs();
  if (out_fd < 0 && extra_fd < 0) {
    pthread_mutex_unlock(&lock);
    return real_ioctl(fd, request, arg);
  }
  struct buf pre = {0};
  int pre_ok = 0;
  if (req == REQ_CLEAR_DIRTY_LOG && arg != 0 && classify(fd) == 2) {
    const struct rec_clear_dirty_log *c = (const struct rec_clear_dirty_log *)arg;
    hex_bitmap(&pre, c->dirty_bitmap, c->num_pages, &pre_ok);
  }
  int ret = real_ioctl(fd, request, arg);
  int err = errno;
  if (arg != 0 || req == REQ_CREATE_VM || req == REQ_CHECK_EXTENSION) record(fd, req, arg, ret, err, &pre, pre_ok);
  free(pre.p);
  pthread_mutex_unlock(&lock);
  errno = err;
  return ret;
}

int close(int fd) {
  init_real();
  if (real_close == NULL) {
    errno = ENOSYS;
    return -1;
  }
  pthread_mutex_lock(&lock);
  if (opened && fd >= 0 && (fd == out_fd || fd == extra_fd)) {
    /* The recorder's own logs stay open (a VMM closing every fd it did not open, say). */
    pthread_mutex_unlock(&lock);
    return 0;
  }
  if (fd >= 0 && fd < FD_MAX) {
    fd_kind[fd] = 0;
    fd_vm[fd] = 0;
    fd_handle[fd] = 0;
  }
  pthread_mutex_unlock(&lock);
  return real_close(fd);
}
