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
 *     -> {"ret":0} | {"errno":"ENOENT"}    KVM_GET_DIRTY_LOG
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

typedef uint32_t u32;
typedef uint64_t u64;

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
	switch (err) {
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	case ENOMEM: return "ENOMEM";
	case EIO: return "EIO";
	case EFAULT: return "EFAULT";
	case ENXIO: return "ENXIO";
	case EBADF: return "EBADF";
	case EPERM: return "EPERM";
	}
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

static int create_vm(void)
{
	int fd;

	do
		fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	while (fd < 0 && errno == EINTR);
	return fd;
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

	profile = p;
	profile_done = true;
	return true;
}

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
	       "\"max_nr_pages_user_only\":%s,\"nr_memslot_pages_check\":%s},",
	       p->readonly_mem ? "true" : "false",
	       p->v1_flags_mask ? "true" : "false",
	       p->max_nr_pages_user_only ? "true" : "false",
	       p->nr_memslot_pages_check ? "true" : "false");
	fputs("\"ops\":[\"hello\",\"reset\",\"set_user_memory_region\",\"get_dirty_log\"]}",
	      stdout);
	end_answer();
}

static void do_reset(void)
{
	if (vm_fd >= 0)
		close(vm_fd);
	vm_fd = -1;
	shadow_clear();
	if (!ensure_vm())
		return;
	fputs("{\"ok\":true}", stdout);
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
	answer_ioctl(ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log) ? errno : 0);
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
		do_reset();
	else if (!strcmp(op->text, "set_user_memory_region"))
		do_set_region(&req);
	else if (!strcmp(op->text, "get_dirty_log"))
		do_get_dirty_log(&req);
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
