/* A resolver client linked against musl (built by the pod tests with musl-gcc -static): resolves each name
 * with getaddrinfo() and prints one address per line, so the tests see what musl's resolver does with the
 * pod's resolv.conf (search list, ndots, parallel A/AAAA on one socket) through the capture rules.
 *
 *     musl_resolve [-4|-6] NAME...    exit 0 when every name resolved, 2 otherwise */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	struct addrinfo hints;
	int family = AF_UNSPEC, rc = 0, first = 1;

	if (argc > 1 && (strcmp(argv[1], "-4") == 0 || strcmp(argv[1], "-6") == 0)) {
		family = argv[1][1] == '4' ? AF_INET : AF_INET6;
		first = 2;
	}
	if (first >= argc) {
		fprintf(stderr, "usage: musl_resolve [-4|-6] NAME...\n");
		return 2;
	}
	for (int i = first; i < argc; i++) {
		struct addrinfo *res = NULL;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = family;
		hints.ai_socktype = SOCK_STREAM;
		int err = getaddrinfo(argv[i], NULL, &hints, &res);
		if (err != 0) {
			fprintf(stderr, "musl_resolve: %s: %s\n", argv[i], gai_strerror(err));
			rc = 2;
			continue;
		}
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
			char buf[INET6_ADDRSTRLEN];
			const void *a =
			        ai->ai_family == AF_INET
			                ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
			                : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
			if (inet_ntop(ai->ai_family, a, buf, sizeof(buf)))
				printf("%s %s\n", buf, argv[i]);
		}
		freeaddrinfo(res);
	}
	return rc;
}
