package main

// The Tencent Chat (TIM) REST client: an administrator's UserSig made the way tls-sig-api-v2 makes
// one, and one call = POST {api}/v4/{servicename}/{command}?sdkappid&identifier&usersig&random&contenttype.

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

const userSigLifetime = 180 * 24 * time.Hour

// UserSig is TLS-sig-api-v2: base64url*(zlib(JSON)) whose TLS.sig is base64(HMAC-SHA256(key,
// "TLS.identifier:…\nTLS.sdkappid:…\nTLS.time:…\nTLS.expire:…\n")); base64 with + → *, / → -, = → _.
func UserSig(sdkappid int64, key, identifier string, now time.Time, lifetime time.Duration) string {
	t, expire := now.Unix(), int64(lifetime/time.Second)
	content := fmt.Sprintf("TLS.identifier:%s\nTLS.sdkappid:%d\nTLS.time:%d\nTLS.expire:%d\n", identifier, sdkappid, t, expire)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(content))
	doc, _ := json.Marshal(map[string]any{
		"TLS.ver": "2.0", "TLS.identifier": identifier, "TLS.sdkappid": sdkappid,
		"TLS.time": t, "TLS.expire": expire, "TLS.sig": base64.StdEncoding.EncodeToString(mac.Sum(nil)),
	})
	var packed bytes.Buffer
	w := zlib.NewWriter(&packed)
	w.Write(doc)
	w.Close()
	return strings.NewReplacer("+", "*", "/", "-", "=", "_").Replace(base64.StdEncoding.EncodeToString(packed.Bytes()))
}

// Answer is the part of every REST answer the bot reads (always HTTP 200; ErrorCode 0 is success).
type Answer struct {
	ActionStatus string
	ErrorCode    int
	ErrorInfo    string
}

type TIM struct {
	api      string
	sdkappid int64
	key      string
	admin    string
	http     *http.Client

	mu      sync.Mutex
	sig     string
	sigMade time.Time
}

func NewTIM(api string, sdkappid int64, key, admin string, timeout time.Duration) *TIM {
	return &TIM{api: strings.TrimRight(api, "/"), sdkappid: sdkappid, key: key, admin: admin,
		http: &http.Client{Timeout: timeout}}
}

// usersig is cached for half its lifetime; fresh forces a new one (after 70001 "expired").
func (c *TIM) usersig(fresh bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fresh || c.sig == "" || time.Since(c.sigMade) > userSigLifetime/2 {
		c.sigMade = time.Now()
		c.sig = UserSig(c.sdkappid, c.key, c.admin, c.sigMade, userSigLifetime)
	}
	return c.sig
}

// Call sends one REST command ("openim/sendmsg"); an error is a transport failure or a non-Chat answer.
func (c *TIM) Call(ctx context.Context, command string, body any, freshSig bool) (Answer, error) {
	q := url.Values{}
	q.Set("sdkappid", strconv.FormatInt(c.sdkappid, 10))
	q.Set("identifier", c.admin)
	q.Set("usersig", c.usersig(freshSig))
	q.Set("random", strconv.FormatUint(uint64(rand.Uint32()), 10))
	q.Set("contenttype", "json")
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.api+"/v4/"+command+"?"+q.Encode(), bytes.NewReader(raw))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	var a Answer
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return a, fmt.Errorf("not a Chat answer: %v", err)
	}
	return a, nil
}

func textBody(text string) []map[string]any {
	return []map[string]any{{"MsgType": "TIMTextElem", "MsgContent": map[string]string{"Text": text}}}
}
