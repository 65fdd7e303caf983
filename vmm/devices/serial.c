/*
 * 16550A UART on COM1: the guest console. Output goes to the configured fd as the guest
 * writes it; input is read by the main loop into a 64-byte receive FIFO. With a console
 * socket, one client at a time gets both directions (a new client replaces the old one);
 * output with no client connected, or that the client does not read, is dropped rather
 * than allowed to stall the vCPU. The interrupt
 * line follows the IIR (level raised while any enabled interrupt is pending), as the
 * Linux 8250 driver expects (16550 datasheet, register descriptions).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

#include "../device.h"
#include "../log.h"
#include "../snapshot.h"
#include "../vm.h"
#include "layout.h"

#define UART_RX	 0 /* receive buffer (read), transmit holding (write); DLL with DLAB */
#define UART_IER 1 /* interrupt enable; DLM with DLAB */
#define UART_IIR 2 /* interrupt identification (read), FIFO control (write) */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_RDI	  0x01
#define UART_IER_THRI	  0x02
#define UART_IIR_NO_INT	  0x01
#define UART_IIR_THRI	  0x02
#define UART_IIR_RDI	  0x04
#define UART_IIR_FIFO	  0xc0
#define UART_FCR_ENABLE	  0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_LCR_DLAB	  0x80
#define UART_MCR_LOOP	  0x10
#define UART_LSR_DR	  0x01
#define UART_LSR_THRE	  0x20
#define UART_LSR_TEMT	  0x40
#define UART_MSR_DCD	  0x80
#define UART_MSR_DSR	  0x20
#define UART_MSR_CTS	  0x10

#define SERIAL_FIFO 64

struct serial {
	struct vm *vm;
	pthread_mutex_t lock;
	int out_fd;
	int in_fd;
	int drained_fd; /* eventfd: the guest emptied a full FIFO, resume reading input */
	int listen_fd;	/* console socket, -1 if none */
	char *socket_path;
	bool in_paused;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thr_pending; /* a "transmitter empty" interrupt is owed */
	bool irq_level;
	uint8_t rx[SERIAL_FIFO];
	unsigned int rx_head, rx_len;
	struct termios saved_tty;
	bool tty_raw;
};

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0;

	if ((s->ier & UART_IER_RDI) && s->rx_len)
		return fifo | UART_IIR_RDI;
	if ((s->ier & UART_IER_THRI) && s->thr_pending)
		return fifo | UART_IIR_THRI;
	return fifo | UART_IIR_NO_INT;
}

static void serial_update_irq(struct serial *s)
{
	bool level = !(serial_iir(s) & UART_IIR_NO_INT);

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	vm_irq_line(s->vm, X86_COM1_IRQ, level);
}

/* Called with the lock held. */
static void serial_drop_client(struct serial *s)
{
	if (s->in_fd < 0)
		return;
	event_loop_remove(s->vm->loop, s->in_fd);
	close(s->in_fd);
	s->in_fd = s->out_fd = -1;
	s->in_paused = false;
}

static void serial_transmit(struct serial *s, uint8_t byte)
{
	if (s->mcr & UART_MCR_LOOP) {
		if (s->rx_len < SERIAL_FIFO)
			s->rx[(s->rx_head + s->rx_len++) % SERIAL_FIFO] = byte;
	} else if (s->out_fd >= 0 && s->listen_fd >= 0) {
		/* A socket client: never SIGPIPE, never block the vCPU on a slow reader. */
		if (send(s->out_fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
			serial_drop_client(s);
	} else if (s->out_fd >= 0 && write(s->out_fd, &byte, 1) < 0 && errno != EAGAIN) {
		log_once(LOG_WARN, "serial: console output failed: %s", strerror(errno));
	}
	s->thr_pending = true;
}

static uint8_t serial_receive(struct serial *s)
{
	uint8_t byte;
	uint64_t one = 1;

	if (!s->rx_len)
		return 0;
	byte = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_FIFO;
	if (s->rx_len-- == SERIAL_FIFO && s->in_paused && write(s->drained_fd, &one, 8) < 0)
		log_once(LOG_WARN, "serial: cannot wake the input reader");
	return byte;
}

static uint8_t serial_msr(const struct serial *s)
{
	uint8_t m = s->mcr;

	if (!(s->mcr & UART_MCR_LOOP))
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	/* Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
	return ((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) | ((m & 0x08) << 4);
}

static uint8_t serial_read(struct serial *s, unsigned int reg)
{
	uint8_t iir;

	switch (reg) {
	case UART_RX:
		return (s->lcr & UART_LCR_DLAB) ? s->dll : serial_receive(s);
	case UART_IER:
		return (s->lcr & UART_LCR_DLAB) ? s->dlm : s->ier;
	case UART_IIR:
		iir = serial_iir(s);
		if ((iir & 0x0f) == UART_IIR_THRI)
			s->thr_pending = false; /* reading the IIR acknowledges THRE */
		return iir;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return UART_LSR_THRE | UART_LSR_TEMT | (s->rx_len ? UART_LSR_DR : 0);
	case UART_MSR:
		return serial_msr(s);
	default:
		return s->scr;
	}
}

static void serial_write(struct serial *s, unsigned int reg, uint8_t value)
{
	switch (reg) {
	case UART_RX:
		if (s->lcr & UART_LCR_DLAB)
			s->dll = value;
		else
			serial_transmit(s, value);
		break;
	case UART_IER:
		if (s->lcr & UART_LCR_DLAB) {
			s->dlm = value;
			break;
		}
		/* Enabling THRI with the holding register empty raises it at once. */
		if ((value & UART_IER_THRI) && !(s->ier & UART_IER_THRI))
			s->thr_pending = true;
		s->ier = value & 0x0f;
		break;
	case UART_IIR:
		s->fcr = value & 0xc9;
		if (value & UART_FCR_CLEAR_RX)
			s->rx_len = 0;
		break;
	case UART_LCR:
		s->lcr = value;
		break;
	case UART_MCR:
		s->mcr = value & 0x1f;
		break;
	case UART_SCR:
		s->scr = value;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
}

static void serial_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;

	if (len != 1) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (is_write)
		serial_write(s, offset, data[0]);
	else
		data[0] = serial_read(s, offset);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_on_input(void *opaque, uint32_t events);

static void serial_on_connect(void *opaque, uint32_t events)
{
	struct serial *s = opaque;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	(void)events;
	if (fd < 0)
		return;
	pthread_mutex_lock(&s->lock);
	serial_drop_client(s);
	if (event_loop_add(s->vm->loop, fd, EPOLLIN, serial_on_input, s) < 0) {
		close(fd);
	} else {
		s->in_fd = s->out_fd = fd;
		log_debug("serial: console client connected");
	}
	pthread_mutex_unlock(&s->lock);
}

static int serial_listen(struct serial *s, const char *path, struct error *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(addr.sun_path))
		return error_set(err, -ENAMETOOLONG, "serial: socket path too long: %s", path);
	strcpy(addr.sun_path, path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0)
		return error_set_errno(err, -errno, "serial: socket");
	unlink(path); /* a stale socket from an earlier run */
	if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(s->listen_fd, 1) < 0)
		return error_set_errno(err, -errno, "serial: cannot listen on %s", path);
	s->socket_path = strdup(path);
	if (!s->socket_path)
		return error_set(err, -ENOMEM, "serial: out of memory");
	if (event_loop_add(s->vm->loop, s->listen_fd, EPOLLIN, serial_on_connect, s) < 0)
		return error_set_errno(err, -errno, "serial: cannot watch %s", path);
	return 0;
}

static void serial_on_input(void *opaque, uint32_t events)
{
	struct serial *s = opaque;
	uint8_t buf[SERIAL_FIFO];
	ssize_t n, i;

	pthread_mutex_lock(&s->lock);
	n = SERIAL_FIFO - s->rx_len;
	if (n > 0)
		n = read(s->in_fd, buf, n);
	for (i = 0; i < n; i++)
		s->rx[(s->rx_head + s->rx_len++) % SERIAL_FIFO] = buf[i];
	if (s->listen_fd >= 0 &&
	    (n < 0 ? errno != EAGAIN && errno != EINTR : (events & EPOLLHUP))) {
		serial_drop_client(s); /* the client is gone both ways */
	} else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		/* End of input; a socket client that only shut down writing still gets output. */
		event_loop_remove(s->vm->loop, s->in_fd);
	} else if (s->rx_len == SERIAL_FIFO) {
		s->in_paused = true; /* wait for the guest to drain the FIFO */
		event_loop_modify(s->vm->loop, s->in_fd, 0);
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_on_drained(void *opaque, uint32_t events)
{
	struct serial *s = opaque;
	uint64_t count;

	(void)events;
	if (read(s->drained_fd, &count, sizeof(count)) < 0)
		return;
	pthread_mutex_lock(&s->lock);
	if (s->in_paused) {
		s->in_paused = false;
		event_loop_modify(s->vm->loop, s->in_fd, EPOLLIN);
	}
	pthread_mutex_unlock(&s->lock);
}

/* A terminal on stdin goes raw (keeping ^C for the VMM) so keys reach the guest at once. */
static void serial_tty_raw(struct serial *s)
{
	struct termios raw;

	if (!isatty(s->in_fd) || tcgetattr(s->in_fd, &s->saved_tty) < 0)
		return;
	raw = s->saved_tty;
	cfmakeraw(&raw);
	raw.c_lflag |= ISIG;
	raw.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(s->in_fd, TCSANOW, &raw) == 0)
		s->tty_raw = true;
}

static int serial_watch_drained(struct serial *s, struct error *err)
{
	s->drained_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->drained_fd < 0)
		return error_set_errno(err, -errno, "serial: eventfd");
	if (event_loop_add(s->vm->loop, s->drained_fd, EPOLLIN, serial_on_drained, s) < 0)
		return error_set_errno(err, -errno, "serial: cannot watch console input");
	return 0;
}

static int serial_watch_input(struct serial *s, struct error *err)
{
	int r;

	/* Regular files and /dev/null cannot be polled: no console input then. */
	r = event_loop_add(s->vm->loop, s->in_fd, EPOLLIN, serial_on_input, s);
	if (r == -EPERM) {
		s->in_fd = -1;
		return 0;
	}
	if (r < 0)
		return error_set_errno(err, r, "serial: cannot watch console input");
	r = serial_watch_drained(s, err);
	if (r < 0)
		return r;
	serial_tty_raw(s);
	return 0;
}

static const struct device_ops serial_device;

static int serial_init(struct vm *vm, struct error *err)
{
	struct serial *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return error_set(err, -ENOMEM, "serial: out of memory");
	s->vm = vm;
	s->out_fd = vm->config.serial_fd;
	s->in_fd = vm->config.serial_in_fd;
	s->drained_fd = s->listen_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	r = device_set_data(vm, &serial_device, s);
	if (r < 0) {
		free(s);
		return r;
	}
	if (vm->config.serial_socket) {
		s->in_fd = s->out_fd = -1;
		r = serial_listen(s, vm->config.serial_socket, err);
		if (r == 0)
			r = serial_watch_drained(s, err);
	} else if (s->in_fd >= 0) {
		r = serial_watch_input(s, err);
	}
	if (r < 0)
		return r;
	r = bus_register(&vm->pio_bus, X86_COM1_PORT, 8, serial_access, s, "serial");
	if (r < 0)
		return error_set_errno(err, r, "serial: port 0x%x", X86_COM1_PORT);
	return vm_cmdline_append(vm, "8250.nr_uarts=1");
}

static void serial_exit(struct vm *vm)
{
	struct serial *s = device_get_data(vm, &serial_device);

	if (!s)
		return;
	if (s->listen_fd >= 0) {
		serial_drop_client(s);
		event_loop_remove(vm->loop, s->listen_fd);
		close(s->listen_fd);
	}
	if (s->socket_path) {
		unlink(s->socket_path);
		free(s->socket_path);
	}
	if (s->in_fd >= 0)
		event_loop_remove(vm->loop, s->in_fd);
	if (s->drained_fd >= 0) {
		event_loop_remove(vm->loop, s->drained_fd);
		close(s->drained_fd);
	}
	if (s->tty_raw)
		tcsetattr(s->in_fd, TCSANOW, &s->saved_tty);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Snapshots: the registers and the receive FIFO (fixed layout). */
struct serial_state {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr, thr_pending;
	uint32_t rx_head, rx_len;
	uint8_t rx[SERIAL_FIFO];
};

_Static_assert(sizeof(struct serial_state) == 16 + SERIAL_FIFO,
	       "struct serial_state is part of the snapshot format");

static int serial_save(struct vm *vm, struct snapshot_writer *w, struct error *err)
{
	struct serial *s = device_get_data(vm, &serial_device);
	struct serial_state st = { 0 };

	pthread_mutex_lock(&s->lock);
	st.ier = s->ier;
	st.lcr = s->lcr;
	st.mcr = s->mcr;
	st.scr = s->scr;
	st.dll = s->dll;
	st.dlm = s->dlm;
	st.fcr = s->fcr;
	st.thr_pending = s->thr_pending;
	st.rx_head = s->rx_head;
	st.rx_len = s->rx_len;
	memcpy(st.rx, s->rx, sizeof(st.rx));
	pthread_mutex_unlock(&s->lock);
	if (snapshot_put(w, "serial", &st, sizeof(st)) < 0)
		return error_set(err, w->error, "serial: cannot save");
	return 0;
}

static int serial_restore(struct vm *vm, const struct snapshot_file *f, struct error *err)
{
	struct serial *s = device_get_data(vm, &serial_device);
	struct serial_state st;
	int r = snapshot_get_exact(f, "serial", &st, sizeof(st), err);

	if (r < 0)
		return r;
	if (st.rx_head >= SERIAL_FIFO || st.rx_len > SERIAL_FIFO)
		return error_set(err, -EBADMSG, "%s: snapshot 'serial' state is malformed",
				 f->path);
	pthread_mutex_lock(&s->lock);
	s->ier = st.ier;
	s->lcr = st.lcr;
	s->mcr = st.mcr;
	s->scr = st.scr;
	s->dll = st.dll;
	s->dlm = st.dlm;
	s->fcr = st.fcr;
	s->thr_pending = st.thr_pending;
	s->rx_head = st.rx_head;
	s->rx_len = st.rx_len;
	memcpy(s->rx, st.rx, sizeof(s->rx));
	s->irq_level = false; /* the line is raised again if an interrupt is pending */
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static const struct device_ops serial_device = {
	.name = "serial",
	.level = DEVICE_LEVEL_PLATFORM,
	.init = serial_init,
	.exit = serial_exit,
	.save = serial_save,
	.restore = serial_restore,
};
DEVICE_REGISTER(serial_device);
