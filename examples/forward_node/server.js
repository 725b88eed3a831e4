// A Node.js service on the other side of a forwarding subscriber: the twin of
// examples/forward_service/app.py, to show that a subscriber can be written in any language.
//
// The receiver POSTs each event to it signed as Standard Webhooks (docs/subscribers.md). It
// verifies each request with the `standardwebhooks` npm package, handles each webhook-id once
// (delivery is at least once), and answers at once. Handling an event here means appending one
// JSON line to a file; a real service would write to its database instead.
//
// Only node's own http module and `standardwebhooks`. Run it from this folder after `npm ci`:
//
//     FORWARD_NODE_SECRET=whsec_... FORWARD_NODE_EVENTS_FILE=events.jsonl node server.js
//
// Environment:
//   FORWARD_NODE_SECRET       the subscriber's signing secret, whsec_<base64> (required)
//   FORWARD_NODE_EVENTS_FILE  the JSON-lines file each new event is appended to (events.jsonl)
//   FORWARD_NODE_HOST         the address to listen on (127.0.0.1)
//   FORWARD_NODE_PORT         the port (8082; 0 for any free one, printed at start)
//   FORWARD_NODE_PATH         the path events are POSTed to (/events)
//
// What it answers, and what the receiver then does with the delivery:
//   204  verified and handled, or a repeat of a webhook-id handled before: done
//   401  the signature does not verify (wrong secret, timestamp over 5 minutes off): dead letter
//   400  a verified body that is not JSON: dead letter
//   404  another path, 405 another method, 413 a body over 2 MiB: dead letter
//   503  the events file cannot be written: retried after Retry-After

import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { Webhook, WebhookVerificationError } from "standardwebhooks";

const MAX_BODY = 2 * 1024 * 1024; // the receiver forwards events of at most its --max-body (1 MiB)
const SECRET_PREFIX = "whsec_";

const secret = (process.env.FORWARD_NODE_SECRET ?? "").trim();
const eventsFile = process.env.FORWARD_NODE_EVENTS_FILE || "events.jsonl";
const host = process.env.FORWARD_NODE_HOST || "127.0.0.1";
const port = Number.parseInt(process.env.FORWARD_NODE_PORT ?? "8082", 10);
const path = process.env.FORWARD_NODE_PATH || "/events";

function fail(message) {
  console.error(`node-service: ${message}`);
  process.exit(2);
}

function log(message) {
  console.log(`node-service: ${message}`);
}

/** The verifier of the subscriber's secret; the message never quotes the secret. */
function makeWebhook(text) {
  if (!text.startsWith(SECRET_PREFIX)) {
    fail("set FORWARD_NODE_SECRET to the subscriber's whsec_ secret");
  }
  // The receiver accepts a key without its base64 padding; the library wants it padded.
  const key = text.slice(SECRET_PREFIX.length);
  try {
    return new Webhook(SECRET_PREFIX + key + "=".repeat((4 - (key.length % 4)) % 4));
  } catch {
    return fail("FORWARD_NODE_SECRET is not valid base64 after whsec_");
  }
}

/** The webhook-ids already in the events file: a restart does not handle them again. */
function handledIds(file) {
  const ids = new Set();
  if (!existsSync(file)) return ids;
  const lines = readFileSync(file, "utf8").split("\n");
  lines.forEach((line, index) => {
    if (!line.trim()) return;
    try {
      ids.add(JSON.parse(line).webhook_id);
    } catch {
      fail(`${file} line ${index + 1} is not JSON`);
    }
  });
  return ids;
}

/** A header the receiver percent-encodes where a character is not visible ASCII. */
function decoded(value) {
  try {
    return decodeURIComponent(value ?? "");
  } catch {
    return value ?? "";
  }
}

function answer(response, status, reason = "", headers = {}) {
  const body = Buffer.from(reason);
  response.writeHead(status, { "content-length": body.length, ...headers });
  response.end(body);
}

if (!(Number.isInteger(port) && port >= 0 && port < 65536)) {
  fail(`FORWARD_NODE_PORT must be a port number, got ${process.env.FORWARD_NODE_PORT}`);
}
const webhook = makeWebhook(secret);
// Delivery is at least once: an event comes again when an answer was lost or it is replayed.
// Keep the handled ids where the work is stored (here: the events file), not only in memory.
const handled = handledIds(eventsFile);

/** Verify, handle once, answer: the whole service. `body` is the request's bytes as received. */
function receive(request, response, body) {
  const headers = request.headers; // node gives the names in lower case
  const id = headers["webhook-id"] ?? "";
  const type = decoded(headers["webhook-event-type"]);
  let event;
  try {
    // The raw bytes: parsing and encoding the JSON again would change them and break the
    // signature. jsonParse false: a body that verifies but is not JSON is a 400, not a 401.
    webhook.verify(body, headers, { jsonParse: false });
  } catch (error) {
    if (!(error instanceof WebhookVerificationError)) throw error;
    log(`refused ${type || "a request"} ${id}: ${error.message}`);
    return answer(response, 401, `signature does not verify: ${error.message}`);
  }
  try {
    event = JSON.parse(body.toString("utf8"));
  } catch {
    return answer(response, 400, "body is not JSON");
  }
  const attempt = headers["webhook-attempt"];
  if (handled.has(id)) {
    log(`${type} ${id} again (attempt ${attempt}): handled before, not again`);
    return answer(response, 204);
  }
  const record = {
    webhook_id: id,
    source: decoded(headers["webhook-source"]),
    type,
    attempt: Number(attempt),
    received_at: new Date().toISOString(),
    event,
  };
  try {
    // Synchronous: one event at a time, and the line is written before the 204 says "done".
    appendFileSync(eventsFile, JSON.stringify(record) + "\n");
  } catch (error) {
    log(`cannot write ${eventsFile} (${error.code ?? error.message}): ${id} to be sent again`);
    return answer(response, 503, "cannot store the event now", { "retry-after": "5" });
  }
  handled.add(id);
  log(`${type} ${id} from ${record.source}, attempt ${attempt}`);
  // Answer at once: slow work belongs after the answer (the receiver retries a slow one).
  return answer(response, 204);
}

const server = createServer((request, response) => {
  const url = new URL(request.url ?? "/", "http://service");
  if (url.pathname !== path) {
    request.resume();
    return answer(response, 404, "no such path");
  }
  if (request.method !== "POST") {
    request.resume();
    return answer(response, 405, "POST only", { allow: "POST" });
  }
  const chunks = [];
  let size = 0;
  request.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      request.removeAllListeners("data").removeAllListeners("end");
      answer(response, 413, "too large", { connection: "close" });
      return;
    }
    chunks.push(chunk);
  });
  request.on("end", () => receive(request, response, Buffer.concat(chunks)));
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections(); // the receiver keeps its connections alive
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

server.on("error", (error) => fail(`cannot listen on ${host}:${port}: ${error.message}`));
server.listen(port, host, () => {
  const { port: bound } = server.address();
  const shown = host.includes(":") ? `[${host}]` : host;
  log(`listening on http://${shown}:${bound}${path}, events to ${eventsFile}`);
});
