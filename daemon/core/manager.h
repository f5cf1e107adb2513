/* SPDX-License-Identifier: Apache-2.0 */
/* The manager owns the event loop and every adapter; it turns what it sees (sentinel, lock
 * watch, timers, answers from the API and logind) into events for the reboot state machine,
 * persists each new state before acting on it, runs the actions, and reports status. */
#pragma once

#include "config.h"

typedef struct Manager Manager;

/* Takes ownership of config. state_dir: $STATE_DIRECTORY or the default. */
int manager_new(Manager **ret, Config *config, const char *state_dir);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Loads the state, opens the adapters, reconciles with the cluster and resumes the cycle. */
int manager_start(Manager *m);
/* Runs until SIGTERM/SIGINT (returns 0) or a fatal error (returns -errno). */
int manager_run(Manager *m);
