#!/usr/bin/env node
// Reads an x402 v2 header value the way the official TypeScript client and
// server (@x402/core) read it, validates it against the package's own zod
// schemas, and prints the parsed object as JSON. Exits 1 on any failure, 2 on
// bad usage.
//
// Usage:
//   node check-header.mjs [--kind required|signature|response] [VALUE | -]
//
// VALUE is the header value; without it, or with "-", it is read from stdin.
//   required   PAYMENT-REQUIRED (default): x402HTTPClient.getPaymentRequiredResponse,
//              then PaymentRequiredV2Schema
//   signature  PAYMENT-SIGNATURE: decodePaymentSignatureHeader, then
//              PaymentPayloadV2Schema
//   response   PAYMENT-RESPONSE: x402HTTPClient.getPaymentSettleResponse, then
//              the settle response fields x402 requires

import { readFileSync } from "node:fs";
import { x402Client, x402HTTPClient } from "@x402/core/client";
import { decodePaymentSignatureHeader } from "@x402/core/http";
import { PaymentPayloadV2Schema, PaymentRequiredV2Schema } from "@x402/core/schemas";

const HEADERS = {
  required: "PAYMENT-REQUIRED",
  signature: "PAYMENT-SIGNATURE",
  response: "PAYMENT-RESPONSE",
};

function usage(message) {
  process.stderr.write(`${message}\nusage: node check-header.mjs [--kind required|signature|response] [VALUE | -]\n`);
  process.exit(2);
}

function fail(message) {
  process.stderr.write(`x402 check failed: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  let kind = "required";
  let value;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--kind") {
      kind = argv[++i];
    } else if (arg.startsWith("--kind=")) {
      kind = arg.slice("--kind=".length);
    } else if (value === undefined) {
      value = arg;
    } else {
      usage(`unexpected argument ${JSON.stringify(arg)}`);
    }
  }
  if (!(kind in HEADERS)) {
    usage(`unknown kind ${JSON.stringify(kind)}`);
  }
  if (value === undefined || value === "-") {
    value = readFileSync(0, "utf8");
  }
  return { kind, value: value.trim() };
}

function describeIssues(error) {
  return error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
}

// Headers is the same case-insensitive lookup a fetch Response offers, which
// is what the official fetch wrapper hands the HTTP client.
function headersWith(kind, value) {
  return new Headers({ [HEADERS[kind]]: value });
}

function checkRequired(value) {
  const headers = headersWith("required", value);
  const client = new x402HTTPClient(new x402Client());
  const decoded = client.getPaymentRequiredResponse((name) => headers.get(name));
  const parsed = PaymentRequiredV2Schema.safeParse(decoded);
  if (!parsed.success) {
    fail(`PaymentRequired does not match the x402 v2 schema: ${describeIssues(parsed.error)}`);
  }
  // The schema takes any non-empty string; x402 says atomic units.
  for (const [i, req] of parsed.data.accepts.entries()) {
    if (!/^[0-9]+$/.test(req.amount)) {
      fail(`accepts[${i}].amount ${JSON.stringify(req.amount)} is not a count of atomic units`);
    }
  }
  return parsed.data;
}

function checkSignature(value) {
  const decoded = decodePaymentSignatureHeader(value);
  const parsed = PaymentPayloadV2Schema.safeParse(decoded);
  if (!parsed.success) {
    fail(`PaymentPayload does not match the x402 v2 schema: ${describeIssues(parsed.error)}`);
  }
  return parsed.data;
}

function checkResponse(value) {
  const headers = headersWith("response", value);
  const client = new x402HTTPClient(new x402Client());
  const settled = client.getPaymentSettleResponse((name) => headers.get(name));
  if (settled === null || typeof settled !== "object" || Array.isArray(settled)) {
    fail("the settle response is not an object");
  }
  if (typeof settled.success !== "boolean") fail("success is not a boolean");
  if (typeof settled.transaction !== "string") fail("transaction is not a string");
  if (typeof settled.network !== "string") fail("network is not a string");
  return settled;
}

const { kind, value } = parseArgs(process.argv.slice(2));
if (value === "") {
  fail("the header value is empty");
}
let result;
try {
  result = { required: checkRequired, signature: checkSignature, response: checkResponse }[kind](value);
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
