/*
 * The static agent has no NSS: glibc's getpwuid() and initgroups() would dlopen the NSS
 * modules of whatever root the process is in, and a container rootfs (or the initramfs) has
 * no such libraries. Nothing of ours calls them; libcap-ng's capng_change_id(), which the agent
 * never calls (it sets ids with setresuid/setgroups, agent_setup.c), references them from the
 * same object file as the functions we use. The static link wraps those two references
 * (-Wl,--wrap) to these failing stand-ins, so no NSS code is in the binary at all and the
 * linker's "requires at runtime the shared libraries" warning is gone. HOME comes from the
 * container's /etc/passwd, parsed by agent_passwd.c.
 */
#include <errno.h>
#include <pwd.h>
#include <stddef.h>
#include <sys/types.h>

struct passwd *__wrap_getpwuid(uid_t uid);
int __wrap_initgroups(const char *user, gid_t group);

struct passwd *__wrap_getpwuid(uid_t uid)
{
	(void)uid;
	errno = ENOSYS;
	return NULL;
}

int __wrap_initgroups(const char *user, gid_t group)
{
	(void)user;
	(void)group;
	errno = ENOSYS;
	return -1;
}
