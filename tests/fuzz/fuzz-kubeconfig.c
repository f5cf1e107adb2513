/* SPDX-License-Identifier: Apache-2.0 */
/* kubeconfig_load() on arbitrary bytes, with the current context and with a named one. */
#include <string.h>

#include "fuzz-util.h"
#include "kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *path;

        /* Over the loader's 4 MiB cap the input is refused before parsing: nothing to learn. */
        if (size > 4U * 1024U * 1024U)
                return 0;
        path = fuzz_write_input("kubeconfig", data, size);

        for (unsigned i = 0; i < 2; i++) {
                _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;

                if (kubeconfig_load(path, i == 0 ? NULL : "fuzz", &k) >= 0) {
                        /* A success must keep the header's promises. */
                        if (!k || !k->server || !k->context || !k->cluster || !k->user || !k->path)
                                abort();
                        bool cert = k->client_cert_file || k->client_cert_data;
                        bool key = k->client_key_file || k->client_key_data;

                        if (cert != key)
                                abort();
                        if (k->server[0] == 0 || k->server[strlen(k->server) - 1] == '/')
                                abort();
                }
        }
        return 0;
}
