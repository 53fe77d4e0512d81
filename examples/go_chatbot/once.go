package main

// Acting once per event. Once.Do(key, fn) runs fn for the first copy of an event and reports
// whether this was it; copies seen within the TTL do nothing. Two implementations: claimOnce
// claims the key before the work (atomically; released again if the work fails), and
// checkThenMark (variant racy_dedupe) asks "seen?", does the work, then marks the key seen —
// copies delivered at the same moment all pass the question before the first one is marked.

import (
	"encoding/json"
	"os"
	"sync"
	"time"
)

type Once interface {
	Do(key string, fn func() error) (first bool, err error)
}

type seenKeys struct {
	mu  sync.Mutex
	ttl time.Duration
	at  map[string]time.Time
}

func newSeenKeys(ttl time.Duration) *seenKeys { return &seenKeys{ttl: ttl, at: map[string]time.Time{}} }

// has reports a key seen within the TTL (and forgets the expired ones now and then).
func (s *seenKeys) has(key string, now time.Time) bool {
	if len(s.at) > 10000 {
		for k, t := range s.at {
			if now.Sub(t) > s.ttl {
				delete(s.at, k)
			}
		}
	}
	t, ok := s.at[key]
	return ok && now.Sub(t) <= s.ttl
}

type claimOnce struct{ *seenKeys }

func (c claimOnce) Do(key string, fn func() error) (bool, error) {
	c.mu.Lock()
	now := time.Now()
	if c.has(key, now) {
		c.mu.Unlock()
		return false, nil
	}
	c.at[key] = now
	c.mu.Unlock()
	if err := fn(); err != nil {
		c.mu.Lock()
		delete(c.at, key)
		c.mu.Unlock()
		return true, err
	}
	return true, nil
}

type checkThenMark struct{ *seenKeys }

func (c checkThenMark) Do(key string, fn func() error) (bool, error) {
	c.mu.Lock()
	seen := c.has(key, time.Now())
	c.mu.Unlock()
	if seen {
		return false, nil
	}
	if err := fn(); err != nil {
		return true, err
	}
	c.mu.Lock()
	c.at[key] = time.Now()
	c.mu.Unlock()
	return true, nil
}

// Audit appends every event the bot acts on to a JSON-lines file, written and synced in groups
// every flushEvery (group commit): Record returns once its line is on disk.
type Audit struct {
	lines chan auditLine
}

type auditLine struct {
	data []byte
	done chan error
}

func OpenAudit(path string, flushEvery time.Duration) (*Audit, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	a := &Audit{lines: make(chan auditLine, 1024)}
	go a.flush(f, flushEvery)
	return a, nil
}

func (a *Audit) Record(command string, event []byte) error {
	data, _ := json.Marshal(map[string]any{"at": time.Now().UnixMilli(), "command": command, "event": json.RawMessage(event)})
	line := auditLine{append(data, '\n'), make(chan error, 1)}
	a.lines <- line
	return <-line.done
}

func (a *Audit) flush(f *os.File, every time.Duration) {
	tick := time.NewTicker(every)
	var batch []auditLine
	for {
		select {
		case l := <-a.lines:
			batch = append(batch, l)
		case <-tick.C:
			if len(batch) == 0 {
				continue
			}
			var err error
			for _, l := range batch {
				if _, werr := f.Write(l.data); werr != nil {
					err = werr
				}
			}
			if serr := f.Sync(); err == nil {
				err = serr
			}
			for _, l := range batch {
				l.done <- err
			}
			batch = batch[:0]
		}
	}
}
