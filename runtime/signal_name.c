/*
 * Signal names and numbers (see signal_name.h). The table is Linux's; real-time signals are
 * SIGRTMIN+N / SIGRTMAX-N relative to the C library's SIGRTMIN and SIGRTMAX, as kill(1) does.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "signal_name.h"

static const struct {
	const char *name;
	int number;
} signals[] = {
	{ "HUP", SIGHUP },	 { "INT", SIGINT },   { "QUIT", SIGQUIT },     { "ILL", SIGILL },
	{ "TRAP", SIGTRAP },	 { "ABRT", SIGABRT }, { "IOT", SIGIOT },       { "BUS", SIGBUS },
	{ "FPE", SIGFPE },	 { "KILL", SIGKILL }, { "USR1", SIGUSR1 },     { "SEGV", SIGSEGV },
	{ "USR2", SIGUSR2 },	 { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },     { "TERM", SIGTERM },
	{ "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT },     { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP },	 { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },     { "URG", SIGURG },
	{ "XCPU", SIGXCPU },	 { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
	{ "WINCH", SIGWINCH },	 { "IO", SIGIO },     { "POLL", SIGPOLL },     { "PWR", SIGPWR },
	{ "SYS", SIGSYS },
};

static int parse_number(const char *s, long max, long *out)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_realtime(const char *name, int *signal)
{
	long off = 0;

	if (!strncasecmp(name, "RTMIN", 5)) {
		if (name[5] && (name[5] != '+' || parse_number(name + 6, 64, &off) < 0))
			return -EINVAL;
		*signal = SIGRTMIN + (int)off;
	} else if (!strncasecmp(name, "RTMAX", 5)) {
		if (name[5] && (name[5] != '-' || parse_number(name + 6, 64, &off) < 0))
			return -EINVAL;
		*signal = SIGRTMAX - (int)off;
	} else {
		return -EINVAL;
	}
	return *signal >= SIGRTMIN && *signal <= SIGRTMAX ? 0 : -EINVAL;
}

int signal_parse(const char *text, int *signal, struct error *err)
{
	const char *name = text;
	long number;

	if (parse_number(text, SIGRTMAX, &number) == 0) {
		if (number < 1)
			return error_set(err, -EINVAL, "signal: %s: out of range 1..%d", text,
					 SIGRTMAX);
		*signal = (int)number;
		return 0;
	}
	if (!strncasecmp(name, "SIG", 3))
		name += 3;
	for (unsigned int i = 0; i < ARRAY_SIZE(signals); i++) {
		if (!strcasecmp(name, signals[i].name)) {
			*signal = signals[i].number;
			return 0;
		}
	}
	if (parse_realtime(name, signal) == 0)
		return 0;
	return error_set(err, -EINVAL, "signal: unknown signal \"%s\"", text);
}
