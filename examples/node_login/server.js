// Reference integration in Node.js: a login API that opens a session only for users who solved a
// Tencent Captcha, verified with DescribeCaptchaResult through the official tencentcloud-sdk-nodejs.
//
//   POST /api/session  {"user": "...", "captcha": {"ticket": "...", "rand": "..."}}
//        201 {"session", "user", "captcha": "verified" | "skipped: <why>" | "dr ticket"}  let in
//        422 {"error": "captcha_rejected", "detail"}                                        refused
//        400 {"error": "bad_request", "detail"}                                             no captcha
//   GET  /healthz      200 ok
//
// Correct behaviour (LOGIN_VARIANT=correct):
// - each verification call has a timeout (SDK_TIMEOUT_MS, default 900 ms);
// - a call that failed fast (InternalError, CaptchaCode 26, refused / reset connection, a non-200 or
//   unreadable answer) is retried once after RETRY_BACKOFF_MS (default 200 ms); a timed-out one is
//   not (the user has waited long enough);
// - when the last call still failed, the login fails open (the captcha is skipped);
// - a definite answer decides: CaptchaCode 1 (and EvilLevel not 100) lets the user in, anything else
//   refuses, even when an earlier call had failed;
// - a disaster-recovery ticket terror_<code>_<appid>_<unix s> (or trerror_) is judged here, never
//   sent to the API: only for our CAPTCHA_APP and within DR_MAX_AGE_S (default 300 s) of its time.
//
// Bug variants (LOGIN_VARIANT=...):
//   fail_closed_on_busy  CaptchaCode 26 (system busy) is taken as a bad ticket
//   no_sdk_timeout       no timeout set on the SDK call (the SDK's default is 60 s)
//   dr_any_appid         DR tickets of any CaptchaAppId are accepted
//   retry_no_backoff     the retry follows the failed call at once
//
// Env: LISTEN_PORT, TC_CAPTCHA_HOST (host:port of the Captcha API), TC_SECRET_ID, TC_SECRET_KEY,
// CAPTCHA_APP, CAPTCHA_KEY, SDK_TIMEOUT_MS, RETRY_BACKOFF_MS, DR_MAX_AGE_S, LOGIN_VARIANT.
"use strict";
const http = require("node:http");
const crypto = require("node:crypto");
const tencentcloud = require("tencentcloud-sdk-nodejs");

const VARIANTS = ["correct", "fail_closed_on_busy", "no_sdk_timeout", "dr_any_appid", "retry_no_backoff"];
const env = process.env;
const VARIANT = env.LOGIN_VARIANT || "correct";
const APP_ID = Number(env.CAPTCHA_APP || "190000001");
const SDK_TIMEOUT_MS = Number(env.SDK_TIMEOUT_MS || "900");
const RETRY_BACKOFF_MS = VARIANT === "retry_no_backoff" ? 0 : Number(env.RETRY_BACKOFF_MS || "200");
const DR_MAX_AGE_S = Number(env.DR_MAX_AGE_S || "300");
const DR_TICKET = /^(?:terror|trerror)_(\d+)_(\d+?)_?(\d{10})$/;
const MAX_BODY = 64 * 1024;

function fatal(msg) {
  console.error(`node_login: ${msg}`);
  process.exit(2);
}

if (!VARIANTS.includes(VARIANT)) fatal(`LOGIN_VARIANT: unknown variant ${VARIANT} (known: ${VARIANTS.join(", ")})`);
for (const name of ["TC_CAPTCHA_HOST", "TC_SECRET_ID", "TC_SECRET_KEY", "CAPTCHA_KEY"]) {
  if (!env[name]) fatal(`${name} is not set`);
}

const httpProfile = { endpoint: env.TC_CAPTCHA_HOST, protocol: "http://", agent: new http.Agent() };
if (VARIANT !== "no_sdk_timeout") httpProfile.reqTimeout = SDK_TIMEOUT_MS / 1000;
const captcha = new tencentcloud.captcha.v20190722.Client({
  credential: { secretId: env.TC_SECRET_ID, secretKey: env.TC_SECRET_KEY },
  region: "",
  profile: { httpProfile },
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One DescribeCaptchaResult call: {answer} when the service decided, {fault, retry} when it did not.
async function describe(params) {
  try {
    const answer = await captcha.DescribeCaptchaResult(params);
    if (answer.CaptchaCode === 26 && VARIANT !== "fail_closed_on_busy") return { fault: "CaptchaCode 26", retry: true };
    return { answer };
  } catch (e) {
    if (e.code === "InternalError") return { fault: "InternalError", retry: true };
    if (e.code) return { answer: { CaptchaCode: null, error: e.code } };  // the call itself refused (auth, params)
    if (/timeout/i.test(e.message || "")) return { fault: "timeout", retry: false };
    return { fault: `unreachable: ${e.message}`, retry: true };  // refused, reset, 5xx page, cut-off body
  }
}

async function verifyWithApi(ticket, rand, userIp) {
  const params = { CaptchaType: 9, Ticket: ticket, Randstr: rand, UserIp: userIp,
                   CaptchaAppId: APP_ID, AppSecretKey: env.CAPTCHA_KEY };
  let outcome = await describe(params);
  if (outcome.fault && outcome.retry) {
    await sleep(RETRY_BACKOFF_MS);
    outcome = await describe(params);
  }
  if (outcome.fault) return { allow: true, why: `skipped: ${outcome.fault}` };  // fail open on the last answer
  const a = outcome.answer;
  if (a.CaptchaCode === 1 && a.EvilLevel !== 100) return { allow: true, why: "verified" };
  return { allow: false, why: a.error ? `verification refused: ${a.error}` : `CaptchaCode ${a.CaptchaCode}` +
           (a.EvilLevel === 100 ? " EvilLevel 100" : "") };
}

function checkDrTicket(ticket) {
  const m = DR_TICKET.exec(ticket);
  if (!m) return { allow: false, why: "malformed DR ticket" };
  const appid = Number(m[2]);
  const age = Date.now() / 1000 - Number(m[3]);
  if (appid !== APP_ID && VARIANT !== "dr_any_appid") return { allow: false, why: `DR ticket for app ${appid}` };
  if (age < -60 || age > DR_MAX_AGE_S) return { allow: false, why: `stale DR ticket (${Math.round(age)} s)` };
  return { allow: true, why: "dr ticket" };
}

function verify(ticket, rand, userIp) {
  if (/^t?r?error_/.test(ticket)) return checkDrTicket(ticket);
  return verifyWithApi(ticket, rand, userIp);
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

function readJson(req) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on("end", () => {
      try {
        resolve(size <= MAX_BODY ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : null);
      } catch {
        resolve(null);
      }
    });
    req.on("error", () => resolve(null));
  });
}

async function openSession(req, res) {
  const body = await readJson(req);
  const c = body && typeof body.captcha === "object" && body.captcha ? body.captcha : {};
  if (typeof c.ticket !== "string" || !c.ticket) {
    return reply(res, 400, { error: "bad_request", detail: "captcha.ticket is required" });
  }
  const userIp = (req.socket.remoteAddress || "127.0.0.1").replace(/^::ffff:/, "");
  const started = Date.now();
  const verdict = await verify(c.ticket, String(c.rand || ""), userIp);
  const user = typeof body.user === "string" ? body.user : null;
  console.log(`session user=${user} ${verdict.allow ? "opened" : "refused"} (${verdict.why}) ${Date.now() - started} ms`);
  if (!verdict.allow) return reply(res, 422, { error: "captcha_rejected", detail: verdict.why });
  return reply(res, 201, { session: crypto.randomUUID(), user, captcha: verdict.why });
}

const server = http.createServer((req, res) => {
  const path = (req.url || "").split("?")[0];
  if (req.method === "GET" && path === "/healthz") {
    res.writeHead(200, { "Content-Type": "text/plain" });
    return res.end(`ok ${VARIANT}\n`);
  }
  if (req.method === "POST" && path === "/api/session") {
    return openSession(req, res).catch((e) => {
      console.error(e && e.stack || String(e));
      if (!res.headersSent) reply(res, 500, { error: "internal" });
    });
  }
  reply(res, 404, { error: "not_found" });
});

server.listen(Number(env.LISTEN_PORT || "8090"), "127.0.0.1", () => {
  console.log(`node_login listening on 127.0.0.1:${server.address().port} (variant ${VARIANT})`);
});
process.on("SIGTERM", () => process.exit(0));
