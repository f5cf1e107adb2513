// SPDX-License-Identifier: Apache-2.0
// The CEL side of the test API server's ValidatingAdmissionPolicy plugin (apiserver/cel.py):
// one JSON request per line on stdin, one JSON answer per line on stdout.
//
//   {"op": "parse", "expressions": [TEXT, ...]}
//       -> {"results": [{"ok": true} | {"error": MESSAGE}, ...]}
//   {"op": "eval", "variables": [[NAME, TEXT], ...], "expressions": [TEXT, ...],
//    "activation": {"object": ..., "oldObject": ..., "request": ..., "params": ...}}
//       -> {"results": [{"value": JSON} | {"error": MESSAGE}, ...]}
//
// Values cross as JSON. As in kube-apiserver, a JSON integer is a CEL int (int64) and an object a
// map; the composited variables are evaluated in order, each seeing the ones before it
// (variables.NAME), and one that fails makes every expression that reads it fail with its error.
// The library is @bufbuild/cel, a CEL implementation conformant to the CEL spec, with the strings
// extension that Kubernetes also enables (split, join, lowerAscii, ...).

import { createInterface } from "node:readline";
import { celEnv, parse, plan, isCelError, isCelList, isCelMap, isCelUint } from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";

const env = celEnv({ funcs: strings });
const plans = new Map();

function compile(text) {
  let p = plans.get(text);
  if (!p) {
    p = plan(env, parse(text));
    plans.set(text, p);
  }
  return p;
}

function toCel(v) {
  if (Array.isArray(v)) return v.map(toCel);
  if (v !== null && typeof v === "object") return new Map(Object.entries(v).map(([k, x]) => [k, toCel(x)]));
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  return v;
}

function toJson(v) {
  if (typeof v === "bigint") return Number(v);
  if (isCelUint(v)) return Number(v.value);
  if (isCelList(v)) return Array.from(v, toJson);
  if (isCelMap(v)) {
    const out = {};
    for (const [k, x] of v.entries()) out[String(k)] = toJson(x);
    return out;
  }
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  if (v === null || ["string", "boolean", "number"].includes(typeof v)) return v;
  return String(v);
}

function message(e) {
  return e && e.message ? String(e.message) : String(e);
}

function evaluate(text, bindings) {
  try {
    const r = compile(text)(bindings);
    return isCelError(r) ? { error: message(r) } : { value: r };
  } catch (e) {
    return { error: message(e) };
  }
}

function handle(req) {
  if (req.op === "parse") {
    return {
      results: req.expressions.map((text) => {
        try {
          compile(text);
          return { ok: true };
        } catch (e) {
          return { error: message(e) };
        }
      }),
    };
  }
  if (req.op === "eval") {
    const bindings = {};
    for (const [k, v] of Object.entries(req.activation || {})) bindings[k] = toCel(v);
    const variables = new Map();
    const failed = new Map();
    bindings.variables = variables;
    for (const [name, text] of req.variables || []) {
      const r = evaluate(text, bindings);
      if ("error" in r) failed.set(name, r.error);
      else variables.set(name, r.value);
    }
    return {
      results: req.expressions.map((text) => {
        const r = evaluate(text, bindings);
        if ("error" in r) {
          // A composited variable that failed is missing from the map: name its own error.
          for (const [name, err] of failed) {
            if (new RegExp(`\\bvariables\\.${name}\\b`).test(text)) return { error: `variables.${name}: ${err}` };
          }
          return r;
        }
        return { value: toJson(r.value) };
      }),
    };
  }
  return { error: `unknown op ${JSON.stringify(req.op)}` };
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  let out;
  try {
    out = handle(JSON.parse(line));
  } catch (e) {
    out = { error: message(e) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
});
