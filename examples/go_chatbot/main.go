// A Tencent Chat bot in Go (standard library only): it receives Chat webhooks on its own route,
// greets users who log in, answers messages sent to it, answers "/ping" in groups, announces
// messages on request (POST /v1/announce), and slows its REST calls down after Chat's
// Alert.RequestOverLimit. Reference integration of the chaos harness (examples/go_chatbot/README.md).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envDuration(name, def string) time.Duration {
	d, err := time.ParseDuration(env(name, def))
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	return d
}

func envFloat(name, def string) float64 {
	f, err := strconv.ParseFloat(env(name, def), 64)
	if err != nil || f <= 0 {
		log.Fatalf("%s: expected a positive number, got %q", name, env(name, def))
	}
	return f
}

// variant: the bug this build of the bot has (BOT_VARIANT; "correct" or "" for none).
type variant struct {
	appIDParam    string
	appIDOptional bool
	signMaxAge    time.Duration
	inlineReply   bool
	newPacer      func(float64) Pacer
	newOnce       func(*seenKeys) Once
}

var variants = map[string]func(v *variant){
	"correct": func(v *variant) {},
	// reads the REST API's spelling SdkAppID, which callbacks never carry, so "absent" had to pass
	"appid_unchecked": func(v *variant) { v.appIDParam, v.appIDOptional = "SdkAppID", true },
	// the allowed RequestTime age written in milliseconds (like EventTime) but read as seconds: 16 h
	"replayable": func(v *variant) { v.signMaxAge = 60_000 * time.Second },
	// greets from the webhook handler: a slow REST API holds Chat's webhook past its 2 s timeout
	"inline_reply": func(v *variant) { v.inlineReply = true },
	// a ticker made at the base rate: the alarm's lower rate is recorded but never applied
	"ticker_pacer": func(v *variant) { v.newPacer = func(q float64) Pacer { return newTickerPacer(q) } },
	// "seen?", act, then "mark seen": copies delivered together are all acted on
	"racy_dedupe": func(v *variant) { v.newOnce = func(s *seenKeys) Once { return checkThenMark{s} } },
}

func chooseVariant(name string) variant {
	v := variant{appIDParam: "SdkAppid", signMaxAge: envDuration("SIGN_MAX_AGE", "60s"),
		newPacer: func(q float64) Pacer { return newSlotPacer(q) },
		newOnce:  func(s *seenKeys) Once { return claimOnce{s} }}
	if name == "" {
		name = "correct"
	}
	apply, ok := variants[name]
	if !ok {
		log.Fatalf("BOT_VARIANT: unknown variant %q", name)
	}
	apply(&v)
	return v
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	name := env("BOT_VARIANT", "correct")
	v := chooseVariant(name)
	sdkappid, err := strconv.ParseInt(env("TIM_SDKAPPID", ""), 10, 64)
	if err != nil {
		log.Fatalf("TIM_SDKAPPID: expected the app's SDKAppID, got %q", os.Getenv("TIM_SDKAPPID"))
	}
	key := env("TIM_SECRET", "")
	if key == "" {
		log.Fatal("TIM_SECRET: the UserSig key is required")
	}
	admin := env("TIM_ADMIN", "administrator")
	tim := NewTIM(env("TIM_API", "https://console.tim.qq.com"), sdkappid, key, admin, envDuration("REST_TIMEOUT", "3s"))
	outbox := NewOutbox(tim, OutboxSettings{
		BaseQPS: envFloat("SEND_QPS", "50"), RetryBase: envDuration("RETRY_BASE", "300ms"),
		RetryMax: envDuration("RETRY_MAX", "2s"), MaxAttempts: 8, Workers: 4, NewPacer: v.newPacer,
	})
	auditPath := env("AUDIT_LOG", filepath.Join(os.TempDir(), fmt.Sprintf("go-chatbot-%d.jsonl", os.Getpid())))
	audit, err := OpenAudit(auditPath, 20*time.Millisecond)
	if err != nil {
		log.Fatalf("AUDIT_LOG: %v", err)
	}
	hook := &Hook{
		set: HookSettings{SdkAppid: strconv.FormatInt(sdkappid, 10), Token: env("TIM_CALLBACK_TOKEN", ""), Admin: admin,
			AppIDParam: v.appIDParam, AppIDOptional: v.appIDOptional, SignMaxAge: v.signMaxAge,
			BackoffShare: 0.5, BackoffHold: envDuration("BACKOFF_HOLD", "60s"), InlineReply: v.inlineReply},
		outbox: outbox, once: v.newOnce(newSeenKeys(10 * time.Minute)), audit: audit, presence: NewPresence(),
	}

	mux := http.NewServeMux()
	mux.Handle(env("BOT_HOOK_PATH", "/hooks/tim"), hook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST /v1/announce", announce(outbox))
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"variant": name, "answered": hook.Answered.Load(),
			"refused": hook.Refused.Load(), "repeats": hook.Repeats.Load(), "sent": outbox.Sent.Load(),
			"failed": outbox.Failed.Load(), "retried": outbox.Retried.Load(),
			"sendmsg_rate": outbox.Pacer("openim/sendmsg").Rate()})
	})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	outbox.Start(ctx)
	addr := env("BOT_ADDR", "127.0.0.1:8080")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("BOT_ADDR: %v", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("go_chatbot (%s) on %s, webhook %s, audit %s", name, addr, env("BOT_HOOK_PATH", "/hooks/tim"), auditPath)
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// announce: POST /v1/announce {"user": "...", "message": "..."} queues an openim/sendmsg: 202 {"id": n}.
func announce(outbox *Outbox) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct{ User, Message string }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil ||
			strings.TrimSpace(req.User) == "" || req.Message == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "expected {\"user\": ..., \"message\": ...}"})
			return
		}
		id, err := outbox.Enqueue("openim/sendmsg", Message(req.User, req.Message))
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]int64{"id": id})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
