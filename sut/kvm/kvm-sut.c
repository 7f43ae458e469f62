// SPDX-License-Identifier: MIT
/*
 * kvm-sut.c - memslot-oracle system-under-test driver for Linux KVM.
 *
 * Speaks SUT protocol v1 on stdin/stdout: JSON Lines, one request object per
 * line, one answer object per line, in order, flushed after each answer.
 * stderr carries this program's own diagnostics only.
 *
 *   {"op":"hello","protocol":1}
 *     -> {"protocol":1,"name":"linux-kvm <uname -r>","profile":{...},"ops":[...]}
 *   {"op":"reset"}
 *     -> {"ok":true}            close the VM fd and KVM_CREATE_VM(type 0) anew
 *   {"op":"set_user_memory_region","slot":N,"flags":N,
 *    "guest_phys_addr":"0x..","memory_size":"0x..","userspace_addr":"0x.."}
 *     -> {"ret":0} | {"errno":"EINVAL"}    KVM_SET_USER_MEMORY_REGION (v1)
 *   {"op":"get_dirty_log","slot":N}
 *     -> {"ret":0,"bitmap":"HEX"} | {"errno":"ENOENT"}    KVM_GET_DIRTY_LOG
 *   write, clear_dirty_log, enable_cap: see vcpu-write.inc.c
 *   harvest_dirty_ring, reset_dirty_rings, the ring caps: see dirty-ring.inc.c
 *   The 6.8+ memory API (spec/80 "Optional: the 6.8+ memory API"), listed in
 *   hello only where the running kernel has the ioctl:
 *   {"op":"reset","vm_type":N}              KVM_CREATE_VM(N) before the old VM
 *     -> {"ok":true} | {"errno":"EINVAL"}   is closed; refused: the old VM stays
 *   {"op":"create_guest_memfd","size":"0x..","flags":"0x.."}
 *     -> {"ret":0} | {"errno":..}           the next handle (0, 1, .. per VM)
 *   {"op":"set_user_memory_region2", v1 fields, "guest_memfd_offset":"0x..",
 *    "guest_memfd": handle | "other_vm" | "memfd" | "closed"}
 *     -> {"ret":0} | {"errno":..}           KVM_SET_USER_MEMORY_REGION2
 *   {"op":"set_memory_attributes","address","size","attributes","flags"}
 *     -> {"ret":0} | {"errno":..}           KVM_SET_MEMORY_ATTRIBUTES
 *   {"op":"check_extension","cap":"GUEST_MEMFD","fd":"vm"|"system"}
 *     -> {"value":N}                        KVM_CHECK_EXTENSION
 *   anything else, or an unparsable line -> {"error":"..."}
 *
 * u32 fields are JSON numbers; u64 fields are JSON strings, "0x" hex or
 * decimal on input, lowercase "0x" hex on output. Unknown fields (such as a
 * trace's "expect" object) are ignored. The first set/get without a reset
 * uses a VM created lazily. EOF on stdin exits 0.
 *
 * Probes (run once, at the first hello, on a scratch VM that is then closed):
 *
 *  - max_gfn: binary search for the highest gfn g such that a one-page slot
 *    (slot 0, guest_phys_addr g << 12, userspace_addr 0) is created; each
 *    accepted probe slot is deleted again. The search range is
 *    [0, 2^52 - 2]: 2^52 - 2 is the highest gfn whose one-page slot does not
 *    wrap the u64 guest physical address (gfn 2^52 - 1 always fails the wrap
 *    check). If 2^52 - 2 is accepted the kernel has no max-gfn check and
 *    max_gfn is reported as null.
 *  - user_addr_max: binary search for the largest page-aligned U such that a
 *    one-page slot with userspace_addr U - 0x1000 is created (so U is the
 *    limit on userspace_addr + memory_size, access_ok() on x86-64 4-level
 *    paging gives 0x7ffffffff000). Same create/delete scheme as max_gfn.
 *  - max_nr_pages: the page-count check (KVM_MEM_MAX_NR_PAGES) comes before
 *    the overlap check, and the overlap check comes before the x86 max-gfn
 *    check and any allocation. So with slot 1 holding gpa 0, a request for
 *    slot 0 at gpa 0 with n pages answers EEXIST when n passes the page-count
 *    check and EINVAL when it does not, independent of max_gfn (which may be
 *    smaller than 2^31 pages, e.g. in a nested guest) and without allocating
 *    anything. Binary search for the largest such n; null if every n up to
 *    user_addr_max / 4096 passes. Expected: 0x7fffffff (2^31 - 1).
 *  - address_spaces: KVM_CAP_MULTI_ADDRESS_SPACE on the VM fd (0 means 1).
 *  - user_mem_slots: KVM_CAP_NR_MEMSLOTS; mem_slots_num adds the internal
 *    slots (3 on x86, KVM_INTERNAL_MEM_SLOTS).
 *  - readonly_mem: KVM_CAP_READONLY_MEM on the VM fd.
 *  - v1_flags_mask, max_nr_pages_user_only, nr_memslot_pages_check: from the
 *    kernel version in uname -r (>= 6.8, >= 6.14, >= 5.17).
 *
 * Build: cc -O2 -Wall -Wextra -std=gnu11 -o kvm-sut kvm-sut.c [-static]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/kvm.h>

typedef uint32_t u32;
typedef uint64_t u64;

/* Capability numbers, for headers older than the running kernel. */
#ifndef KVM_CAP_NR_MEMSLOTS
#define KVM_CAP_NR_MEMSLOTS 10
#endif
#ifndef KVM_CAP_READONLY_MEM
#define KVM_CAP_READONLY_MEM 81
#endif
#ifndef KVM_CAP_MULTI_ADDRESS_SPACE
#define KVM_CAP_MULTI_ADDRESS_SPACE 118
#endif

/*
 * The 6.8+ memory API (spec/28-memory-api.md), from the kernel's uapi
 * (include/uapi/linux/kvm.h of 6.12 and 7.3): the host's header may be older
 * than the running kernel, so the structs and ioctl numbers are our own, under
 * our own names (no clash with a header that has them).
 */
#define MS_KVM_CAP_USER_MEMORY			3
#define MS_KVM_CAP_NR_MEMSLOTS			10
#define MS_KVM_CAP_READONLY_MEM			81
#define MS_KVM_CAP_MULTI_ADDRESS_SPACE		118
#define MS_KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2	168
#define MS_KVM_CAP_DIRTY_LOG_RING		192
#define MS_KVM_CAP_DIRTY_LOG_RING_ACQ_REL	223
#define MS_KVM_CAP_USER_MEMORY2			231
#define MS_KVM_CAP_MEMORY_ATTRIBUTES		233
#define MS_KVM_CAP_GUEST_MEMFD			234
#define MS_KVM_CAP_VM_TYPES			235
#define MS_KVM_CAP_GUEST_MEMFD_FLAGS		244

#define MS_KVM_MEM_GUEST_MEMFD			(1U << 2)

struct ms_kvm_userspace_memory_region2 {
	u32 slot;
	u32 flags;
	u64 guest_phys_addr;
	u64 memory_size;
	u64 userspace_addr;
	u64 guest_memfd_offset;
	u32 guest_memfd;
	u32 pad1;
	u64 pad2[14];
};

struct ms_kvm_create_guest_memfd {
	u64 size;
	u64 flags;
	u64 reserved[6];
};

struct ms_kvm_memory_attributes {
	u64 address;
	u64 size;
	u64 attributes;
	u64 flags;
};

_Static_assert(sizeof(struct ms_kvm_userspace_memory_region2) == 160, "region2 is 160 bytes");
_Static_assert(sizeof(struct ms_kvm_create_guest_memfd) == 64, "create_guest_memfd is 64 bytes");
_Static_assert(sizeof(struct ms_kvm_memory_attributes) == 32, "memory_attributes is 32 bytes");

#define MS_KVM_SET_USER_MEMORY_REGION2 \
	_IOW(KVMIO, 0x49, struct ms_kvm_userspace_memory_region2)
#define MS_KVM_SET_MEMORY_ATTRIBUTES \
	_IOW(KVMIO, 0xd2, struct ms_kvm_memory_attributes)
#define MS_KVM_CREATE_GUEST_MEMFD \
	_IOWR(KVMIO, 0xd4, struct ms_kvm_create_guest_memfd)

/* The fd passed where a request carries no guest_memfd (spec/80). */
#define NO_GUEST_MEMFD 0xffffffffU
/* Size of the guest_memfd made for "other_vm" (any size does, spec/80). */
#define OTHER_VM_GMEM_SIZE (1ULL << 30)

#if defined(__x86_64__) || defined(__i386__)
#define KVM_INTERNAL_MEM_SLOTS 3	/* TSS, APIC access page, identity map */
#else
#define KVM_INTERNAL_MEM_SLOTS 0
#endif

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ULL << PAGE_SHIFT)
#define PROTOCOL_VERSION 1
/* Unknown slot in get_dirty_log: a bitmap buffer for 2^31 pages (256 MiB). */
#define MAX_BITMAP_BYTES ((1ULL << 31) / 8)

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

static void put_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* Ends an answer line. A broken stdout means nobody is listening: exit. */
static void end_answer(void)
{
	putchar('\n');
	if (fflush(stdout) != 0 || ferror(stdout))
		exit(1);
}

static void answer_error(const char *msg)
{
	fputs("{\"error\":", stdout);
	put_json_string(msg);
	putchar('}');
	end_answer();
}

static void answer_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void answer_errorf(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	answer_error(msg);
}

static const char *errno_name(int err, char *buf, size_t len)
{
	/* The names of the kernel's uapi (asm-generic errno-base.h, errno.h). */
	static const struct { int err; const char *name; } names[] = {
		{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { ESRCH, "ESRCH" },
		{ EINTR, "EINTR" }, { EIO, "EIO" }, { ENXIO, "ENXIO" },
		{ E2BIG, "E2BIG" }, { ENOEXEC, "ENOEXEC" }, { EBADF, "EBADF" },
		{ ECHILD, "ECHILD" }, { EAGAIN, "EAGAIN" }, { ENOMEM, "ENOMEM" },
		{ EACCES, "EACCES" }, { EFAULT, "EFAULT" }, { EBUSY, "EBUSY" },
		{ EEXIST, "EEXIST" }, { EXDEV, "EXDEV" }, { ENODEV, "ENODEV" },
		{ ENOTDIR, "ENOTDIR" }, { EISDIR, "EISDIR" }, { EINVAL, "EINVAL" },
		{ ENFILE, "ENFILE" }, { EMFILE, "EMFILE" }, { ENOTTY, "ENOTTY" },
		{ EFBIG, "EFBIG" }, { ENOSPC, "ENOSPC" }, { ESPIPE, "ESPIPE" },
		{ EROFS, "EROFS" }, { ERANGE, "ERANGE" }, { ENOSYS, "ENOSYS" },
		{ EOVERFLOW, "EOVERFLOW" }, { EOPNOTSUPP, "EOPNOTSUPP" },
		{ EHWPOISON, "EHWPOISON" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].err == err)
			return names[i].name;
	snprintf(buf, len, "E%d", err);
	return buf;
}

/* {"ret":0} or {"errno":"NAME"}; err is 0 or a positive errno. */
static void answer_ioctl(int err)
{
	char buf[16];

	if (!err) {
		fputs("{\"ret\":0}", stdout);
	} else {
		fputs("{\"errno\":", stdout);
		put_json_string(errno_name(err, buf, sizeof(buf)));
		putchar('}');
	}
	end_answer();
}

/* ------------------------------------------------------------------------ */
/* JSON request parsing: one flat object; nested values are skipped.        */
/* ------------------------------------------------------------------------ */

enum value_type { V_STRING, V_NUMBER, V_BOOL, V_NULL, V_OBJECT, V_ARRAY };

static const char *const type_names[] = {
	[V_STRING] = "a string", [V_NUMBER] = "a number", [V_BOOL] = "a boolean",
	[V_NULL] = "null", [V_OBJECT] = "an object", [V_ARRAY] = "an array",
};

struct field {
	const char *key;
	enum value_type type;
	const char *text;	/* V_STRING: unescaped value; V_NUMBER: literal */
};

#define MAX_FIELDS 64
#define MAX_DEPTH 32

struct request {
	struct field fields[MAX_FIELDS];
	int nr_fields;
};

struct parser {
	const char *start;
	const char *p;
	char *arena;		/* unescaped strings and number literals */
	char err[200];
};

static bool fail(struct parser *ps, const char *what)
{
	snprintf(ps->err, sizeof(ps->err), "invalid JSON at byte %td: %s",
		 ps->p - ps->start, what);
	return false;
}

static void skip_ws(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool parse_hex4(struct parser *ps, unsigned int *out)
{
	unsigned int v = 0;

	for (int i = 0; i < 4; i++) {
		int d = hex_digit(ps->p[i]);

		if (d < 0)
			return fail(ps, "bad \\u escape");
		v = v << 4 | (unsigned int)d;
	}
	ps->p += 4;
	*out = v;
	return true;
}

static char *put_utf8(char *o, unsigned int cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/* Parses a string at ps->p (on the opening quote). Stores it if out != NULL. */
static bool parse_string(struct parser *ps, const char **out)
{
	char *o = ps->arena;

	ps->p++;
	for (;;) {
		unsigned char c = (unsigned char)*ps->p;

		if (c == '"')
			break;
		if (c == '\0')
			return fail(ps, "unterminated string");
		if (c < 0x20)
			return fail(ps, "control character in string");
		ps->p++;
		if (c != '\\') {
			*o++ = (char)c;
			continue;
		}
		c = (unsigned char)*ps->p++;
		switch (c) {
		case '"': case '\\': case '/': *o++ = (char)c; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			unsigned int cp, lo;

			if (!parse_hex4(ps, &cp))
				return false;
			/*
			 * A surrogate pair becomes one code point; a lone
			 * surrogate (valid JSON) is kept as its 3-byte form.
			 */
			if (cp >= 0xd800 && cp <= 0xdbff &&
			    ps->p[0] == '\\' && ps->p[1] == 'u') {
				const char *save = ps->p;

				ps->p += 2;
				if (!parse_hex4(ps, &lo))
					return false;
				if (lo >= 0xdc00 && lo <= 0xdfff)
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				else
					ps->p = save;
			}
			/* A NUL would cut a stored C string short. */
			if (cp == 0 && out) {
				snprintf(ps->err, sizeof(ps->err),
					 "\\u0000 (byte %td) in a top-level string is not supported",
					 ps->p - ps->start);
				return false;
			}
			o = put_utf8(o, cp);
			break;
		}
		default:
			ps->p--;
			return fail(ps, "bad escape in string");
		}
	}
	ps->p++;
	*o++ = '\0';
	if (out) {
		*out = ps->arena;
		ps->arena = o;
	}
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool parse_number(struct parser *ps, const char **out)
{
	const char *s = ps->p;
	size_t len;

	if (*ps->p == '-')
		ps->p++;
	if (*ps->p == '0')
		ps->p++;
	else if (is_digit(*ps->p))
		while (is_digit(*ps->p))
			ps->p++;
	else
		return fail(ps, "bad number");
	if (*ps->p == '.') {
		ps->p++;
		if (!is_digit(*ps->p))
			return fail(ps, "bad number");
		while (is_digit(*ps->p))
			ps->p++;
	}
	if (*ps->p == 'e' || *ps->p == 'E') {
		ps->p++;
		if (*ps->p == '+' || *ps->p == '-')
			ps->p++;
		if (!is_digit(*ps->p))
			return fail(ps, "bad number");
		while (is_digit(*ps->p))
			ps->p++;
	}
	if (out) {
		len = (size_t)(ps->p - s);
		memcpy(ps->arena, s, len);
		ps->arena[len] = '\0';
		*out = ps->arena;
		ps->arena += len + 1;
	}
	return true;
}

static bool parse_literal(struct parser *ps, const char *word)
{
	size_t len = strlen(word);

	if (strncmp(ps->p, word, len) != 0)
		return fail(ps, "unexpected character");
	ps->p += len;
	return true;
}

/* Parses any value; stores strings and numbers in *f if f != NULL. */
static bool parse_value(struct parser *ps, struct field *f, int depth)
{
	const char **text = f ? &f->text : NULL;
	enum value_type type;

	if (depth > MAX_DEPTH)
		return fail(ps, "nested too deeply");
	skip_ws(ps);
	switch (*ps->p) {
	case '"':
		type = V_STRING;
		if (!parse_string(ps, text))
			return false;
		break;
	case 't':
		type = V_BOOL;
		if (!parse_literal(ps, "true"))
			return false;
		if (f)
			f->text = "true";
		break;
	case 'f':
		type = V_BOOL;
		if (!parse_literal(ps, "false"))
			return false;
		if (f)
			f->text = "false";
		break;
	case 'n':
		type = V_NULL;
		if (!parse_literal(ps, "null"))
			return false;
		break;
	case '{':
	case '[': {
		char close = *ps->p == '{' ? '}' : ']';

		type = close == '}' ? V_OBJECT : V_ARRAY;
		ps->p++;
		skip_ws(ps);
		if (*ps->p == close) {
			ps->p++;
			break;
		}
		for (;;) {
			skip_ws(ps);
			if (close == '}') {
				if (*ps->p != '"')
					return fail(ps, "expected a string key");
				if (!parse_string(ps, NULL))
					return false;
				skip_ws(ps);
				if (*ps->p != ':')
					return fail(ps, "expected ':'");
				ps->p++;
			}
			if (!parse_value(ps, NULL, depth + 1))
				return false;
			skip_ws(ps);
			if (*ps->p == close) {
				ps->p++;
				break;
			}
			if (*ps->p != ',')
				return fail(ps, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
			ps->p++;
		}
		break;
	}
	default:
		type = V_NUMBER;
		if (!parse_number(ps, text))
			return false;
		break;
	}
	if (f)
		f->type = type;
	return true;
}

/*
 * Parses one request line into req. The arena must hold at least
 * strlen(line) + 1 bytes: every stored string or number is no longer than
 * its JSON text plus one delimiter.
 */
static bool parse_request(const char *line, char *arena, struct request *req,
			  char *err, size_t errlen)
{
	struct parser ps = { .start = line, .p = line, .arena = arena };

	req->nr_fields = 0;
	skip_ws(&ps);
	if (*ps.p == '\0') {
		snprintf(ps.err, sizeof(ps.err), "empty request line");
		goto out_err;
	}
	if (*ps.p != '{') {
		snprintf(ps.err, sizeof(ps.err), "a request must be a JSON object");
		goto out_err;
	}
	ps.p++;
	skip_ws(&ps);
	if (*ps.p == '}') {
		ps.p++;
		goto out_end;
	}
	for (;;) {
		struct field *f;

		skip_ws(&ps);
		if (*ps.p != '"') {
			fail(&ps, "expected a string key");
			goto out_err;
		}
		if (req->nr_fields == MAX_FIELDS) {
			fail(&ps, "too many fields");
			goto out_err;
		}
		f = &req->fields[req->nr_fields];
		if (!parse_string(&ps, &f->key))
			goto out_err;
		for (int i = 0; i < req->nr_fields; i++) {
			if (!strcmp(req->fields[i].key, f->key)) {
				snprintf(ps.err, sizeof(ps.err), "duplicate field \"%.64s\"", f->key);
				goto out_err;
			}
		}
		skip_ws(&ps);
		if (*ps.p != ':') {
			fail(&ps, "expected ':'");
			goto out_err;
		}
		ps.p++;
		f->text = NULL;
		if (!parse_value(&ps, f, 1))
			goto out_err;
		req->nr_fields++;
		skip_ws(&ps);
		if (*ps.p == '}') {
			ps.p++;
			break;
		}
		if (*ps.p != ',') {
			fail(&ps, "expected ',' or '}'");
			goto out_err;
		}
		ps.p++;
	}
out_end:
	skip_ws(&ps);
	if (*ps.p == '\0')
		return true;
	fail(&ps, "trailing characters after the object");
out_err:
	snprintf(err, errlen, "%s", ps.err);
	return false;
}

static const struct field *find_field(const struct request *req, const char *key)
{
	for (int i = 0; i < req->nr_fields; i++)
		if (!strcmp(req->fields[i].key, key))
			return &req->fields[i];
	return NULL;
}

/* A u32 field: a JSON number that is a non-negative integer <= 2^32 - 1. */
static bool get_u32(const struct request *req, const char *key, u32 *out,
		    char *err, size_t errlen)
{
	const struct field *f = find_field(req, key);
	u64 v = 0;

	if (!f) {
		snprintf(err, errlen, "missing field \"%s\"", key);
		return false;
	}
	if (f->type != V_NUMBER) {
		snprintf(err, errlen, "field \"%s\" must be a number (u32), not %s",
			 key, type_names[f->type]);
		return false;
	}
	if (f->text[0] == '-') {
		snprintf(err, errlen, "field \"%s\" must not be negative: %.40s", key, f->text);
		return false;
	}
	for (const char *s = f->text; *s; s++) {
		if (!is_digit(*s)) {
			snprintf(err, errlen, "field \"%s\" must be an integer: %.40s", key, f->text);
			return false;
		}
		v = v * 10 + (u64)(*s - '0');
		if (v > UINT32_MAX) {
			snprintf(err, errlen, "field \"%s\" exceeds 2^32-1: %.40s", key, f->text);
			return false;
		}
	}
	*out = (u32)v;
	return true;
}

/* Parses "0x<hex>" or "<decimal>" exactly into a u64. */
static bool parse_u64(const char *s, u64 *out)
{
	u64 v = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		if (!*s)
			return false;
		for (; *s; s++) {
			int d = hex_digit(*s);

			if (d < 0 || v >> 60)
				return false;
			v = v << 4 | (u64)d;
		}
	} else {
		if (!*s)
			return false;
		for (; *s; s++) {
			if (!is_digit(*s) || v > (UINT64_MAX - (u64)(*s - '0')) / 10)
				return false;
			v = v * 10 + (u64)(*s - '0');
		}
	}
	*out = v;
	return true;
}

/* A u64 field: a JSON string, 0x-hex or decimal, <= 2^64 - 1. */
static bool get_u64(const struct request *req, const char *key, u64 *out,
		    char *err, size_t errlen)
{
	const struct field *f = find_field(req, key);

	if (!f) {
		snprintf(err, errlen, "missing field \"%s\"", key);
		return false;
	}
	if (f->type != V_STRING) {
		snprintf(err, errlen,
			 "field \"%s\" must be a string (0x-hex or decimal u64), not %s",
			 key, type_names[f->type]);
		return false;
	}
	if (!parse_u64(f->text, out)) {
		snprintf(err, errlen,
			 "field \"%s\" is not a 0x-hex or decimal u64 <= 2^64-1: \"%.40s\"",
			 key, f->text);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* KVM                                                                      */
/* ------------------------------------------------------------------------ */

static int kvm_fd = -1;
static int vm_fd = -1;		/* the VM the requests act on; -1 until needed */

/* Shadow: npages of the last successful set per slot value, 0 if none. */
static u64 *shadow_npages[1 << 16];	/* indexed by as_id, then id */

static void *big_bitmap;		/* MAX_BITMAP_BYTES, MAP_NORESERVE */
static void *small_bitmap;
static size_t small_bitmap_len;

static u32 vm_type;		/* the type of vm_fd's VM */

/* guest_memfd handles of the current VM (spec/80): handle i is gmem_fds[i]. */
static int *gmem_fds;
static size_t nr_gmem, cap_gmem;

/* "other_vm": a second VM of the current type and a guest_memfd of it; -1 until used. */
static int other_vm_fd = -1;
static int other_gmem_fd = -1;
/* "memfd": a plain memfd_create() file; -1 until used. */
static int plain_memfd = -1;

static int create_vm_type(u32 type)
{
	int fd;

	do
		fd = ioctl(kvm_fd, KVM_CREATE_VM, (unsigned long)type);
	while (fd < 0 && errno == EINTR);
	return fd;
}

static int create_vm(void)
{
	return create_vm_type(0);
}

/* KVM_CREATE_GUEST_MEMFD on vm: the new fd, or -1 with errno set. */
static int create_gmem(int vm, u64 size, u64 flags)
{
	struct ms_kvm_create_guest_memfd args = { .size = size, .flags = flags };

	return ioctl(vm, MS_KVM_CREATE_GUEST_MEMFD, &args);
}

/* Returns 0 or a positive errno. */
static int set_region2(int fd, u32 slot, u32 flags, u64 gpa, u64 size, u64 uaddr,
		       u64 gmem_offset, u32 gmem_fd)
{
	struct ms_kvm_userspace_memory_region2 region = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = uaddr,
		.guest_memfd_offset = gmem_offset,
		.guest_memfd = gmem_fd,
	};

	return ioctl(fd, MS_KVM_SET_USER_MEMORY_REGION2, &region) ? errno : 0;
}

/* Closes the guest_memfd files of the current VM and the "other_vm" pair. */
static void gmem_clear(void)
{
	for (size_t i = 0; i < nr_gmem; i++)
		close(gmem_fds[i]);
	nr_gmem = 0;
	if (other_gmem_fd >= 0)
		close(other_gmem_fd);
	if (other_vm_fd >= 0)
		close(other_vm_fd);
	other_gmem_fd = other_vm_fd = -1;
}

static int check_extension(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

/* Returns 0 or a positive errno. */
static int set_region(int fd, u32 slot, u32 flags, u64 gpa, u64 size, u64 uaddr)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = uaddr,
	};

	return ioctl(fd, KVM_SET_USER_MEMORY_REGION, &region) ? errno : 0;
}

static void shadow_clear(void)
{
	for (size_t i = 0; i < sizeof(shadow_npages) / sizeof(shadow_npages[0]); i++) {
		free(shadow_npages[i]);
		shadow_npages[i] = NULL;
	}
}

static u64 shadow_get(u32 slot)
{
	u64 *ids = shadow_npages[slot >> 16];

	return ids ? ids[slot & 0xffff] : 0;
}

static bool shadow_set(u32 slot, u64 npages)
{
	u64 **ids = &shadow_npages[slot >> 16];

	if (!*ids) {
		if (!npages)
			return true;
		*ids = calloc(1 << 16, sizeof(u64));
		if (!*ids)
			return false;
	}
	(*ids)[slot & 0xffff] = npages;
	return true;
}

static bool ensure_vm(void)
{
	if (vm_fd >= 0)
		return true;
	vm_fd = create_vm();
	if (vm_fd < 0) {
		answer_errorf("KVM_CREATE_VM failed: %s", strerror(errno));
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* Probes                                                                   */
/* ------------------------------------------------------------------------ */

struct profile {
	int address_spaces;
	int user_mem_slots;
	bool has_max_gfn;
	u64 max_gfn;
	u64 user_addr_max;
	bool has_max_nr_pages;
	u64 max_nr_pages;
	bool readonly_mem;
	bool v1_flags_mask;
	bool max_nr_pages_user_only;
	bool nr_memslot_pages_check;
	/* The 6.8+ memory API (spec/28, spec/60), probed on a type-0 VM. */
	u32 vm_types;
	bool user_memory2;
	bool guest_memfd;
	bool guest_memfd_slots_all;
	u64 guest_memfd_flags;
	bool gmem_bind_eexist;
	bool gmem_bind_late;
	bool memory_attributes;
	int dirty_ring_max_bytes;
	bool dirty_ring_acq_rel;
	int dirty_ring_rsvd_entries;
};

static struct profile profile;
static bool profile_done;
static struct utsname uts;

/* Creates a one-page slot 0 and deletes it again; true if it was created. */
static bool probe_one_page(int vm, u64 gpa, u64 uaddr)
{
	if (set_region(vm, 0, 0, gpa, PAGE_SIZE, uaddr))
		return false;
	if (set_region(vm, 0, 0, gpa, 0, uaddr))
		fprintf(stderr, "kvm-sut: probe: deleting slot 0 failed: %s\n", strerror(errno));
	return true;
}

/* Largest x in [lo, hi] with ok(x), given ok(lo) and monotonic ok. */
static u64 search_highest(int vm, u64 lo, u64 hi, bool (*ok)(int vm, u64 x))
{
	if (ok(vm, hi))
		return hi;
	while (hi - lo > 1) {
		u64 mid = lo + (hi - lo) / 2;

		if (ok(vm, mid))
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static bool gfn_ok(int vm, u64 gfn)
{
	return probe_one_page(vm, gfn << PAGE_SHIFT, 0);
}

static bool uaddr_limit_ok(int vm, u64 pages)
{
	return probe_one_page(vm, 0, (pages - 1) << PAGE_SHIFT);
}

/* Slot 1 holds gpa 0: EEXIST means n pages passed the page-count check. */
static bool nr_pages_ok(int vm, u64 npages)
{
	int err = set_region(vm, 0, 0, 0, npages << PAGE_SHIFT, 0);

	if (!err)	/* cannot happen: it overlaps slot 1 */
		set_region(vm, 0, 0, 0, 0, 0);
	return err == EEXIST;
}

/*
 * The memory-API probes, on a fresh type-0 scratch VM (the others above are
 * left as they were):
 *
 *  - vm_types: KVM_CAP_VM_TYPES on /dev/kvm, as it answers (0 where the
 *    kernel lacks the cap: then type 0 only, spec/60).
 *  - user_memory2: KVM_CAP_USER_MEMORY2 on the VM.
 *  - dirty_ring_max_bytes, dirty_ring_acq_rel: KVM_CAP_DIRTY_LOG_RING and
 *    KVM_CAP_DIRTY_LOG_RING_ACQ_REL on the VM (the profile's defaults follow
 *    v1_flags_mask, which 6.1 lacks though it has dirty rings: so said here).
 *  - dirty_ring_rsvd_entries: kvm_dirty_ring_get_rsvd_entries(), 64
 *    (KVM_DIRTY_RING_RSVD_ENTRIES) + kvm_cpu_dirty_log_size(), which on x86 is 0
 *    (AMD, or Intel without PML) or 512 (Intel PML: PML_ENTITY_NUM). Enabling a
 *    ring needs size >= rsvd * 16 and >= a page, so a 4096-byte ring enabled on
 *    a fresh scratch VM decides it: accepted means rsvd <= 256, so 64; refused
 *    means 576 (said on stderr). Without dirty rings (5.10) it is 64, the
 *    constant, and nothing depends on it.
 *  - guest_memfd: KVM_CREATE_GUEST_MEMFD with size 0 answers EINVAL (the
 *    ioctl exists; every line checks the size) rather than ENOTTY.
 *  - memory_attributes: KVM_SET_MEMORY_ATTRIBUTES with flags 1 answers EINVAL
 *    rather than ENOTTY.
 *  - guest_memfd_flags: the bits b in 0..63 for which a one-page create with
 *    flags 1 << b succeeds.
 *  - guest_memfd_slots: "all" if a one-page KVM_MEM_GUEST_MEMFD slot bound to
 *    a guest_memfd of this VM is created on the type-0 VM, else "private".
 *  - gmem_bind_errno: with that slot (slot 0, gpa 0, file page 0) in place, a
 *    second one (slot 1, gpa 1 MiB) over the same file page: its errno.
 *  - gmem_bind_late: then slot 1 at gfn max_gfn + 1 over the same file page:
 *    EINVAL (MS-X86-01 first) means late, EEXIST early.
 *    Only where the already-bound errno is EEXIST and there is a max gfn;
 *    elsewhere the two orders give one answer and the field is false.
 *
 * Where no guest_memfd slot can be made on a type-0 VM (6.12, or a kernel
 * without the API), gmem_bind_errno cannot be observed on it and is reported
 * as the source says for such kernels: EINVAL (6.12 guest_memfd.c:483,509-512).
 */
static void run_gmem_probes(struct profile *p)
{
	int vm, fd, r;

	p->vm_types = (u32)check_extension(kvm_fd, MS_KVM_CAP_VM_TYPES);
	vm = create_vm();
	if (vm < 0) {
		fprintf(stderr, "kvm-sut: probe: KVM_CREATE_VM (memory API probe VM) failed: %s\n",
			strerror(errno));
		return;
	}
	p->user_memory2 = check_extension(vm, MS_KVM_CAP_USER_MEMORY2) > 0;
	p->dirty_ring_max_bytes = check_extension(vm, MS_KVM_CAP_DIRTY_LOG_RING);
	p->dirty_ring_acq_rel = check_extension(vm, MS_KVM_CAP_DIRTY_LOG_RING_ACQ_REL) > 0;
	p->dirty_ring_rsvd_entries = 64;
	if (p->dirty_ring_max_bytes > 0) {
		struct kvm_enable_cap cap = { .cap = MS_KVM_CAP_DIRTY_LOG_RING, .args = { 4096 } };
		int ring_vm = create_vm();

		if (ring_vm < 0) {
			fprintf(stderr, "kvm-sut: probe: KVM_CREATE_VM (dirty ring probe VM) failed: %s\n",
				strerror(errno));
		} else {
			if (ioctl(ring_vm, KVM_ENABLE_CAP, &cap)) {
				fprintf(stderr, "kvm-sut: probe: a 4096-byte dirty ring was refused (%s): "
					"taking 576 reserved entries (Intel PML)\n", strerror(errno));
				p->dirty_ring_rsvd_entries = 64 + 512;
			}
			close(ring_vm);
		}
	}

	r = create_gmem(vm, 0, 0);
	p->guest_memfd = r >= 0 || errno != ENOTTY;
	if (r >= 0)
		close(r);
	{
		struct ms_kvm_memory_attributes attrs = { .size = PAGE_SIZE, .flags = 1 };

		r = ioctl(vm, MS_KVM_SET_MEMORY_ATTRIBUTES, &attrs);
		p->memory_attributes = r == 0 || errno != ENOTTY;
	}

	if (p->guest_memfd) {
		for (int bit = 0; bit < 64; bit++) {
			fd = create_gmem(vm, PAGE_SIZE, 1ULL << bit);
			if (fd >= 0) {
				p->guest_memfd_flags |= 1ULL << bit;
				close(fd);
			}
		}
	}

	if (p->guest_memfd && p->user_memory2) {
		fd = create_gmem(vm, 16 * PAGE_SIZE, 0);
		if (fd < 0) {
			fprintf(stderr, "kvm-sut: probe: KVM_CREATE_GUEST_MEMFD of 16 pages failed: %s\n",
				strerror(errno));
		} else {
			if (!set_region2(vm, 0, MS_KVM_MEM_GUEST_MEMFD, 0, PAGE_SIZE, 0, 0, (u32)fd)) {
				p->guest_memfd_slots_all = true;
				r = set_region2(vm, 1, MS_KVM_MEM_GUEST_MEMFD, 1ULL << 20, PAGE_SIZE, 0, 0, (u32)fd);
				if (!r)
					set_region2(vm, 1, 0, 1ULL << 20, 0, 0, 0, NO_GUEST_MEMFD);
				p->gmem_bind_eexist = r == EEXIST;
				if (r != EEXIST && r != EINVAL)
					fprintf(stderr, "kvm-sut: probe: a second binding of a bound range answered %s\n",
						r ? strerror(r) : "success");
				if (p->gmem_bind_eexist && p->has_max_gfn) {
					r = set_region2(vm, 1, MS_KVM_MEM_GUEST_MEMFD,
							(p->max_gfn + 1) << PAGE_SHIFT, PAGE_SIZE,
							0, 0, (u32)fd);
					if (!r)
						set_region2(vm, 1, 0, (p->max_gfn + 1) << PAGE_SHIFT, 0,
							    0, 0, NO_GUEST_MEMFD);
					p->gmem_bind_late = r == EINVAL;
				}
				set_region2(vm, 0, 0, 0, 0, 0, 0, NO_GUEST_MEMFD);
			}
			close(fd);
		}
	}
	close(vm);
}

static bool run_probes(char *err, size_t errlen)
{
	const u64 top_gfn = (1ULL << 52) - 2;	/* highest non-wrapping 1-page gfn */
	const u64 top_pages = (1ULL << 52) - 1;	/* U = 2^64 - 4096 */
	struct profile p = { 0 };
	int major = 0, minor = 0, version;
	u64 limit;
	int vm;

	if (uname(&uts)) {
		snprintf(err, errlen, "uname failed: %s", strerror(errno));
		return false;
	}
	sscanf(uts.release, "%d.%d", &major, &minor);
	version = major * 1000 + minor;

	vm = create_vm();
	if (vm < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM (probe VM) failed: %s", strerror(errno));
		return false;
	}
	p.address_spaces = check_extension(vm, KVM_CAP_MULTI_ADDRESS_SPACE);
	if (p.address_spaces <= 0)
		p.address_spaces = 1;
	p.user_mem_slots = check_extension(vm, KVM_CAP_NR_MEMSLOTS);
	p.readonly_mem = check_extension(vm, KVM_CAP_READONLY_MEM) > 0;
	p.v1_flags_mask = version >= 6008;
	/*
	 * Not observable by any request (internal slots have a u32 size), so
	 * this only labels the profile. 6.12.117 limits every id
	 * (kvm_main.c:2025); 7.2.13 exempts internal ids (kvm_main.c:2041).
	 * The patch was posted in January 2025, so 6.14 is the first release
	 * that can have it (inferred, not read).
	 */
	p.max_nr_pages_user_only = version >= 6014;
	p.nr_memslot_pages_check = version >= 5017;

	if (!probe_one_page(vm, 0, 0)) {
		snprintf(err, errlen, "probe: a one-page slot at gpa 0 was refused: %s",
			 strerror(errno));
		close(vm);
		return false;
	}
	limit = search_highest(vm, 0, top_gfn, gfn_ok);
	p.has_max_gfn = limit != top_gfn;
	p.max_gfn = limit;

	p.user_addr_max = search_highest(vm, 1, top_pages, uaddr_limit_ok) << PAGE_SHIFT;

	if (set_region(vm, 1, 0, 0, PAGE_SIZE, 0)) {
		snprintf(err, errlen, "probe: slot 1 at gpa 0 was refused: %s", strerror(errno));
		close(vm);
		return false;
	}
	limit = p.user_addr_max >> PAGE_SHIFT;
	if (limit && nr_pages_ok(vm, 1)) {
		u64 n = search_highest(vm, 1, limit, nr_pages_ok);

		p.has_max_nr_pages = n != limit;
		p.max_nr_pages = n;
	}
	close(vm);

	run_gmem_probes(&p);

	profile = p;
	profile_done = true;
	return true;
}

/* Dirty rings: the ring of the write's vCPU, harvest, KVM_RESET_DIRTY_RINGS (dr_*). */
#include "dirty-ring.inc.c"
/* Guest writes, the bitmap, KVM_CLEAR_DIRTY_LOG, manual protect (vw_*). */
#include "vcpu-write.inc.c"

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

static void do_hello(const struct request *req)
{
	const struct profile *p = &profile;
	char err[256];
	u32 version;

	if (!get_u32(req, "protocol", &version, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	if (version != PROTOCOL_VERSION) {
		answer_errorf("unsupported protocol version %u (this driver speaks %d)",
			      version, PROTOCOL_VERSION);
		return;
	}
	if (!profile_done && !run_probes(err, sizeof(err))) {
		answer_error(err);
		return;
	}
	vw_probe();

	printf("{\"protocol\":%d,\"name\":", PROTOCOL_VERSION);
	{
		char name[sizeof(uts.release) + 16];

		snprintf(name, sizeof(name), "linux-kvm %s", uts.release);
		put_json_string(name);
	}
	printf(",\"profile\":{\"address_spaces\":%d,\"user_mem_slots\":%d,"
	       "\"mem_slots_num\":%d,",
	       p->address_spaces, p->user_mem_slots,
	       p->user_mem_slots + KVM_INTERNAL_MEM_SLOTS);
	if (p->has_max_gfn)
		printf("\"max_gfn\":\"0x%" PRIx64 "\",", p->max_gfn);
	else
		fputs("\"max_gfn\":null,", stdout);
	printf("\"user_addr_max\":\"0x%" PRIx64 "\",", p->user_addr_max);
	if (p->has_max_nr_pages)
		printf("\"max_nr_pages\":\"0x%" PRIx64 "\",", p->max_nr_pages);
	else
		fputs("\"max_nr_pages\":null,", stdout);
	printf("\"readonly_mem\":%s,\"v1_flags_mask\":%s,"
	       "\"max_nr_pages_user_only\":%s,\"nr_memslot_pages_check\":%s,",
	       p->readonly_mem ? "true" : "false",
	       p->v1_flags_mask ? "true" : "false",
	       p->max_nr_pages_user_only ? "true" : "false",
	       p->nr_memslot_pages_check ? "true" : "false");
	printf("\"vm_types\":%" PRIu32 ",\"user_memory2\":%s,\"guest_memfd\":%s,"
	       "\"guest_memfd_slots\":\"%s\",\"guest_memfd_flags\":\"0x%" PRIx64 "\","
	       "\"gmem_bind_errno\":\"%s\",\"gmem_bind_late\":%s,\"memory_attributes\":%s,"
	       "\"dirty_ring_max_bytes\":%d,\"dirty_ring_acq_rel\":%s,"
	       "\"dirty_ring_rsvd_entries\":%d,\"write_drops_mappings\":%s},",
	       p->vm_types,
	       p->user_memory2 ? "true" : "false",
	       p->guest_memfd ? "true" : "false",
	       p->guest_memfd_slots_all ? "all" : "private",
	       p->guest_memfd_flags,
	       p->gmem_bind_eexist ? "EEXIST" : "EINVAL",
	       p->gmem_bind_late ? "true" : "false",
	       p->memory_attributes ? "true" : "false",
	       p->dirty_ring_max_bytes,
	       p->dirty_ring_acq_rel ? "true" : "false",
	       p->dirty_ring_rsvd_entries,
	       /* every write deletes its code slot: a DELETE zaps all mappings on x86 (dirty-ring.inc.c) */
	       KVM_INTERNAL_MEM_SLOTS ? "true" : "false");
	/*
	 * KVM_CHECK_EXTENSION and the type argument of KVM_CREATE_VM exist on
	 * every kernel (5.10's x86 refuses every type but 0); the other
	 * memory-API ops only where the running kernel has the ioctl.
	 */
	fputs("\"ops\":[\"hello\",\"reset\",\"set_user_memory_region\",\"get_dirty_log\","
	      "\"reset_vm_type\",\"check_extension\"", stdout);
	if (p->user_memory2)
		fputs(",\"set_user_memory_region2\"", stdout);
	if (p->guest_memfd)
		fputs(",\"create_guest_memfd\"", stdout);
	if (p->memory_attributes)
		fputs(",\"set_memory_attributes\"", stdout);
	vw_put_ops();
	fputs("]}", stdout);
	end_answer();
}

/*
 * A fresh VM of vm_type (default 0). The new VM is created before the old one
 * is closed: a type the kernel refuses answers its errno and leaves the old
 * VM, its slots and its guest_memfd files as they were (spec/80).
 */
static void do_reset(const struct request *req)
{
	char err[256];
	u32 type = 0;
	int fd;

	if (find_field(req, "vm_type") && !get_u32(req, "vm_type", &type, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	fd = create_vm_type(type);
	if (fd < 0) {
		/* A plain reset must succeed (spec/80); a typed one answers the errno. */
		if (!find_field(req, "vm_type"))
			answer_errorf("KVM_CREATE_VM failed: %s", strerror(errno));
		else
			answer_ioctl(errno);
		return;
	}
	gmem_clear();
	vw_reset();
	if (vm_fd >= 0)
		close(vm_fd);
	vm_fd = fd;
	vm_type = type;
	shadow_clear();
	fputs("{\"ok\":true}", stdout);
	end_answer();
}

static void do_create_guest_memfd(const struct request *req)
{
	char err[256];
	u64 size, flags;
	int fd;

	if (!get_u64(req, "size", &size, err, sizeof(err)) ||
	    !get_u64(req, "flags", &flags, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	if (!ensure_vm())
		return;
	if (nr_gmem == cap_gmem) {
		size_t n = cap_gmem ? 2 * cap_gmem : 16;
		int *t = realloc(gmem_fds, n * sizeof(*t));

		if (!t) {
			answer_error("out of memory for the guest_memfd table");
			return;
		}
		gmem_fds = t;
		cap_gmem = n;
	}
	fd = create_gmem(vm_fd, size, flags);
	if (fd < 0) {
		answer_ioctl(errno);
		return;
	}
	gmem_fds[nr_gmem++] = fd;
	answer_ioctl(0);
}

/* The fd a request's guest_memfd field names (spec/80), or false with err set. */
static bool gmem_ref_fd(const struct field *f, u32 *out, char *err, size_t errlen)
{
	if (f->type == V_NUMBER) {
		struct request one = { .nr_fields = 1 };
		u32 handle;

		one.fields[0] = *f;
		if (!get_u32(&one, f->key, &handle, err, errlen))
			return false;
		if (handle >= nr_gmem) {
			snprintf(err, errlen, "guest_memfd handle %" PRIu32 " was not created "
				 "by this VM (it has %zu)", handle, nr_gmem);
			return false;
		}
		*out = (u32)gmem_fds[handle];
		return true;
	}
	if (f->type != V_STRING) {
		snprintf(err, errlen, "field \"guest_memfd\" must be a handle (number) or "
			 "\"other_vm\", \"memfd\", \"closed\", not %s", type_names[f->type]);
		return false;
	}
	if (!strcmp(f->text, "other_vm")) {
		if (other_vm_fd < 0) {
			other_vm_fd = create_vm_type(vm_type);
			if (other_vm_fd < 0) {
				snprintf(err, errlen, "KVM_CREATE_VM (type %" PRIu32 ") for \"other_vm\" "
					 "failed: %s", vm_type, strerror(errno));
				return false;
			}
		}
		if (other_gmem_fd < 0) {
			other_gmem_fd = create_gmem(other_vm_fd, OTHER_VM_GMEM_SIZE, 0);
			if (other_gmem_fd < 0) {
				snprintf(err, errlen, "KVM_CREATE_GUEST_MEMFD on the second VM for "
					 "\"other_vm\" failed: %s", strerror(errno));
				return false;
			}
		}
		*out = (u32)other_gmem_fd;
		return true;
	}
	if (!strcmp(f->text, "memfd")) {
		if (plain_memfd < 0) {
			plain_memfd = memfd_create("memslot-sut", MFD_CLOEXEC);
			if (plain_memfd < 0) {
				snprintf(err, errlen, "memfd_create failed: %s", strerror(errno));
				return false;
			}
			if (ftruncate(plain_memfd, (off_t)OTHER_VM_GMEM_SIZE))
				fprintf(stderr, "kvm-sut: ftruncate of the memfd failed: %s\n",
					strerror(errno));
		}
		*out = (u32)plain_memfd;
		return true;
	}
	if (!strcmp(f->text, "closed")) {
		/* A number that was just closed: no open file until the next open. */
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0) {
			snprintf(err, errlen, "open /dev/null failed: %s", strerror(errno));
			return false;
		}
		close(fd);
		*out = (u32)fd;
		return true;
	}
	snprintf(err, errlen, "field \"guest_memfd\" must be a handle or \"other_vm\", "
		 "\"memfd\", \"closed\": \"%.40s\"", f->text);
	return false;
}

static void do_set_region2(const struct request *req)
{
	const struct field *ref = find_field(req, "guest_memfd");
	u64 gpa, size, uaddr, offset = 0;
	u32 slot, flags, fd = NO_GUEST_MEMFD;
	char err[256];
	int ret;

	if (!get_u32(req, "slot", &slot, err, sizeof(err)) ||
	    !get_u32(req, "flags", &flags, err, sizeof(err)) ||
	    !get_u64(req, "guest_phys_addr", &gpa, err, sizeof(err)) ||
	    !get_u64(req, "memory_size", &size, err, sizeof(err)) ||
	    !get_u64(req, "userspace_addr", &uaddr, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	if ((flags & MS_KVM_MEM_GUEST_MEMFD) &&
	    (!ref || !find_field(req, "guest_memfd_offset"))) {
		answer_error("a region with KVM_MEM_GUEST_MEMFD needs \"guest_memfd\" and "
			     "\"guest_memfd_offset\"");
		return;
	}
	if (find_field(req, "guest_memfd_offset") &&
	    !get_u64(req, "guest_memfd_offset", &offset, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	if (!ensure_vm())
		return;
	if (ref && !gmem_ref_fd(ref, &fd, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	ret = set_region2(vm_fd, slot, flags, gpa, size, uaddr, offset, fd);
	if (!ret && !shadow_set(slot, size >> PAGE_SHIFT))
		fprintf(stderr, "kvm-sut: out of memory for the slot shadow\n");
	if (!ret)
		vw_note_region(slot, flags, gpa, size, uaddr);
	answer_ioctl(ret);
}

static void do_set_memory_attributes(const struct request *req)
{
	struct ms_kvm_memory_attributes attrs;
	char err[256];

	if (!get_u64(req, "address", &attrs.address, err, sizeof(err)) ||
	    !get_u64(req, "size", &attrs.size, err, sizeof(err)) ||
	    !get_u64(req, "attributes", &attrs.attributes, err, sizeof(err)) ||
	    !get_u64(req, "flags", &attrs.flags, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	if (!ensure_vm())
		return;
	answer_ioctl(ioctl(vm_fd, MS_KVM_SET_MEMORY_ATTRIBUTES, &attrs) ? errno : 0);
}

static const struct { const char *name; long cap; } cap_names[] = {
	{ "USER_MEMORY", MS_KVM_CAP_USER_MEMORY },
	{ "NR_MEMSLOTS", MS_KVM_CAP_NR_MEMSLOTS },
	{ "READONLY_MEM", MS_KVM_CAP_READONLY_MEM },
	{ "MULTI_ADDRESS_SPACE", MS_KVM_CAP_MULTI_ADDRESS_SPACE },
	{ "MANUAL_DIRTY_LOG_PROTECT2", MS_KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 },
	{ "DIRTY_LOG_RING", MS_KVM_CAP_DIRTY_LOG_RING },
	{ "DIRTY_LOG_RING_ACQ_REL", MS_KVM_CAP_DIRTY_LOG_RING_ACQ_REL },
	{ "USER_MEMORY2", MS_KVM_CAP_USER_MEMORY2 },
	{ "MEMORY_ATTRIBUTES", MS_KVM_CAP_MEMORY_ATTRIBUTES },
	{ "GUEST_MEMFD", MS_KVM_CAP_GUEST_MEMFD },
	{ "VM_TYPES", MS_KVM_CAP_VM_TYPES },
	{ "GUEST_MEMFD_FLAGS", MS_KVM_CAP_GUEST_MEMFD_FLAGS },
};

static void do_check_extension(const struct request *req)
{
	const struct field *cap = find_field(req, "cap");
	const struct field *fdf = find_field(req, "fd");
	long nr = -1;
	int fd, r;

	if (!cap || cap->type != V_STRING) {
		answer_error("field \"cap\" must be a capability name (a string)");
		return;
	}
	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
		if (!strcmp(cap_names[i].name, cap->text))
			nr = cap_names[i].cap;
	if (nr < 0) {
		answer_errorf("unknown capability \"%.64s\"", cap->text);
		return;
	}
	if (!fdf || fdf->type != V_STRING ||
	    (strcmp(fdf->text, "vm") && strcmp(fdf->text, "system"))) {
		answer_error("field \"fd\" must be \"vm\" or \"system\"");
		return;
	}
	if (!strcmp(fdf->text, "vm")) {
		if (!ensure_vm())
			return;
		fd = vm_fd;
	} else {
		fd = kvm_fd;
	}
	r = ioctl(fd, KVM_CHECK_EXTENSION, nr);
	if (r < 0) {
		answer_errorf("KVM_CHECK_EXTENSION(%ld) failed: %s", nr, strerror(errno));
		return;
	}
	printf("{\"value\":%d}", r);
	end_answer();
}

static void do_set_region(const struct request *req)
{
	u64 gpa, size, uaddr;
	u32 slot, flags;
	char err[256];
	int ret;

	if (!get_u32(req, "slot", &slot, err, sizeof(err)) ||
	    !get_u32(req, "flags", &flags, err, sizeof(err)) ||
	    !get_u64(req, "guest_phys_addr", &gpa, err, sizeof(err)) ||
	    !get_u64(req, "memory_size", &size, err, sizeof(err)) ||
	    !get_u64(req, "userspace_addr", &uaddr, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	if (!ensure_vm())
		return;

	ret = set_region(vm_fd, slot, flags, gpa, size, uaddr);
	if (!ret && !shadow_set(slot, size >> PAGE_SHIFT))
		fprintf(stderr, "kvm-sut: out of memory for the slot shadow\n");
	if (!ret)
		vw_note_region(slot, flags, gpa, size, uaddr);
	answer_ioctl(ret);
}

/* A buffer big enough for the dirty bitmap of slot, or NULL. */
static void *bitmap_for(u32 slot)
{
	u64 npages = shadow_get(slot);
	size_t len;

	if (!npages || npages > (1ULL << 31)) {
		if (!big_bitmap) {
			big_bitmap = mmap(NULL, MAX_BITMAP_BYTES, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (big_bitmap == MAP_FAILED)
				big_bitmap = NULL;
		}
		return big_bitmap;
	}
	len = (size_t)((npages + 63) / 64 * 8);	/* ALIGN(npages, 64) / 8 */
	if (len > small_bitmap_len) {
		void *p = realloc(small_bitmap, len);

		if (!p)
			return NULL;
		small_bitmap = p;
		small_bitmap_len = len;
	}
	return small_bitmap;
}

static void do_get_dirty_log(const struct request *req)
{
	struct kvm_dirty_log log = { 0 };
	char err[256];
	u32 slot;

	if (!get_u32(req, "slot", &slot, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	if (!ensure_vm())
		return;
	log.slot = slot;
	log.dirty_bitmap = bitmap_for(slot);
	if (!log.dirty_bitmap) {
		answer_errorf("cannot allocate a dirty bitmap buffer: %s", strerror(errno));
		return;
	}
	vw_answer_dirty_log(ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log) ? errno : 0, log.dirty_bitmap,
			    shadow_get(slot));
}

static void handle_line(const char *line, char *arena)
{
	struct request req;
	const struct field *op;
	char err[256];

	if (!parse_request(line, arena, &req, err, sizeof(err))) {
		answer_error(err);
		return;
	}
	op = find_field(&req, "op");
	if (!op) {
		answer_error("missing field \"op\"");
		return;
	}
	if (op->type != V_STRING) {
		answer_errorf("field \"op\" must be a string, not %s", type_names[op->type]);
		return;
	}
	if (!strcmp(op->text, "hello"))
		do_hello(&req);
	else if (!strcmp(op->text, "reset"))
		do_reset(&req);
	else if (!strcmp(op->text, "set_user_memory_region2") && profile.user_memory2)
		do_set_region2(&req);
	else if (!strcmp(op->text, "create_guest_memfd") && profile.guest_memfd)
		do_create_guest_memfd(&req);
	else if (!strcmp(op->text, "set_memory_attributes") && profile.memory_attributes)
		do_set_memory_attributes(&req);
	else if (!strcmp(op->text, "check_extension"))
		do_check_extension(&req);
	else if (!strcmp(op->text, "set_user_memory_region"))
		do_set_region(&req);
	else if (!strcmp(op->text, "get_dirty_log"))
		do_get_dirty_log(&req);
	else if (vw_dispatch(op->text, &req))
		;
	else if (dr_dispatch(op->text))
		;
	else
		answer_errorf("unknown op \"%.64s\"", op->text);
}

static void open_kvm(void)
{
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		int err = errno;

		if (err == ENOENT)
			fprintf(stderr, "memslot-oracle: /dev/kvm does not exist; "
				"load the kvm module (modprobe kvm_intel or kvm_amd) "
				"or run on a host with KVM\n");
		else if (err == EACCES || err == EPERM)
			fprintf(stderr, "memslot-oracle: /dev/kvm: permission denied; "
				"run as root or add your user to the kvm group\n");
		else
			fprintf(stderr, "memslot-oracle: /dev/kvm: %s; "
				"check that KVM is available on this host\n", strerror(err));
		exit(2);
	}
	if (ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		fprintf(stderr, "memslot-oracle: /dev/kvm: unexpected KVM API version; "
			"this driver needs API version %d\n", KVM_API_VERSION);
		exit(2);
	}
}

int main(void)
{
	char *line = NULL, *arena = NULL;
	size_t cap = 0, arena_len = 0;
	ssize_t len;

	signal(SIGPIPE, SIG_IGN);
	open_kvm();
	if (uname(&uts))
		memset(&uts, 0, sizeof(uts));

	while ((len = getline(&line, &cap, stdin)) >= 0) {
		if ((size_t)len + 1 > arena_len) {
			free(arena);
			arena_len = 2 * ((size_t)len + 1);
			arena = malloc(arena_len);
			if (!arena) {
				fprintf(stderr, "kvm-sut: out of memory\n");
				return 1;
			}
		}
		if (memchr(line, '\0', (size_t)len)) {
			answer_error("request line contains a NUL byte");
			continue;
		}
		handle_line(line, arena);
	}
	free(line);
	free(arena);
	free(small_bitmap);
	shadow_clear();
	return 0;
}
