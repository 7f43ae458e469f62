/* A VMM slot manager talking to `memslot-oracle serve --socket PATH` where it would call /dev/kvm. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static FILE *in, *out;

/* KVM_SET_USER_MEMORY_REGION: returns the answer line, {"ret":0} or {"errno":"NAME"}. */
static const char *set_user_memory_region(unsigned slot, unsigned flags, unsigned long long gpa, unsigned long long size,
                                          unsigned long long uaddr) {
	static char line[4096];
	fprintf(out, "{\"op\":\"set_user_memory_region\",\"slot\":%u,\"flags\":%u,\"guest_phys_addr\":\"0x%llx\","
		     "\"memory_size\":\"0x%llx\",\"userspace_addr\":\"0x%llx\"}\n", slot, flags, gpa, size, uaddr);
	fflush(out);
	return fgets(line, sizeof line, in) ? line : "{\"error\":\"serve closed the connection\"}\n";
}

int main(int argc, char **argv) {
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (argc != 2 || fd < 0 || strlen(argv[1]) >= sizeof addr.sun_path) return 2;
	strcpy(addr.sun_path, argv[1]);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 2; }
	out = fdopen(fd, "w"), in = fdopen(dup(fd), "r");
	printf("create 0: %s", set_user_memory_region(0, 0, 0x100000, 0x200000, 0x7f0000000000ULL));
	printf("create 1 over 0: %s", set_user_memory_region(1, 0, 0x2ff000, 0x1000, 0x7f0000200000ULL));
	printf("delete 0: %s", set_user_memory_region(0, 0, 0x100000, 0, 0));
	return 0;
}
