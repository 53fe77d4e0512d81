package main

// The outbox: REST calls queued by the announce route and the webhook handlers, sent by a few
// workers through the command's pacer. Transient failures (transport errors, timeouts, 60008,
// 90994, 20005) and rate-limit answers (60007, 60011, 60018, 60019) are retried with exponential
// back-off (the retry goes through the pacer again); an expired UserSig is made anew. A message
// keeps its MsgRandom across retries, so Chat can tell a retry from a new message.

import (
	"context"
	"errors"
	"log"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

var (
	rateLimited = map[int]bool{60007: true, 60011: true, 60018: true, 60019: true}
	transient   = map[int]bool{60008: true, 90994: true, 20005: true}
	sigExpired  = map[int]bool{70001: true, 70052: true}
	errQueue    = errors.New("outbox full")
)

type Job struct {
	ID       int64
	Command  string
	Body     map[string]any
	Attempts int
	freshSig bool
}

type OutboxSettings struct {
	BaseQPS     float64
	RetryBase   time.Duration
	RetryMax    time.Duration
	MaxAttempts int
	Workers     int
	NewPacer    func(qps float64) Pacer
}

type Outbox struct {
	tim     *TIM
	set     OutboxSettings
	queue   chan *Job
	ids     atomic.Int64
	mu      sync.Mutex
	pacers  map[string]Pacer
	Sent    atomic.Int64
	Failed  atomic.Int64
	Retried atomic.Int64
}

func NewOutbox(tim *TIM, set OutboxSettings) *Outbox {
	return &Outbox{tim: tim, set: set, queue: make(chan *Job, 10000), pacers: map[string]Pacer{}}
}

func (o *Outbox) Start(ctx context.Context) {
	for i := 0; i < o.set.Workers; i++ {
		go func() {
			for {
				select {
				case job := <-o.queue:
					o.attempt(ctx, job)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
}

func (o *Outbox) Pacer(command string) Pacer {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.pacers[command]
	if !ok {
		p = o.set.NewPacer(o.set.BaseQPS)
		o.pacers[command] = p
	}
	return p
}

// Enqueue queues a call and returns at once.
func (o *Outbox) Enqueue(command string, body map[string]any) (int64, error) {
	job := &Job{ID: o.ids.Add(1), Command: command, Body: body}
	select {
	case o.queue <- job:
		return job.ID, nil
	default:
		return 0, errQueue
	}
}

// SendNow makes the call in the caller's goroutine, retries included, and returns when it is done.
func (o *Outbox) SendNow(ctx context.Context, command string, body map[string]any) {
	job := &Job{ID: o.ids.Add(1), Command: command, Body: body}
	for {
		retry := o.try(ctx, job)
		if retry < 0 {
			return
		}
		time.Sleep(retry)
	}
}

func (o *Outbox) attempt(ctx context.Context, job *Job) {
	retry := o.try(ctx, job)
	if retry < 0 {
		return
	}
	time.AfterFunc(retry, func() {
		select {
		case o.queue <- job:
		case <-ctx.Done():
		}
	})
}

// try makes one attempt; the delay before the next one, or -1 when the job is done (sent or given up).
func (o *Outbox) try(ctx context.Context, job *Job) time.Duration {
	pacer := o.Pacer(job.Command)
	if err := pacer.Wait(ctx); err != nil {
		return -1
	}
	job.Attempts++
	ans, err := o.tim.Call(ctx, job.Command, job.Body, job.freshSig)
	job.freshSig = false
	switch {
	case err == nil && ans.ErrorCode == 0:
		pacer.Succeeded()
		o.Sent.Add(1)
		return -1
	case err == nil && sigExpired[ans.ErrorCode]:
		job.freshSig = true
	case err == nil && rateLimited[ans.ErrorCode]:
		pacer.SlowDown()
	case err == nil && !transient[ans.ErrorCode]:
		log.Printf("job %d %s: given up: %d %s", job.ID, job.Command, ans.ErrorCode, ans.ErrorInfo)
		o.Failed.Add(1)
		return -1
	}
	if job.Attempts >= o.set.MaxAttempts {
		log.Printf("job %d %s: given up after %d attempts (last: %v %d)", job.ID, job.Command, job.Attempts, err, ans.ErrorCode)
		o.Failed.Add(1)
		return -1
	}
	o.Retried.Add(1)
	return o.backoff(job.Attempts)
}

func (o *Outbox) backoff(attempts int) time.Duration {
	d := o.set.RetryBase << (attempts - 1)
	if d > o.set.RetryMax || d <= 0 {
		d = o.set.RetryMax
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1)) // jitter: copies of a burst spread out
}

// Message is an openim/sendmsg body from the administrator to user; MsgRandom fixed per message.
func Message(to, text string) map[string]any {
	return map[string]any{"SyncOtherMachine": 2, "To_Account": to, "MsgRandom": rand.Uint32(),
		"MsgBody": textBody(text)}
}

// GroupMessage is a group_open_http_svc/send_group_msg body.
func GroupMessage(group, text string) map[string]any {
	return map[string]any{"GroupId": group, "Random": rand.Uint32(), "MsgBody": textBody(text)}
}
