// A Chat REST call from Node.js with a UserSig computed here by the official tls-sig-api-v2 package.
// Usage (a list of calls):
//   node chat.js '[{"url": "http://127.0.0.1:PORT", "sdkappid": 1400000000, "key": "...",
//                   "identifier": "administrator", "expire": 86400, "command": "im_open_login_svc/account_import",
//                   "body": {...}}, ...]'
// Prints one JSON line per call: the answer's JSON body.
"use strict";
const TLSSigAPIv2 = require("tls-sig-api-v2");

async function call(a) {
  const usersig = new TLSSigAPIv2.Api(a.sdkappid, a.key).genUserSig(a.identifier, a.expire ?? 86400);
  const query = new URLSearchParams({
    sdkappid: String(a.sdkappid), identifier: a.identifier, usersig,
    random: String(Math.floor(Math.random() * 4294967295)), contenttype: "json",
  });
  const res = await fetch(`${a.url}/v4/${a.command}?${query}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(a.body ?? {}),
  });
  console.log(JSON.stringify(await res.json()));
}

async function main() {
  for (const a of JSON.parse(process.argv[2])) await call(a);
}

main().catch((e) => { console.error(e && e.stack || String(e)); process.exit(2); });
