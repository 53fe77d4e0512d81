package main

// Pacing of REST calls, one pacer per command ("openim/sendmsg"). Two ways to go slower than the
// base rate: a ceiling after Alert.RequestOverLimit (a share of the alarm's Limit, held a while)
// and a soft rate, halved on each rate-limit error and raised again by half on each success.

import (
	"context"
	"math"
	"sync"
	"time"
)

type Pacer interface {
	Wait(ctx context.Context) error
	Cap(qps float64, hold time.Duration) // the alarm: at most qps for hold
	SlowDown()                           // a rate-limit answer
	Succeeded()
	Rate() float64
}

// slotPacer hands out send slots 1/rate apart, the rate read afresh for every slot.
type slotPacer struct {
	mu         sync.Mutex
	base, soft float64
	ceiling    float64
	until      time.Time
	next       time.Time
}

func newSlotPacer(qps float64) *slotPacer { return &slotPacer{base: qps, soft: qps} }

func (p *slotPacer) rate(now time.Time) float64 {
	r := math.Min(p.base, p.soft)
	if p.ceiling > 0 && now.Before(p.until) {
		r = math.Min(r, p.ceiling)
	}
	return r
}

func (p *slotPacer) Rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate(time.Now())
}

// respace: the slot already handed out was at the old pace.
func (p *slotPacer) respace(now time.Time) {
	if n := now.Add(time.Duration(float64(time.Second) / p.rate(now))); n.After(p.next) {
		p.next = n
	}
}

func (p *slotPacer) Cap(qps float64, hold time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.ceiling > 0 && now.Before(p.until) {
		qps = math.Min(qps, p.ceiling)
	}
	p.ceiling, p.until = math.Max(0.2, qps), now.Add(hold)
	p.respace(now)
}

func (p *slotPacer) SlowDown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.soft = math.Max(0.5, p.rate(now)/2)
	p.respace(now)
}

func (p *slotPacer) Succeeded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.soft = math.Min(p.base, p.soft*1.5)
}

func (p *slotPacer) Wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	p.next = slot.Add(time.Duration(float64(time.Second) / p.rate(now)))
	p.mu.Unlock()
	if d := time.Until(slot); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// tickerPacer (variant ticker_pacer) paces with a time.Ticker made at the base rate. Cap and
// SlowDown record the new rate, but nothing resets the ticker: the bot keeps its pace.
type tickerPacer struct {
	mu   sync.Mutex
	qps  float64
	tick *time.Ticker
}

func newTickerPacer(qps float64) *tickerPacer {
	return &tickerPacer{qps: qps, tick: time.NewTicker(time.Duration(float64(time.Second) / qps))}
}

func (p *tickerPacer) Wait(ctx context.Context) error {
	select {
	case <-p.tick.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *tickerPacer) Cap(qps float64, hold time.Duration) { p.set(math.Min(p.Rate(), qps)) }
func (p *tickerPacer) SlowDown()                           { p.set(p.Rate() / 2) }
func (p *tickerPacer) Succeeded()                          {}

func (p *tickerPacer) set(qps float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.qps = math.Max(0.5, qps)
}

func (p *tickerPacer) Rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.qps
}
