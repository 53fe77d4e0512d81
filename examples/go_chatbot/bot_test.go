package main

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUserSigIsTLSSigAPIv2(t *testing.T) {
	now := time.Unix(1700000000, 0)
	sig := UserSig(1400000000, "k3y", "administrator", now, time.Hour)
	if strings.ContainsAny(sig, "+/=") {
		t.Fatalf("not the URL-safe alphabet: %s", sig)
	}
	packed, err := base64.StdEncoding.DecodeString(strings.NewReplacer("*", "+", "-", "/", "_", "=").Replace(sig))
	if err != nil {
		t.Fatal(err)
	}
	r, err := zlib.NewReader(bytes.NewReader(packed))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(r)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	content := "TLS.identifier:administrator\nTLS.sdkappid:1400000000\nTLS.time:1700000000\nTLS.expire:3600\n"
	mac := hmac.New(sha256.New, []byte("k3y"))
	mac.Write([]byte(content))
	if doc["TLS.sig"] != base64.StdEncoding.EncodeToString(mac.Sum(nil)) || doc["TLS.ver"] != "2.0" ||
		doc["TLS.sdkappid"] != float64(1400000000) || doc["TLS.expire"] != float64(3600) {
		t.Fatalf("unexpected document %v", doc)
	}
}

func signed(token string, at time.Time, appid string) url.Values {
	ts := strconv.FormatInt(at.Unix(), 10)
	sum := sha256.Sum256([]byte(token + ts))
	return url.Values{"SdkAppid": {appid}, "Sign": {hex.EncodeToString(sum[:])}, "RequestTime": {ts}}
}

func TestRefusal(t *testing.T) {
	h := &Hook{set: HookSettings{SdkAppid: "1400000000", Token: "tok", AppIDParam: "SdkAppid", SignMaxAge: time.Minute}}
	now := time.Now()
	cases := map[string]url.Values{
		"":                              signed("tok", now, "1400000000"),
		"not our SdkAppid":              signed("tok", now, "1400000001"),
		"bad Sign":                      signed("other", now, "1400000000"),
		"RequestTime too far from now":  signed("tok", now.Add(-5*time.Minute), "1400000000"),
		"Sign and RequestTime required": {"SdkAppid": {"1400000000"}},
	}
	for want, q := range cases {
		if got := h.refusal(q, now); got != want {
			t.Errorf("%v: got %q, want %q", q, got, want)
		}
	}
}

func actions(once Once) int64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			once.Do("k", func() error { n.Add(1); time.Sleep(20 * time.Millisecond); return nil })
		}()
	}
	wg.Wait()
	return n.Load()
}

func TestClaimOnceActsOnceUnderConcurrency(t *testing.T) {
	if n := actions(claimOnce{newSeenKeys(time.Minute)}); n != 1 {
		t.Fatalf("acted %d times", n)
	}
	if n := actions(checkThenMark{newSeenKeys(time.Minute)}); n < 2 { // the racy_dedupe bug, on purpose
		t.Fatalf("checkThenMark acted %d times: the race it stands for did not show", n)
	}
}

func TestSlotPacerHonoursTheAlarmCeiling(t *testing.T) {
	p := newSlotPacer(1000)
	p.Cap(20, time.Minute)
	start := time.Now()
	for i := 0; i < 5; i++ {
		p.Wait(context.Background())
	}
	if elapsed := time.Since(start); elapsed < 150*time.Millisecond { // 5 slots at 20/s: >= 4 × 50 ms
		t.Fatalf("5 calls in %v at a 20/s ceiling", elapsed)
	}
}
