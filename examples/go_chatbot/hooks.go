package main

// The Chat webhook: POST {hook path}?SdkAppid=&CallbackCommand=&contenttype=json&ClientIP=&OptPlatform=
// [&Sign=&RequestTime=]. A callback is ours when SdkAppid is our app and, with a callback token,
// Sign = sha256_hex(token + RequestTime) with RequestTime within the allowed age; anything else is
// refused (HTTP 403, ActionStatus FAIL). A genuine one is answered at once with HTTP 200
// {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}: what it asks for goes to the outbox.
// Chat may deliver a callback more than once (and several copies at the same moment): each event
// is acted on once, keyed by MsgKey, by group and MsgSeq, or by the event's own content.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type HookSettings struct {
	SdkAppid      string
	Token         string
	Admin         string
	AppIDParam    string        // the URL parameter that names the app
	AppIDOptional bool          // a callback without it passes
	SignMaxAge    time.Duration // how far RequestTime may be from now
	BackoffShare  float64       // after Alert.RequestOverLimit: this share of the alarm's Limit ...
	BackoffHold   time.Duration // ... for this long
	InlineReply   bool          // send replies from the webhook handler instead of the outbox
}

type Hook struct {
	set      HookSettings
	outbox   *Outbox
	once     Once
	audit    *Audit
	presence *Presence
	Answered atomic.Int64
	Refused  atomic.Int64
	Repeats  atomic.Int64
}

type hookAnswer struct {
	ActionStatus string
	ErrorInfo    string
	ErrorCode    int
}

func answer(w http.ResponseWriter, status int, info string) {
	a := hookAnswer{ActionStatus: "OK"}
	if status != http.StatusOK {
		a = hookAnswer{ActionStatus: "FAIL", ErrorInfo: info, ErrorCode: 1}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(a)
}

// refusal says why a callback is not Chat's for our app ("" when it is).
func (h *Hook) refusal(q url.Values, now time.Time) string {
	if got, sent := q[h.set.AppIDParam]; sent && got[0] != h.set.SdkAppid || !sent && !h.set.AppIDOptional {
		return "not our SdkAppid"
	}
	if h.set.Token == "" {
		return ""
	}
	sign, at := q.Get("Sign"), q.Get("RequestTime")
	t, err := strconv.ParseInt(at, 10, 64)
	if sign == "" || err != nil {
		return "Sign and RequestTime required"
	}
	want := sha256.Sum256([]byte(h.set.Token + at))
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(want[:])), []byte(strings.ToLower(sign))) != 1 {
		return "bad Sign"
	}
	if age := now.Sub(time.Unix(t, 0)); age > h.set.SignMaxAge || -age > h.set.SignMaxAge {
		return "RequestTime too far from now"
	}
	return ""
}

func (h *Hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		answer(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	q := r.URL.Query()
	if why := h.refusal(q, time.Now()); why != "" {
		h.Refused.Add(1)
		answer(w, http.StatusForbidden, why)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var ev map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err != nil || dec.Decode(&ev) != nil {
		answer(w, http.StatusBadRequest, "body is not a JSON object")
		return
	}
	command := q.Get("CallbackCommand")
	if strings.Contains(command, ".CallbackBefore") || strings.Contains(command, ".CallbackPrev") {
		answer(w, http.StatusOK, "") // deliver unchanged: the bot does not moderate
		h.Answered.Add(1)
		return
	}
	first, err := h.once.Do(eventKey(command, ev, raw), func() error {
		if err := h.audit.Record(command, raw); err != nil {
			return err
		}
		h.act(r.Context(), command, ev)
		return nil
	})
	if err != nil {
		log.Printf("%s: %v", command, err)
		answer(w, http.StatusInternalServerError, "try again") // Chat may deliver it again
		return
	}
	if !first {
		h.Repeats.Add(1)
	}
	h.Answered.Add(1)
	answer(w, http.StatusOK, "")
}

// eventKey names one event whatever copy of it this is.
func eventKey(command string, ev map[string]any, raw []byte) string {
	switch {
	case command == "C2C.CallbackAfterSendMsg" && str(ev["MsgKey"]) != "":
		return "c2c " + str(ev["MsgKey"])
	case command == "Group.CallbackAfterSendMsg" && str(ev["MsgSeq"]) != "":
		return "group " + str(ev["GroupId"]) + " " + str(ev["MsgSeq"])
	case command == "State.StateChange" && str(ev["EventTime"]) != "":
		info, _ := ev["Info"].(map[string]any)
		return fmt.Sprintf("state %s %s %s", str(info["To_Account"]), str(info["Action"]), str(ev["EventTime"]))
	}
	sum := sha256.Sum256(append([]byte(command+"\n"), raw...))
	return command + " " + hex.EncodeToString(sum[:12])
}

func (h *Hook) act(ctx context.Context, command string, ev map[string]any) {
	switch command {
	case "State.StateChange":
		info, _ := ev["Info"].(map[string]any)
		user, action := str(info["To_Account"]), str(info["Action"])
		at, _ := strconv.ParseInt(str(ev["EventTime"]), 10, 64)
		if h.presence.Update(user, action, at) && action == "Login" {
			h.reply(ctx, "openim/sendmsg", Message(user, "Welcome back, "+user+"!"))
		}
	case "C2C.CallbackAfterSendMsg":
		from, to := str(ev["From_Account"]), str(ev["To_Account"])
		if to == h.set.Admin && from != h.set.Admin {
			h.reply(ctx, "openim/sendmsg", Message(from, "You said: "+firstText(ev["MsgBody"])))
		}
	case "Group.CallbackAfterSendMsg":
		if str(ev["From_Account"]) != h.set.Admin && strings.HasPrefix(firstText(ev["MsgBody"]), "/ping") {
			h.reply(ctx, "group_open_http_svc/send_group_msg", GroupMessage(str(ev["GroupId"]), "pong"))
		}
	case "Alert.RequestOverLimit":
		limit, err := strconv.ParseFloat(str(ev["Limit"]), 64)
		if err == nil && limit > 0 {
			command := str(ev["ServiceName"]) + "/" + str(ev["Command"])
			h.outbox.Pacer(command).Cap(limit*h.set.BackoffShare, h.set.BackoffHold)
			log.Printf("Alert.RequestOverLimit: %s paced at %.1f/s", command, limit*h.set.BackoffShare)
		}
	}
}

func (h *Hook) reply(ctx context.Context, command string, body map[string]any) {
	if h.set.InlineReply {
		h.outbox.SendNow(ctx, command, body)
		return
	}
	if _, err := h.outbox.Enqueue(command, body); err != nil {
		log.Printf("reply %s dropped: %v", command, err)
	}
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func firstText(body any) string {
	elems, _ := body.([]any)
	for _, e := range elems {
		m, _ := e.(map[string]any)
		if content, ok := m["MsgContent"].(map[string]any); ok && str(m["MsgType"]) == "TIMTextElem" {
			return str(content["Text"])
		}
	}
	return ""
}

// Presence keeps each user's newest state change: an older one (by EventTime) changes nothing.
type Presence struct {
	mu   sync.Mutex
	last map[string]int64
	on   map[string]bool
}

func NewPresence() *Presence { return &Presence{last: map[string]int64{}, on: map[string]bool{}} }

func (p *Presence) Update(user, action string, at int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.last[user]; ok && at < prev {
		return false
	}
	p.last[user], p.on[user] = at, action == "Login"
	return true
}
