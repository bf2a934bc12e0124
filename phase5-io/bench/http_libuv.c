/* The libuv peer of examples/http_server.cpp for bench/http_bench.cpp: the
 * same fixed "hello" answer to every HTTP/1.1 request, keep-alive, on one
 * thread and one libuv loop, written the way libuv's own documentation
 * writes a TCP server (uv_listen, uv_accept, uv_read_start, uv_write).
 *
 *   build/bench-servers/http_libuv --port N     serve 127.0.0.1:N until SIGTERM or SIGINT
 *
 * Built by the phase's Makefile only when libuv1-dev is installed.
 *
 * Parsing is as small as the green-thread server's: a request ends at the
 * first "\r\n\r\n"; a "Connection: close" header (any case) closes the
 * connection after the answer. Each connection reads into a 2 KiB buffer of
 * its own (the alloc callback hands out its free part, so nothing is copied
 * and nothing is allocated per read); a request that does not fit is
 * answered with 431 and the connection closed.
 *
 * Answers go out with uv_try_write (one write(2), no request object), and
 * only the part the socket did not take goes through uv_write (libuv's API
 * documentation, uv_try_write and uv_write).
 */
#define _GNU_SOURCE /* memmem */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, world\n";
static const char too_large[] =
    "HTTP/1.1 431 Request Header Fields Too Large\r\n"
    "Content-Length: 0\r\n"
    "Connection: close\r\n"
    "\r\n";

enum { buffer_size = 2048, max_batch = 16 };

struct connection {
    uv_tcp_t tcp; /* first: a uv_tcp_t* is a struct connection* */
    size_t have;  /* bytes of buf holding an unanswered (partial) request */
    int closing;
    char buf[buffer_size];
};

struct pending_write {
    uv_write_t req;
    size_t len;
    char data[];
};

static uv_loop_t* loop;
static uv_tcp_t listener;
static uv_signal_t sigterm, sigint;

static void on_closed(uv_handle_t* handle) { free(handle); }

static void close_connection(struct connection* c) {
    if (c->closing) return;
    c->closing = 1;
    uv_close((uv_handle_t*)&c->tcp, on_closed);
}

static void on_written(uv_write_t* req, int status) {
    (void)status; /* an error shows up again on the next read */
    free(req);
}

/* Sends len bytes: what write(2) takes now, the rest queued in libuv. */
static void send_bytes(struct connection* c, const char* data, size_t len) {
    uv_buf_t b = uv_buf_init((char*)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t*)&c->tcp, &b, 1);
    if (n == UV_EAGAIN) n = 0;
    if (n < 0) {
        close_connection(c);
        return;
    }
    if ((size_t)n == len) return;
    struct pending_write* w = malloc(sizeof *w + len - (size_t)n);
    if (w == NULL) {
        close_connection(c);
        return;
    }
    w->len = len - (size_t)n;
    memcpy(w->data, data + n, w->len);
    b = uv_buf_init(w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t*)&c->tcp, &b, 1, on_written) != 0) {
        free(w);
        close_connection(c);
    }
}

/* Header names are ASCII and case-insensitive (RFC 9110, 5.1). */
static char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c; }

/* Does the header block [p, p + n) ask to close the connection? */
static int asks_to_close(const char* p, size_t n) {
    static const char header[] = "\r\nconnection: close";
    const size_t hn = sizeof header - 1;
    for (size_t i = 0; i + hn <= n; ++i) {
        size_t j = 0;
        while (j < hn && ascii_lower(p[i + j]) == header[j]) ++j;
        if (j == hn) return 1;
    }
    return 0;
}

static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* b) {
    (void)suggested;
    struct connection* c = (struct connection*)handle;
    *b = uv_buf_init(c->buf + c->have, (unsigned)(buffer_size - c->have));
}

static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* b) {
    (void)b;
    struct connection* c = (struct connection*)stream;
    if (nread < 0) { /* UV_EOF, a reset */
        close_connection(c);
        return;
    }
    c->have += (size_t)nread;
    /* Answer every complete request in the buffer, in one write. */
    static char out[max_batch * sizeof response];
    size_t out_len = 0, start = 0;
    int close_after = 0;
    for (;;) {
        const char* end = memmem(c->buf + start, c->have - start, "\r\n\r\n", 4);
        if (end == NULL) break;
        const size_t stop = (size_t)(end - c->buf) + 4;
        close_after = asks_to_close(c->buf + start, stop - start);
        memcpy(out + out_len, response, sizeof response - 1);
        out_len += sizeof response - 1;
        start = stop;
        if (close_after || out_len + sizeof response > sizeof out) break;
    }
    if (start == 0 && c->have == buffer_size) {
        send_bytes(c, too_large, sizeof too_large - 1);
        close_connection(c);
        return;
    }
    memmove(c->buf, c->buf + start, c->have - start);
    c->have -= start;
    if (out_len > 0) send_bytes(c, out, out_len);
    if (close_after) close_connection(c);
}

static void on_connection(uv_stream_t* server, int status) {
    if (status < 0) return; /* libuv stops accepting on EMFILE by itself and retries later */
    struct connection* c = calloc(1, sizeof *c);
    if (c == NULL) return;
    uv_tcp_init(loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t*)&c->tcp) != 0) {
        uv_close((uv_handle_t*)&c->tcp, on_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
}

static void close_any(uv_handle_t* handle, void* arg) {
    (void)arg;
    if (!uv_is_closing(handle)) uv_close(handle, handle->type == UV_TCP && handle != (uv_handle_t*)&listener ? on_closed : NULL);
}

static void on_signal(uv_signal_t* handle, int signum) {
    (void)handle;
    (void)signum;
    uv_walk(loop, close_any, NULL); /* the loop ends once every handle is closed */
}

int main(int argc, char** argv) {
    int port = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
    }
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s --port N\n", argv[0]);
        return 2;
    }
    loop = uv_default_loop();
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(loop, &listener);
    int rc = uv_tcp_bind(&listener, (const struct sockaddr*)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t*)&listener, 4096, on_connection);
    if (rc != 0) {
        fprintf(stderr, "http_libuv: 127.0.0.1:%d: %s\n", port, uv_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);
    printf("http_libuv: listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
