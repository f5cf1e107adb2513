// SPDX-License-Identifier: Apache-2.0
// The CEL side of the test API server's ValidatingAdmissionPolicy plugin (apiserver/cel.py):
// one JSON request per line on stdin, one JSON answer per line on stdout.
//
//   {"op": "parse", "expressions": [TEXT, ...], "variables": [NAME, ...]}
//       -> {"results": [{"ok": true} | {"error": MESSAGE}, ...]}
//      The part of kube-apiserver's compile-time check that needs no object schema: the text
//      parses, every name is declared (object, oldObject, request, params, namespaceObject,
//      authorizer, variables, and the macros' own), variables.NAME names a variable of the
//      policy, and request.FIELD is a field of admission.k8s.io/v1 AdmissionRequest.
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

const GVK = { group: null, version: null, kind: null };
const GVR = { group: null, version: null, resource: null };
const REQUEST = {
  uid: null, kind: GVK, resource: GVR, subResource: null, requestKind: GVK, requestResource: GVR,
  requestSubResource: null, name: null, namespace: null, operation: null,
  userInfo: { username: null, uid: null, groups: null, extra: null },
  object: null, oldObject: null, dryRun: null, options: null,
};
const TOP = ["object", "oldObject", "request", "params", "namespaceObject", "authorizer", "variables"];

// Walks a parsed expression; returns the first declaration error, as cel-go words it.
function undeclared(expr, scope, variables) {
  const k = expr.exprKind;
  switch (k.case) {
    case "identExpr":
      return TOP.includes(k.value.name) || scope.has(k.value.name) ? null
        : `undeclared reference to '${k.value.name}' (in container '')`;
    case "selectExpr": {
      const path = [];
      let e = expr;
      while (e.exprKind.case === "selectExpr") {
        path.unshift(e.exprKind.value.field);
        e = e.exprKind.value.operand;
      }
      if (e.exprKind.case === "identExpr" && !scope.has(e.exprKind.value.name)) {
        const root = e.exprKind.value.name;
        if (root === "variables" && !variables.includes(path[0])) return `undefined field '${path[0]}'`;
        if (root === "request") {
          let shape = REQUEST;
          for (const f of path) {
            if (shape === null) break;
            if (!(f in shape)) return `undefined field '${f}'`;
            shape = shape[f];
          }
        }
      }
      return undeclared(e, scope, variables);
    }
    case "callExpr":
      return (k.value.target && undeclared(k.value.target, scope, variables)) ||
        k.value.args.map((a) => undeclared(a, scope, variables)).find((x) => x) || null;
    case "listExpr":
      return k.value.elements.map((a) => undeclared(a, scope, variables)).find((x) => x) || null;
    case "structExpr":
      return k.value.entries.map((en) => (en.keyKind.case === "mapKey" && undeclared(en.keyKind.value, scope, variables))
        || undeclared(en.value, scope, variables)).find((x) => x) || null;
    case "comprehensionExpr": {
      const c = k.value;
      const inner = new Set([...scope, c.iterVar, c.accuVar, ...(c.iterVar2 ? [c.iterVar2] : [])]);
      return undeclared(c.iterRange, scope, variables) || undeclared(c.accuInit, scope, variables) ||
        undeclared(c.loopCondition, inner, variables) || undeclared(c.loopStep, inner, variables) ||
        undeclared(c.result, inner, variables);
    }
    default:
      return null;
  }
}

function handle(req) {
  if (req.op === "parse") {
    return {
      results: req.expressions.map((text) => {
        try {
          compile(text);
          const why = undeclared(parse(text).expr, new Set(), req.variables || []);
          return why ? { error: why } : { ok: true };
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
