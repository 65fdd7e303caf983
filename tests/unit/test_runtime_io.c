/*
 * libstratus's I/O helpers without a VM: the stdio relay (1 MiB through pipes and a socket in
 * order, the half-close at end of input, a reader that went away), the pty pair and its
 * master sent over --console-socket (runc's protocol), the QMP client against a fake QMP
 * server (greeting, negotiation, events skipped, an error reply's desc), and the search for
 * the guest kernel and initramfs.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "console.h"
#include "guest_assets.h"
#include "qmp_client.h"
#include "relay.h"

#define BIG (1 << 20)

static void *writer(void *arg)
{
	int fd = *(int *)arg;
	unsigned char *buf = malloc(BIG);

	for (int i = 0; i < BIG; i++)
		buf[i] = (unsigned char)(i * 7 + i / 251);
	for (size_t off = 0; off < BIG;) {
		ssize_t n = write(fd, buf + off, BIG - off);

		assert_true(n > 0);
		off += (size_t)n;
	}
	close(fd);
	free(buf);
	return NULL;
}

static void test_relay_order_and_half_close(void **state)
{
	int in[2], sock[2], out[2];
	struct relay relay;
	pthread_t t;
	unsigned char *got = malloc(BIG + 1);
	size_t have = 0;
	int p;

	(void)state;
	assert_int_equal(pipe(in), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sock), 0);
	assert_int_equal(pipe(out), 0);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(sock[0], F_SETFL, O_NONBLOCK); /* as agent_stream_open's streams are */
	relay_init(&relay);
	/* pipe -> socket (half-closed at the end), as stdin goes to the agent */
	p = relay_add(&relay, in[0], sock[0], true);
	assert_int_equal(p, 0);
	pthread_create(&t, NULL, writer, &in[1]);
	while (!relay_pipe_done(&relay, p) || have < BIG) {
		ssize_t n;

		assert_int_equal(relay_step(&relay, NULL, 0, 100), 0);
		while ((n = recv(sock[1], got + have, BIG + 1 - have, MSG_DONTWAIT)) > 0)
			have += (size_t)n;
		if (relay_pipe_done(&relay, p) && n == 0)
			break;
	}
	pthread_join(t, NULL);
	assert_int_equal(have, BIG);
	for (int i = 0; i < BIG; i++)
		assert_int_equal(got[i], (unsigned char)(i * 7 + i / 251));
	/* the half-close reached the other end: EOF there, the socket still writable back */
	assert_int_equal(recv(sock[1], got, 1, 0), 0);
	assert_int_equal(send(sock[1], "x", 1, 0), 1);
	free(got);
	close(in[0]);
	close(sock[0]);
	close(sock[1]);
	close(out[0]);
	close(out[1]);
}

static void test_relay_reader_gone(void **state)
{
	int src[2], dst[2], extra_pipe[2];
	struct relay relay;
	struct pollfd extra;
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	int p;

	(void)state;
	assert_int_equal(pipe(src), 0);
	assert_int_equal(pipe(dst), 0);
	assert_int_equal(pipe(extra_pipe), 0);
	relay_init(&relay);
	p = relay_add(&relay, src[0], dst[1], false);
	close(dst[0]); /* nobody reads the output */
	assert_int_equal(write(src[1], "data", 4), 4);
	for (int i = 0; i < 10 && !relay_pipe_done(&relay, p); i++)
		assert_int_equal(relay_step(&relay, NULL, 0, 100), 0);
	assert_true(relay_pipe_done(&relay, p));
	/* the caller's own fds are polled too */
	extra = (struct pollfd){ .fd = extra_pipe[0], .events = POLLIN };
	assert_int_equal(write(extra_pipe[1], "e", 1), 1);
	assert_int_equal(relay_step(&relay, &extra, 1, 1000), 0);
	assert_true(extra.revents & POLLIN);
	for (int i = 0; i < RELAY_MAX_PIPES - 1; i++)
		assert_true(relay_add(&relay, src[0], dst[1], false) >= 0);
	assert_int_equal(relay_add(&relay, src[0], dst[1], false), -ENOSPC);
	signal(SIGPIPE, old);
	close(src[0]);
	close(src[1]);
	close(dst[1]);
	close(extra_pipe[0]);
	close(extra_pipe[1]);
}

static void test_console_socket(void **state)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/stratus-console-XXXXXX", data[64], ctrl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { data, sizeof(data) - 1 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = ctrl,
			      .msg_controllen = sizeof(ctrl) };
	struct error err = { 0 };
	int master, slave, listener, conn, got_fd;
	uint32_t rows, cols;
	ssize_t n;
	char buf[16];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/sock", dir);
	assert_int_equal(console_open_pty(24, 80, false, &master, &slave, &err), 0);
	assert_int_equal(console_get_size(slave, &rows, &cols), 0);
	assert_int_equal(rows, 24);
	assert_int_equal(cols, 80);
	/* raw: no echo, no CR translation */
	assert_int_equal(write(master, "a\n", 2), 2);
	assert_int_equal(read(slave, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "a\n", 2);
	listener = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(listener, 1), 0);
	assert_int_equal(console_send_fd(addr.sun_path, master, &err), 0);
	conn = accept(listener, NULL, NULL);
	n = recvmsg(conn, &msg, 0);
	assert_true(n > 0);
	data[n] = '\0';
	assert_non_null(strstr(data, "/dev/pts/"));
	memcpy(&got_fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(int));
	/* the received master is the same terminal */
	assert_int_equal(write(got_fd, "zz", 2), 2);
	assert_int_equal(read(slave, buf, sizeof(buf)), 2);
	assert_int_equal(console_send_fd("/nonexistent/sock", master, &err), -ENOENT);
	error_clear(&err);
	close(got_fd);
	close(conn);
	close(listener);
	close(master);
	close(slave);
	unlink(addr.sun_path);
	rmdir(dir);
}

/* A fake QMP server in a child: greeting, then answers from its script. */
static pid_t qmp_fake(const char *path, const char *const *replies)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int listener = socket(AF_UNIX, SOCK_STREAM, 0);
	pid_t pid;

	strcpy(addr.sun_path, path);
	assert_int_equal(bind(listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(listener, 1), 0);
	pid = fork();
	if (pid == 0) {
		int c = accept(listener, NULL, NULL);
		char line[256];
		FILE *in = fdopen(c, "r");

		dprintf(c, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
		for (int i = 0; replies[i] && fgets(line, sizeof(line), in); i++)
			dprintf(c, "%s\r\n", replies[i]);
		_exit(0);
	}
	close(listener);
	return pid;
}

static void test_qmp_client(void **state)
{
	char dir[] = "/tmp/stratus-qmp-XXXXXX", path[64];
	const char *const ok[] = { "{\"return\": {}}",
				   "{\"event\": \"STOP\", \"timestamp\": {}}\r\n{\"return\": {}}",
				   NULL };
	const char *const refused[] = { "{\"return\": {}}",
					"{\"error\": {\"class\": \"GenericError\", \"desc\": "
					"\"the VM is not running\"}}",
					NULL };
	struct error err = { 0 };
	pid_t pid;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/qmp.sock", dir);
	pid = qmp_fake(path, ok);
	assert_int_equal(qmp_client_command(path, "stop", 5000, &err), 0);
	waitpid(pid, NULL, 0);
	unlink(path);
	pid = qmp_fake(path, refused);
	assert_int_equal(qmp_client_command(path, "cont", 5000, &err), -EIO);
	assert_string_equal(err.msg, "qmp: cont: the VM is not running");
	waitpid(pid, NULL, 0);
	unlink(path);
	error_clear(&err);
	assert_int_equal(qmp_client_command(path, "stop", 5000, &err), -ENOENT);
	rmdir(dir);
}

/* A fake QMP server that answers the command after qmp_capabilities with "return" only if its
 * line is exactly want (an "unexpected" error otherwise). */
static pid_t qmp_fake_expect(const char *path, const char *want)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int listener = socket(AF_UNIX, SOCK_STREAM, 0);
	pid_t pid;

	strcpy(addr.sun_path, path);
	assert_int_equal(bind(listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(listener, 1), 0);
	pid = fork();
	if (pid == 0) {
		int c = accept(listener, NULL, NULL);
		char line[512];
		FILE *in = fdopen(c, "r");

		dprintf(c, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
		if (fgets(line, sizeof(line), in))
			dprintf(c, "{\"return\": {}}\r\n");
		if (fgets(line, sizeof(line), in))
			dprintf(c, "%s\r\n",
				!strcmp(line, want) ? "{\"return\": {}}"
						    : "{\"error\": {\"desc\": \"unexpected\"}}");
		_exit(0);
	}
	close(listener);
	return pid;
}

/* A command with arguments (the template builder's migrate) goes out as one JSON line. */
static void test_qmp_client_arguments(void **state)
{
	char dir[] = "/tmp/stratus-qmp-XXXXXX", path[64];
	struct error err = { 0 };
	pid_t pid;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/qmp.sock", dir);
	pid = qmp_fake_expect(
		path, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"file:/t/s\"}}\r\n");
	assert_int_equal(qmp_client_execute(path, "migrate", "{\"uri\":\"file:/t/s\"}", 5000, &err),
			 0);
	waitpid(pid, NULL, 0);
	unlink(path);
	pid = qmp_fake_expect(path, "{\"execute\":\"migrate\",\"arguments\":{}}\r\n");
	assert_int_equal(qmp_client_execute(path, "migrate", "{\"uri\":\"x\"}", 5000, &err), -EIO);
	assert_string_equal(err.msg, "qmp: migrate: unexpected");
	waitpid(pid, NULL, 0);
	unlink(path);
	rmdir(dir);
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	assert_true(fd >= 0);
	close(fd);
}

static void test_guest_assets(void **state)
{
	char dir[] = "/tmp/stratus-assets-XXXXXX", path[256], bin[96], share[128];
	struct guest_assets a;
	struct error err = { 0 };

	(void)state;
	assert_non_null(mkdtemp(dir));
	unsetenv(GUEST_KERNEL_ENV);
	unsetenv(GUEST_INITRAMFS_ENV);
	snprintf(bin, sizeof(bin), "%s/bin", dir);
	mkdir(bin, 0755);
	/* nothing anywhere: one line naming the variable and where we looked */
	assert_int_equal(guest_assets_find(bin, &a, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "guest kernel not found: set STRATUS_KERNEL"));
	error_clear(&err);
	/* the install prefix: <prefix>/share/stratus */
	snprintf(share, sizeof(share), "%s/share", dir);
	mkdir(share, 0755);
	snprintf(share, sizeof(share), "%s/share/stratus", dir);
	mkdir(share, 0755);
	snprintf(path, sizeof(path), "%s/vmlinux", share);
	touch(path);
	snprintf(path, sizeof(path), "%s/stratus-initramfs.cpio", share);
	touch(path);
	assert_int_equal(guest_assets_find(bin, &a, &err), 0);
	assert_non_null(strstr(a.kernel, "/share/stratus/vmlinux"));
	guest_assets_destroy(&a);
	/* next to the binary wins over the prefix */
	snprintf(path, sizeof(path), "%s/vmlinux", bin);
	touch(path);
	assert_int_equal(guest_assets_find(bin, &a, &err), 0);
	assert_string_equal(a.kernel, path);
	assert_non_null(strstr(a.initramfs, "/share/stratus/stratus-initramfs.cpio"));
	guest_assets_destroy(&a);
	/* the environment wins, and a variable naming a missing file is an error */
	setenv(GUEST_INITRAMFS_ENV, path, 1);
	assert_int_equal(guest_assets_find(bin, &a, &err), 0);
	assert_string_equal(a.initramfs, path);
	guest_assets_destroy(&a);
	setenv(GUEST_KERNEL_ENV, "/nonexistent/vmlinux", 1);
	assert_int_equal(guest_assets_find(bin, &a, &err), -ENOENT);
	assert_string_equal(err.msg,
			    "STRATUS_KERNEL: guest kernel not found: /nonexistent/vmlinux");
	unsetenv(GUEST_KERNEL_ENV);
	unsetenv(GUEST_INITRAMFS_ENV);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_order_and_half_close),
		cmocka_unit_test(test_relay_reader_gone),
		cmocka_unit_test(test_console_socket),
		cmocka_unit_test(test_qmp_client),
		cmocka_unit_test(test_qmp_client_arguments),
		cmocka_unit_test(test_guest_assets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
