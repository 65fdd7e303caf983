/*
 * shim_options.c: containerd.runc.v1.Options as containerd 1.6 hands them to the shim, in an
 * Any on `start`'s stdin and in Create's options: hand-encoded bytes with containerd's field
 * numbers (ShimCgroup 3, SystemdCgroup 9), other option types ignored, damaged bytes refused,
 * and stdin read from a pipe, /dev/null and a file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shim_options.h"

/* Options{shim_cgroup: "/pod", io_uid: 7, systemd_cgroup: true, criu_image_path (10): "x"} */
static const uint8_t options_bytes[] = { 0x1a, 0x04, '/',  'p',	 'o',  'd', 0x20,
					 0x07, 0x48, 0x01, 0x52, 0x01, 'x' };

/* Any{type_url, value: options_bytes} */
static size_t any_bytes(const char *type_url, const uint8_t *value, size_t vlen, uint8_t *out)
{
	size_t n = 0, ul = strlen(type_url);

	out[n++] = 0x0a;
	out[n++] = (uint8_t)ul;
	memcpy(out + n, type_url, ul);
	n += ul;
	out[n++] = 0x12;
	out[n++] = (uint8_t)vlen;
	memcpy(out + n, value, vlen);
	return n + vlen;
}

static void test_from_any(void **state)
{
	struct shim_runc_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(shim_runc_options_from_any("options", "containerd.runc.v1.Options",
						    options_bytes, sizeof(options_bytes), &o, &err),
			 0);
	assert_true(o.present);
	assert_true(o.systemd_cgroup);
	assert_string_equal(o.shim_cgroup, "/pod");
	shim_runc_options_clear(&o);
	/* the type.googleapis.com/ form; an empty Options: present, nothing set */
	assert_int_equal(shim_runc_options_from_any(
				 "options", "type.googleapis.com/containerd.runc.v1.Options",
				 (const uint8_t *)"", 0, &o, &err),
			 0);
	assert_true(o.present);
	assert_false(o.systemd_cgroup);
	assert_null(o.shim_cgroup);
	/* CRI's runtimeoptions for a non-runc runtime type, or none: not ours */
	assert_int_equal(shim_runc_options_from_any("options", "runtimeoptions.v1.Options",
						    options_bytes, sizeof(options_bytes), &o, &err),
			 0);
	assert_false(o.present);
	assert_int_equal(shim_runc_options_from_any("options", "", NULL, 0, &o, &err), 0);
	assert_false(o.present);
	assert_int_equal(shim_runc_options_from_any("options", "x.containerd.runc.v1.Options",
						    options_bytes, sizeof(options_bytes), &o, &err),
			 0);
	assert_false(o.present);
	/* damaged: a length running past the end */
	assert_int_equal(shim_runc_options_from_any("options", "containerd.runc.v1.Options",
						    options_bytes, 4, &o, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "options: cannot decode containerd.runc.v1.Options");
	assert_false(o.present);
}

static void test_decode_stdin_bytes(void **state)
{
	struct shim_runc_options o;
	struct error err = { 0 };
	uint8_t buf[128];
	size_t n;

	(void)state;
	n = any_bytes("containerd.runc.v1.Options", options_bytes, sizeof(options_bytes), buf);
	assert_int_equal(shim_runc_options_decode(buf, n, &o, &err), 0);
	assert_true(o.present);
	assert_string_equal(o.shim_cgroup, "/pod");
	shim_runc_options_clear(&o);
	assert_int_equal(shim_runc_options_decode(buf, 0, &o, &err), 0);
	assert_false(o.present);
	assert_int_equal(shim_runc_options_decode(buf, n - 3, &o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "stdin: "));
}

static void test_read(void **state)
{
	char path[] = "/tmp/test_shim_options.XXXXXX";
	struct shim_runc_options o;
	struct error err = { 0 };
	uint8_t buf[128];
	int p[2], fd;
	size_t n;

	(void)state;
	n = any_bytes("containerd.runc.v1.Options", options_bytes, sizeof(options_bytes), buf);
	/* a pipe, as containerd's: written, then closed */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], buf, n), (ssize_t)n);
	close(p[1]);
	assert_int_equal(shim_runc_options_read(p[0], &o, &err), 0);
	close(p[0]);
	assert_true(o.present && o.systemd_cgroup);
	assert_string_equal(o.shim_cgroup, "/pod");
	shim_runc_options_clear(&o);
	/* no options: /dev/null, a closed fd */
	fd = open("/dev/null", O_RDONLY);
	assert_int_equal(shim_runc_options_read(fd, &o, &err), 0);
	assert_false(o.present);
	close(fd);
	assert_int_equal(shim_runc_options_read(fd, &o, &err), 0);
	assert_false(o.present);
	/* a file of garbage: an error */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\xff\xff\xff", 3), 3);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(shim_runc_options_read(fd, &o, &err), -EINVAL);
	assert_string_equal(err.msg, "stdin: the runtime options are not a google.protobuf.Any");
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_any),
		cmocka_unit_test(test_decode_stdin_bytes),
		cmocka_unit_test(test_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
