/*
 * containerd-shim-stratus-v2: parse the command line containerd gives every v2 shim and run
 * the action: start (print the shim's address), delete (clean up after a dead shim), or,
 * with no action, serve (the process start forks). Errors are one line on stderr naming the
 * flag or file at fault; containerd shows that line to the user.
 */
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "shim.h"

int main(int argc, char **argv)
{
	struct shim_options opts;
	struct error err = { 0 };
	char self[PATH_MAX];
	ssize_t n;
	int r;

	r = shim_flags_parse(argc, argv, &opts, &err);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", SHIM_NAME, err.msg);
		return 2;
	}
	if (opts.version) {
		printf("%s:\n  Version:  %s\n", SHIM_NAME, SHIM_VERSION);
		return 0;
	}
	switch (opts.action) {
	case SHIM_ACTION_START:
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0) {
			perror(SHIM_NAME ": /proc/self/exe");
			return 1;
		}
		self[n] = '\0';
		r = shim_start(&opts, self, &err);
		break;
	case SHIM_ACTION_DELETE:
		r = shim_delete(&opts, &err);
		break;
	case SHIM_ACTION_SERVE:
	default:
		r = shim_serve(&opts, &err);
		break;
	}
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", SHIM_NAME, err.msg[0] ? err.msg : "failed");
		return 1;
	}
	return 0;
}
