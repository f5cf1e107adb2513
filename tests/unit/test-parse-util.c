/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "parse-util.h"
#include "tests.h"

TEST(socket_address) {
        struct sockaddr_storage a;
        socklen_t n;
        char text[INET6_ADDRSTRLEN];

        ASSERT_OK(parse_socket_address("127.0.0.1:9798", &a, &n));
        ASSERT_EQ(a.ss_family, AF_INET);
        ASSERT_EQ(n, sizeof(struct sockaddr_in));
        ASSERT_EQ(ntohs(((struct sockaddr_in *) &a)->sin_port), 9798);
        ASSERT_STREQ(inet_ntop(AF_INET, &((struct sockaddr_in *) &a)->sin_addr, text, sizeof text), "127.0.0.1");

        ASSERT_OK(parse_socket_address("0.0.0.0:1", &a, &n));
        ASSERT_OK(parse_socket_address("[::1]:65535", &a, &n));
        ASSERT_EQ(a.ss_family, AF_INET6);
        ASSERT_EQ(n, sizeof(struct sockaddr_in6));
        ASSERT_EQ(ntohs(((struct sockaddr_in6 *) &a)->sin6_port), 65535);
        ASSERT_OK(parse_socket_address("[fe80::1:2]:80", &a, &n));

        static const char *const bad[] = {
                "", ":9798", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:+80",
                "127.0.0.1:80x", "localhost:9798", "::1:9798", "[::1]", "[::1]9798", "[]:80",
                "[127.0.0.1]:80", "1.2.3:80", "256.0.0.1:80", " 127.0.0.1:80",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (parse_socket_address(bad[i], &a, &n) != -EINVAL) {
                        fprintf(stderr, "accepted \"%s\"\n", bad[i]);
                        abort();
                }
}

TEST(boolean_and_unsigned) {
        unsigned u;

        ASSERT_EQ(parse_boolean("Yes"), 1);
        ASSERT_EQ(parse_boolean("off"), 0);
        ASSERT_ERROR(parse_boolean("maybe"), EINVAL);
        ASSERT_OK(parse_unsigned("4294967295", &u));
        ASSERT_EQ(u, 4294967295U);
        ASSERT_TRUE(parse_unsigned("4294967296", &u) < 0);
        ASSERT_TRUE(parse_unsigned("-1", &u) < 0);
}

int main(void) {
        RUN(socket_address);
        RUN(boolean_and_unsigned);
        return 0;
}
