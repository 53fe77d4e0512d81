"""The stand-in for ``TCaptcha.js``, served by the captcha mock at ``GET /TCaptcha.js``.

It defines ``TencentCaptcha`` with the documented constructor forms and ``show()`` / ``getTicket()``
/ ``destroy()``. ``show()`` "solves" the captcha by asking the mock for a real ticket
(``GET /ticket?aid=<appid>``, journaled as action ``ticket``) and calls back like the real script:
``{ret: 0, ticket, randstr, CaptchaAppId, appid, bizState}``. When that request fails (error status,
not JSON, timeout) it builds a disaster-recovery ticket itself, as the real script does:
``{ret: 0, ticket: "terror_1006_<appid>_<unix s>", randstr: "@…", errorCode: 1006,
errorMessage: "get_captcha_config_request_error"}``. ``{"ret": 2}`` from the route means the user closed it.
"""

from __future__ import annotations

import json

_SCRIPT = r"""/* chaos-harness stand-in for TCaptcha.js (Tencent Cloud Captcha web loader) */
(function (w) {
  "use strict";
  var BASE = __BASE__, TIMEOUT_MS = __TIMEOUT__, DR_PREFIX = __PREFIX__;

  function randstr() { return "@" + Math.random().toString(36).substr(2, 6); }
  function nowS() { return Math.floor(new Date().getTime() / 1000); }
  function isElement(x) { return !!x && typeof x === "object" && x.nodeType === 1; }

  function TencentCaptcha(a, b, c, d) {
    if (!(this instanceof TencentCaptcha)) { return new TencentCaptcha(a, b, c, d); }
    var self = this;
    if (isElement(a)) {
      if (b === undefined) {
        this.appid = a.getAttribute("data-appid");
        this.callback = w[a.getAttribute("data-cbfn")];
        this.options = {};
        var biz = a.getAttribute("data-biz-state");
        if (biz) { this.options.bizState = biz; }
      } else {
        this.appid = b; this.callback = c; this.options = d || {};
      }
      a.addEventListener("click", function () { self.show(); });
    } else {
      this.appid = a; this.callback = b; this.options = c || {};
    }
    if (!this.appid) { throw new Error("TencentCaptcha: CaptchaAppId is required"); }
    if (typeof this.callback !== "function") { throw new Error("TencentCaptcha: callback must be a function"); }
    this.appid = String(this.appid);
    this._last = null;
  }

  TencentCaptcha.prototype._done = function (res) {
    res.CaptchaAppId = this.appid;
    res.appid = this.appid;
    if (this.options.bizState !== undefined) { res.bizState = this.options.bizState; }
    if (res.ret === 0) { this._last = {CaptchaAppId: this.appid, ticket: res.ticket}; }
    var cb = this.callback;
    setTimeout(function () { cb(res); }, 0);
  };

  TencentCaptcha.prototype._disaster = function (why) {
    this._done({ret: 0, ticket: DR_PREFIX + "1006_" + this.appid + "_" + nowS(), randstr: randstr(),
                errorCode: 1006, errorMessage: "get_captcha_config_request_error", errorDetail: why});
  };

  TencentCaptcha.prototype.show = function () {
    var self = this, finished = false;
    if (typeof this.options.ready === "function") {
      try { this.options.ready({sdkView: {width: 360, height: 360}}); } catch (e) {}
    }
    var xhr = new XMLHttpRequest();
    function fail(why) { if (!finished) { finished = true; self._disaster(why); } }
    xhr.open("GET", BASE + "/ticket?aid=" + encodeURIComponent(this.appid), true);
    xhr.timeout = TIMEOUT_MS;
    xhr.onload = function () {
      if (finished) { return; }
      if (xhr.status !== 200) { return fail("status " + xhr.status); }
      var data;
      try { data = JSON.parse(xhr.responseText); } catch (e) { return fail("bad json"); }
      if (!data || typeof data !== "object") { return fail("bad json"); }
      finished = true;
      if (data.ret === 2) { return self._done({ret: 2, ticket: null}); }
      if (data.ret !== 0 || !data.ticket) { finished = false; return fail("ret " + data.ret); }
      self._done({ret: 0, ticket: data.ticket, randstr: data.randstr});
    };
    xhr.onerror = function () { fail("network error"); };
    xhr.ontimeout = function () { fail("timeout"); };
    xhr.send();
  };

  TencentCaptcha.prototype.getTicket = function () { return this._last; };
  TencentCaptcha.prototype.destroy = function () { this._last = null; };

  w.TencentCaptcha = TencentCaptcha;
})(window);
"""


def loader_script(base_url: str, timeout_ms: int, dr_prefix: str) -> str:
    return (_SCRIPT.replace("__BASE__", json.dumps(base_url))
            .replace("__TIMEOUT__", str(int(timeout_ms)))
            .replace("__PREFIX__", json.dumps(dr_prefix)))
