/* An HTTPS client for attach_https_static: OpenSSL linked in statically
 * (libssl.a, libcrypto.a), so the uprobes must find SSL_write/SSL_read by
 * symbol in this executable. Waits for a line on stdin, then sends one
 * GET per PATH on one keep-alive connection to 127.0.0.1:PORT, reads each
 * response (Content-Length framed) and prints its status line. */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *what) {
    fprintf(stderr, "https_client: %s failed\n", what);
    return 1;
}

/* Reads one response; returns 0 when complete. */
static int read_response(SSL *ssl) {
    char buf[65536];
    size_t have = 0;
    char *end = NULL;
    while (!(end = strstr(buf, "\r\n\r\n"))) {
        int n = SSL_read(ssl, buf + have, (int)(sizeof buf - 1 - have));
        if (n <= 0) return -1;
        have += (size_t)n;
        buf[have] = 0;
    }
    char *cl = strcasestr(buf, "content-length:");
    size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
    size_t want = (size_t)(end + 4 - buf) + body;
    while (have < want) {
        size_t got = 0;
        size_t room = sizeof buf - 1 - have;
        if (room == 0) { have = 0; want -= sizeof buf - 1; room = sizeof buf - 1; }
        if (SSL_read_ex(ssl, buf + have, room, &got) != 1) return -1;
        have += got;
    }
    printf("%.*s\n", (int)(strchr(buf, '\r') - buf), buf);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) return fail("usage: https_client PORT PATH...");
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return fail("reading go");
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return fail("SSL_CTX_new");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return fail("connect");
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) return fail("SSL_connect");
    for (int i = 2; i < argc; i++) {
        char req[2048];
        int n = snprintf(req, sizeof req,
                         "GET %s HTTP/1.1\r\nAuthorization: Bearer s3cret-bearer\r\n"
                         "Host: 127.0.0.1:%s\r\n\r\n",
                         argv[i], argv[1]);
        /* SSL_write for the first request, SSL_write_ex for the rest. */
        size_t written = 0;
        int ok = i == 2 ? SSL_write(ssl, req, n) == n
                        : SSL_write_ex(ssl, req, (size_t)n, &written) == 1;
        if (!ok) return fail("SSL_write");
        if (read_response(ssl) != 0) return fail("reading the response");
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    printf("done\n");
    return 0;
}
