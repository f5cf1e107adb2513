/* SPDX-License-Identifier: Apache-2.0 */
/* config_load_file() and config_verify() on arbitrary bytes. */
#include "config.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(config_freep) Config *c = NULL;
        const char *path;

        if (size > 1024U * 1024U)
                return 0;       /* the loader's cap */
        path = fuzz_write_input("nodereboot.conf", data, size);

        if (config_new(&c) < 0)
                abort();
        if (config_load_file(c, path) >= 0) {
                /* Whatever loaded keeps the ranges the parser promises. */
                if (c->concurrency < 1 || c->concurrency > 1000 || c->reboot_max_attempts < 1 ||
                    c->reboot_max_attempts > 100 || c->lock_ttl_usec < 10 * USEC_PER_SEC || !c->lock_name ||
                    !c->lock_namespace || !c->kubeconfig || !c->sentinel_path)
                        abort();
                (void) config_verify(c);
        }
        return 0;
}
