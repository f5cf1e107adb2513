"""CEL for the ValidatingAdmissionPolicy plugin: a long-lived Node.js process running
tests/integration/cel/evaluate.mjs (@bufbuild/cel, installed by `npm ci` in that folder, which
tests/install-deps.sh runs). Requests go one at a time, one JSON line each way."""

import json
import os
import shutil
import subprocess
import threading

from .errors import ApiError

CEL_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cel")
SCRIPT = os.path.join(CEL_DIR, "evaluate.mjs")


class CelUnavailable(Exception):
    pass


class Cel:
    def __init__(self):
        self._lock = threading.Lock()
        self._proc = None

    def _start(self):
        node = shutil.which("node") or shutil.which("nodejs")
        if node is None:
            raise CelUnavailable("no node on PATH (tests/install-deps.sh installs nodejs)")
        if not os.path.isdir(os.path.join(CEL_DIR, "node_modules", "@bufbuild", "cel")):
            raise CelUnavailable("%s/node_modules has no @bufbuild/cel: run `npm ci` there "
                                 "(tests/install-deps.sh does)" % CEL_DIR)
        self._proc = subprocess.Popen([node, SCRIPT], cwd=CEL_DIR, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, bufsize=1)

    def _call(self, request):
        with self._lock:
            try:
                if self._proc is None or self._proc.poll() is not None:
                    self._start()
                self._proc.stdin.write(json.dumps(request) + "\n")
                self._proc.stdin.flush()
                line = self._proc.stdout.readline()
            except (OSError, CelUnavailable) as e:
                self._proc = None
                raise ApiError(500, "the test server's CEL evaluator is not available: %s" % e)
            if not line:
                self._proc = None
                raise ApiError(500, "the test server's CEL evaluator exited")
            answer = json.loads(line)
            if "error" in answer:
                raise ApiError(500, "the test server's CEL evaluator failed: %s" % answer["error"])
            return answer["results"]

    def parse_errors(self, expressions, variables=()):
        """The compile error of each expression (syntax, an undeclared name, a variable the policy
        does not have, a field AdmissionRequest does not have), or None."""
        return [r.get("error") for r in self._call({"op": "parse", "expressions": list(expressions),
                                                     "variables": list(variables)})]

    def evaluate(self, variables, expressions, activation):
        """variables: [(name, text)], evaluated in order into variables.NAME; returns, for each
        expression, ("value", JSON) or ("error", message)."""
        results = self._call({"op": "eval", "variables": [list(v) for v in variables],
                              "expressions": list(expressions), "activation": activation})
        return [("error", r["error"]) if "error" in r else ("value", r["value"]) for r in results]

    def close(self):
        with self._lock:
            if self._proc is not None:
                try:
                    self._proc.stdin.close()
                    self._proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    self._proc.kill()
                self._proc = None
