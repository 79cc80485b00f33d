/*
 * epollclient: the kernel's share of the agent's work, without a language
 * runtime. It opens CLIENTS TCP connections to an echo server, writes RATE
 * 100-byte messages a second spread over them on a tick of TICK_US
 * microseconds (the agent's send tick), reads the echoes from one epoll set
 * on one thread, and prints the messages it sent and the CPU seconds (user +
 * system, getrusage) it spent from the first tick to the last echo.
 *
 * usage: epollclient IP PORT CLIENTS RATE SECONDS TICK_US [SOURCE_IP...]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu(void) {
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
	       (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

/* drain waits up to wait seconds for ready sockets and reads each once; it
 * returns the bytes read. */
static long drain(int ep, double wait) {
	struct epoll_event ev[256];
	static char buf[65536];
	long got = 0;
	struct timespec ts = {.tv_sec = (time_t)wait, .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
	int n = epoll_pwait2(ep, ev, 256, &ts, NULL);
	for (int i = 0; i < n; i++) {
		ssize_t r = read(ev[i].data.fd, buf, sizeof buf);
		if (r > 0)
			got += r;
	}
	return got;
}

int main(int argc, char **argv) {
	if (argc < 7) {
		fprintf(stderr, "usage: epollclient IP PORT CLIENTS RATE SECONDS TICK_US [SOURCE_IP...]\n");
		return 2;
	}
	const char *ip = argv[1];
	int port = atoi(argv[2]), clients = atoi(argv[3]), rate = atoi(argv[4]);
	double seconds = atof(argv[5]), tick = atof(argv[6]) / 1e6;
	int nsrc = argc - 7;
	if (clients <= 0 || rate <= 0 || seconds <= 0 || tick <= 0) {
		fprintf(stderr, "epollclient: bad arguments\n");
		return 2;
	}
	int ep = epoll_create1(0);
	int *fds = calloc((size_t)clients, sizeof(int));
	if (ep < 0 || fds == NULL) {
		perror("epollclient");
		return 1;
	}
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	if (inet_pton(AF_INET, ip, &to.sin_addr) != 1) {
		fprintf(stderr, "epollclient: bad address %s\n", ip);
		return 2;
	}
	for (int i = 0; i < clients; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0) {
			perror("epollclient: socket");
			return 1;
		}
		if (nsrc > 0) {
			struct sockaddr_in from = {.sin_family = AF_INET};
			if (inet_pton(AF_INET, argv[7 + i % nsrc], &from.sin_addr) != 1 ||
			    bind(fd, (struct sockaddr *)&from, sizeof from) != 0) {
				perror("epollclient: bind");
				return 1;
			}
		}
		if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
			perror("epollclient: connect");
			return 1;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0) {
			perror("epollclient: epoll_ctl");
			return 1;
		}
		fds[i] = fd;
	}
	char msg[100];
	memset(msg, 'x', sizeof msg);
	double per_tick = rate * tick;
	long sent = 0, got = 0;
	double c0 = cpu(), t0 = now();
	for (long k = 1; k * tick <= seconds; k++) {
		double deadline = t0 + (double)k * tick;
		for (;;) {
			double wait = deadline - now();
			if (wait <= 0)
				break;
			got += drain(ep, wait);
		}
		for (long due = (long)((double)k * per_tick); sent < due; sent++) {
			if (write(fds[sent % clients], msg, sizeof msg) != (ssize_t)sizeof msg) {
				perror("epollclient: write");
				return 1;
			}
		}
	}
	double end = now() + 5;
	while (got < sent * (long)sizeof msg && now() < end)
		got += drain(ep, 0.1);
	double c1 = cpu();
	if (got < sent * (long)sizeof msg) {
		fprintf(stderr, "epollclient: %ld of %ld bytes came back\n", got, sent * (long)sizeof msg);
		return 1;
	}
	printf("%ld %.6f\n", sent, c1 - c0);
	return 0;
}
