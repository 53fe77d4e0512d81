// DescribeCaptchaResult through the official tencentcloud-sdk-nodejs, unmodified, pointed at a local
// endpoint the documented way (profile.httpProfile.endpoint + protocol). Usage (a list of calls):
//   node captcha.js '[{"endpoint": "127.0.0.1:PORT", "secretId": "...", "secretKey": "...",
//                      "action": "DescribeCaptchaResult", "params": {...}}, ...]'
// Prints one JSON line per call: {"ok": true, "response": {...}} or {"ok": false, "code", "message", "requestId"}.
"use strict";
const tencentcloud = require("tencentcloud-sdk-nodejs");

const Client = tencentcloud.captcha.v20190722.Client;

async function call(a) {
  const client = new Client({
    credential: { secretId: a.secretId, secretKey: a.secretKey },
    region: "",
    profile: { httpProfile: { endpoint: a.endpoint, protocol: a.protocol || "http://", reqTimeout: 10 } },
  });
  try {
    const response = await client[a.action || "DescribeCaptchaResult"](a.params);
    console.log(JSON.stringify({ ok: true, response }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, code: e.code || null, message: e.message, requestId: e.requestId || null }));
  }
}

async function main() {
  for (const a of JSON.parse(process.argv[2])) await call(a);
}

main().catch((e) => { console.error(e && e.stack || String(e)); process.exit(2); });
