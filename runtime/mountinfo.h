/*
 * /proc/self/mountinfo fields: the kernel escapes space, tab, newline and backslash in them
 * as \ooo (octal). Shared by the pod share's mount checks (pod_mount.c) and the host cgroup
 * hierarchies (host_cgroup_layout.c).
 */
#ifndef STRATUS_RUNTIME_MOUNTINFO_H
#define STRATUS_RUNTIME_MOUNTINFO_H

/* Undo mountinfo's \ooo escapes in place. */
static inline void mountinfo_unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

#endif
