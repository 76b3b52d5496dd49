package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// findings collects unexpected observations made during the run.
type findings struct {
	mu   sync.Mutex
	list []string
}

func (f *findings) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if len(f.list) < 200 {
		f.list = append(f.list, msg)
	}
	fmt.Printf("  finding: %s\n", msg)
}

// note prints an observation that is not a failure.
func (s *stack) note(format string, args ...any) {
	fmt.Printf("  note: %s\n", fmt.Sprintf(format, args...))
}

func (f *findings) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.list)
}

func (f *findings) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "  " + strings.Join(f.list, "\n  ") + "\n"
}

// result is what the load did, for the checks.
type result struct {
	ops         atomic.Int64 // HTTP commands sent (logical, retries excluded)
	answered    atomic.Int64 // state changes answered 2xx (an idempotent replay not counted)
	resolved    atomic.Int64 // state changes whose answer was lost, found applied in PostgreSQL
	retries     atomic.Int64 // transport errors retried
	unavailable atomic.Int64 // 503 answers retried
	replays     atomic.Int64 // deliberate idempotent retries answered as replays
	kafkaSent   int          // distinct kafka commands produced
	validCmds   map[string]bool
	bad         map[string]string // value of each deliberately bad command → its dlq_reason
	badRetried  map[string]bool   // bad commands whose produce was retried (a second copy is possible)
	huge        *hugeCommand      // the valid command with a huge traceparent (hugeheader.go); also in validCmds
	faultsDone  int

	mu        sync.Mutex
	companies map[int]string // company index → id, once created
	latest    int            // index of the company created last
	rejected  []rejection    // requests the writers must refuse
	poison    []*poisonMsg   // injected on the events topic, in order
	faults    []faultRecord  // injected faults, in order
}

// rejection is a request the writer must refuse inside its transaction
// (a state, version or uniqueness conflict): its distinctive value must
// appear in no event, on the topic or in the writer's event log.
type rejection struct {
	what  string // "duplicate create", …
	field string // "email", "nombre" or "motivo_rechazo"
	value string
}

// faultRecord is one injected fault: when it was issued and when what it
// stopped was running again (zero if it never was).
type faultRecord struct {
	n        int
	kind     string
	victim   string
	at, back time.Time
	// standby is the writer that must take the relay over while a frozen
	// leader (freeze-relay) is stopped; "" when it was not up throughout.
	standby string
}

func (r *result) setCompany(i int, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.companies[i] = id
	r.latest = i
}

// latestCompany returns the id of the company created last ("" if none).
func (r *result) latestCompany() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.companies[r.latest]
}

func (r *result) reject(what, field, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected = append(r.rejected, rejection{what, field, value})
}

func (r *result) addPoison(p *poisonMsg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.poison = append(r.poison, p)
}

func (r *result) markPoisonSent(p *poisonMsg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.sent = true
}

func (r *result) markPoisonRetried(p *poisonMsg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.retried = true
}

func (r *result) addFault(f faultRecord) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, f)
	return len(r.faults) - 1
}

func (r *result) faultBack(i int, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults[i].back = at
}

// httpc is the load's client: short timeouts so that a killed process is
// noticed quickly; transport errors are retried by the caller.
var httpc = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

type answer struct {
	status   int
	replayed bool
	c        struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
	}
	body string
}

// send sends one request to writer w.
func send(ctx context.Context, w *service, method, path string, body any, hdr map[string]string) (answer, error) {
	var a answer
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+w.addr+path, rd)
	if err != nil {
		return a, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return a, err
	}
	a.status = resp.StatusCode
	a.replayed = resp.Header.Get("Idempotent-Replayed") == "true"
	a.body = string(data)
	if resp.StatusCode/100 == 2 {
		_ = json.Unmarshal(data, &a.c)
	}
	return a, nil
}

// client sends commands to the two writers, retrying transport errors and
// 503 answers (on the other writer) for up to two minutes.
type client struct {
	s   *stack
	res *result
	n   atomic.Uint64
}

// do returns the answer and whether a transport error or a 503 happened
// first (the outcome of that earlier attempt is unknown: a 503 can come
// from a failure after the commit).
func (c *client) do(ctx context.Context, method, path string, body any, hdr map[string]string) (answer, bool, error) {
	deadline := time.Now().Add(2 * time.Minute)
	ambiguous := false
	backoff := 50 * time.Millisecond
	for {
		w := c.s.writers[c.n.Add(1)%uint64(len(c.s.writers))]
		a, err := send(ctx, w, method, path, body, hdr)
		if err == nil && a.status != http.StatusServiceUnavailable {
			return a, ambiguous, nil
		}
		ambiguous = true
		if err != nil {
			c.res.retries.Add(1)
		} else {
			c.res.unavailable.Add(1)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return a, ambiguous, fmt.Errorf("%s %s: no answer within 2 minutes: status %d, error %v", method, path, a.status, err)
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
}

// pgVersion reads the company's version in PostgreSQL (0 when absent).
func (s *stack) pgVersion(ctx context.Context, id string) int64 {
	var v int64
	_ = s.db.QueryRow(ctx, `SELECT version FROM companias WHERE id = $1`, id).Scan(&v)
	return v
}

// company drives the seeded scenario of company i.
func (c *client) company(ctx context.Context, i int) {
	s, res := c.s, c.res
	r := rand.New(rand.NewPCG(s.o.seed, uint64(i)))
	f := s.findings
	body := map[string]string{
		"nombre":         fmt.Sprintf("Chaos %06d", i),
		"email":          fmt.Sprintf("c%06d@chaos.example.com", i),
		"identificacion": fmt.Sprintf("CH-%06d", i),
	}
	key := map[string]string{"Idempotency-Key": fmt.Sprintf("crear-%d-%d", s.o.seed, i)}
	res.ops.Add(1)
	a, _, err := c.do(ctx, http.MethodPost, "/v1/companias", body, key)
	if err != nil || a.status != http.StatusCreated || a.c.Version != 1 {
		f.add("company %d: create: status %d v%d, error %v, body %.200s", i, a.status, a.c.Version, err, a.body)
		return
	}
	res.answered.Add(1)
	id := a.c.ID
	res.setCompany(i, id)
	version := int64(1)
	if r.IntN(100) < 15 { // a deliberate idempotent retry replays the answer
		res.ops.Add(1)
		b, _, err := c.do(ctx, http.MethodPost, "/v1/companias", body, key)
		if err != nil || b.status != http.StatusCreated || !b.replayed || b.c.ID != id {
			f.add("company %d: idempotent retry: status %d replayed %v id %s, error %v", i, b.status, b.replayed, b.c.ID, err)
		} else {
			res.replays.Add(1)
		}
	}
	if r.IntN(100) < 10 { // a duplicate (nombre, identificacion) is a conflict
		res.ops.Add(1)
		dup := map[string]string{"nombre": body["nombre"], "email": "otro" + body["email"], "identificacion": body["identificacion"]}
		res.reject("duplicate create", "email", dup["email"])
		b, _, err := c.do(ctx, http.MethodPost, "/v1/companias", dup, map[string]string{"Idempotency-Key": key["Idempotency-Key"] + "-dup"})
		if err != nil || b.status != http.StatusConflict {
			f.add("company %d: duplicate: status %d (want 409), error %v, body %.200s", i, b.status, err, b.body)
		}
	}
	path := "/v1/companias/" + id
	// mutate sends a state change conditioned on the known version; an
	// answer lost to a transport error is resolved through PostgreSQL.
	mutate := func(what, method, p string, b any) bool {
		res.ops.Add(1)
		a, ambiguous, err := c.do(ctx, method, p, b, map[string]string{"If-Match": fmt.Sprintf(`"%d"`, version)})
		switch {
		case err != nil:
			f.add("company %d: %s: %v", i, what, err)
			return false
		case a.status == http.StatusOK && a.c.Version == version+1:
			version++
			res.answered.Add(1)
			return true
		case ambiguous && (a.status == http.StatusPreconditionFailed || a.status == http.StatusConflict) && s.pgVersion(ctx, id) == version+1:
			version++
			res.resolved.Add(1)
			return true
		default:
			f.add("company %d: %s at v%d: status %d v%d (ambiguous %v), body %.200s", i, what, version, a.status, a.c.Version, ambiguous, a.body)
			return false
		}
	}
	if r.IntN(100) < 40 {
		mutate("PATCH nombre", http.MethodPatch, path, map[string]string{"nombre": body["nombre"] + " (actualizada)"})
	}
	if r.IntN(100) < 20 {
		mutate("PATCH email", http.MethodPatch, path, map[string]string{"email": fmt.Sprintf("nuevo%06d@chaos.example.com", i)})
	}
	if version >= 2 && r.IntN(100) < 10 { // a change conditioned on an old version is refused
		res.ops.Add(1)
		stale := map[string]string{"nombre": fmt.Sprintf("Obsoleta %06d", i)}
		res.reject("stale If-Match", "nombre", stale["nombre"])
		b, _, err := c.do(ctx, http.MethodPatch, path, stale, map[string]string{"If-Match": fmt.Sprintf(`"%d"`, version-1)})
		if err != nil || b.status != http.StatusPreconditionFailed {
			f.add("company %d: PATCH with If-Match v%d at v%d: status %d (want 412), error %v, body %.200s", i, version-1, version, b.status, err, b.body)
		}
	}
	switch x := r.IntN(100); {
	case x < 35:
		if mutate("aprobar", http.MethodPost, path+"/aprobar", nil) && r.IntN(100) < 20 {
			res.ops.Add(1)
			motivo := fmt.Sprintf("Tarde %06d", i)
			res.reject("rechazar an APROBADA", "motivo_rechazo", motivo)
			b, _, err := c.do(ctx, http.MethodPost, path+"/rechazar", map[string]string{"motivo": motivo}, nil)
			if err != nil || b.status != http.StatusConflict {
				f.add("company %d: rechazar an APROBADA: status %d (want 409), error %v", i, b.status, err)
			}
		}
	case x < 65:
		if mutate("rechazar", http.MethodPost, path+"/rechazar", map[string]string{"motivo": fmt.Sprintf("Documentación incompleta %d", i)}) && r.IntN(100) < 20 {
			res.ops.Add(1)
			nombre := fmt.Sprintf("Rechazada %06d", i)
			res.reject("PATCH a RECHAZADA", "nombre", nombre)
			b, _, err := c.do(ctx, http.MethodPatch, path, map[string]string{"nombre": nombre}, nil)
			if err != nil || b.status != http.StatusConflict {
				f.add("company %d: PATCH a RECHAZADA: status %d (want 409), error %v", i, b.status, err)
			}
		}
	}
}

// drive runs the load, the Kafka commands and the faults until o.commands
// HTTP commands were sent and every fault was injected.
func (s *stack) drive(ctx context.Context) (*result, error) {
	res := &result{validCmds: map[string]bool{}, bad: map[string]string{}, badRetried: map[string]bool{},
		companies: map[int]string{}}
	c := &client{s: s, res: res}
	target := int64(s.o.commands)

	// Fault points: seeded fractions of the HTTP commands.
	kinds := make([]string, s.o.nfaults)
	for i := range kinds {
		kinds[i] = s.o.faults[i%len(s.o.faults)]
	}
	s.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	points := make([]int64, len(kinds))
	for i := range points {
		points[i] = int64(float64(target) * (0.05 + 0.85*s.rng.Float64()))
	}
	slices.Sort(points)

	var wg sync.WaitGroup
	// The supervisor restarts a process that died without being asked to.
	supCtx, stopSup := context.WithCancel(ctx)
	defer stopSup()
	wg.Go(func() {
		for {
			select {
			case <-supCtx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			for _, sv := range s.all() {
				if !sv.op.TryLock() {
					continue // a fault is handling it
				}
				if !sv.running() {
					s.findings.add("%s exited unexpectedly: %v\n%s", sv.name, sv.exitErr(), sv.lastLines(20))
					if err := sv.startRetry(ctx, s.note); err != nil {
						s.findings.add("restart %s: %v", sv.name, err)
					}
				}
				sv.op.Unlock()
			}
		}
	})

	// Faults: the load waits at each fault point until the fault is issued;
	// the restarts run while the load goes on.
	var issued atomic.Int64
	gate := func() {
		for {
			i := issued.Load()
			if i >= int64(len(points)) || res.ops.Load() < points[i] || ctx.Err() != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var restarts sync.WaitGroup
	faultsDone := make(chan int, 1)
	go func() {
		n := 0
		defer func() { faultsDone <- n }()
		for i, p := range points {
			for res.ops.Load() < p && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			if ctx.Err() != nil {
				return
			}
			desc := s.inject(ctx, res, kinds[i], &restarts, i+1)
			issued.Add(1)
			n++
			fmt.Printf("fault %2d at command %5d: %-12s %s\n", i+1, res.ops.Load(), kinds[i], desc)
		}
	}()

	// Kafka commands: valid ones (a few sent twice) and deliberately bad ones.
	nValid := max(10, s.o.commands/20)
	nBad := max(3, s.o.commands/150)
	var msgs []kafka.Message
	for k := range nValid {
		b, _ := json.Marshal(companiacmd.CrearCompania{
			ID: fmt.Sprintf("chaos-cmd-%d-%d", s.o.seed, k),
			Data: companiacmd.CrearCompaniaData{
				Nombre:         fmt.Sprintf("Kafka %06d", k),
				Email:          fmt.Sprintf("k%06d@chaos.example.com", k),
				Identificacion: fmt.Sprintf("KCMD-%06d", k),
			},
		})
		res.validCmds[string(b)] = true
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("k%d", k)), Value: b})
		if k%7 == 0 { // the same command again: creates nothing
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("k%d", k)), Value: b})
		}
	}
	for k := range nBad {
		var v, reason string
		switch k % 3 {
		case 0:
			v = fmt.Sprintf(`{"id": "chaos-bad-%d-%d", "data": {"nombre": `, s.o.seed, k) // malformed JSON
			reason = deadletter.ReasonMalformed
		case 1:
			v = fmt.Sprintf(`{"id": "chaos-bad-%d-%d", "data": {"nombre": "Sin Correo %d", "email": "no-es-un-correo", "identificacion": "KBAD-%d"}}`, s.o.seed, k, k, k)
			reason = deadletter.ReasonInvalid
		default:
			continue // conflicts are added after the shuffle
		}
		res.bad[v] = reason
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("bad%d", k)), Value: []byte(v)})
	}
	s.rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	// A valid command's id reused with another body: a conflict. It goes on
	// the original's partition (same key), after it.
	for k := 2; k < nBad; k += 3 {
		orig := s.rng.IntN(nValid)
		b, _ := json.Marshal(companiacmd.CrearCompania{
			ID: fmt.Sprintf("chaos-cmd-%d-%d", s.o.seed, orig),
			Data: companiacmd.CrearCompaniaData{
				Nombre:         fmt.Sprintf("Kafka %06d", orig),
				Email:          fmt.Sprintf("otro%06d-%d@chaos.example.com", orig, k),
				Identificacion: fmt.Sprintf("KCMD-%06d", orig),
			},
		})
		res.bad[string(b)] = deadletter.ReasonConflict
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("k%d", orig)), Value: b})
	}
	// The huge-traceparent command, at a seeded point of the first half
	// (its own stream: the other draws stay as they were), so that most of
	// the load comes after it.
	huge := buildHugeCommand(s.o.seed)
	res.huge = huge
	res.validCmds[string(huge.msg.Value)] = true
	hr := rand.New(rand.NewPCG(s.o.seed, 0x7ace+1))
	msgs = slices.Insert(msgs, len(msgs)/5+hr.IntN(len(msgs)*3/10+1), huge.msg)
	res.kafkaSent = nValid + nBad + 1
	wg.Go(func() {
		w := &kafka.Writer{Addr: kafka.TCP(s.broker.addr), Topic: commandsTopic, Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, WriteTimeout: 10 * time.Second,
			// One attempt per call: every retry is ours and recorded.
			MaxAttempts: 1, Transport: localTransport()}
		defer w.Close()
		big := hugeWriter(s.broker.addr)
		defer big.Close()
		for j, m := range msgs {
			isHuge := len(m.Headers) > 0
			wr := w
			if isHuge {
				wr = big
			}
			// Spread the commands over the HTTP load.
			for res.ops.Load() < int64(j)*target/int64(len(msgs)) {
				select {
				case <-ctx.Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			deadline := time.Now().Add(2 * time.Minute)
			for {
				err := wr.WriteMessages(ctx, m)
				if err == nil {
					if isHuge {
						res.mu.Lock()
						huge.sent = true
						res.mu.Unlock()
					}
					break
				}
				if isHuge {
					res.mu.Lock()
					huge.retried = true
					res.mu.Unlock()
				}
				if _, bad := res.bad[string(m.Value)]; bad {
					res.mu.Lock()
					res.badRetried[string(m.Value)] = true
					res.mu.Unlock()
				}
				if time.Now().After(deadline) || ctx.Err() != nil {
					what := "a kafka command"
					if isHuge {
						what = "the huge-traceparent command"
					}
					s.findings.add("produce %s: %v", what, err)
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	})

	// Poison on the events topic, spread over the load like the commands.
	wg.Go(func() { s.producePoison(ctx, res, target) })

	// HTTP load.
	var next atomic.Int64
	var lwg sync.WaitGroup
	for range s.o.workers {
		lwg.Go(func() {
			for ctx.Err() == nil && res.ops.Load() < target {
				gate()
				c.company(ctx, int(next.Add(1)))
			}
		})
	}
	lwg.Wait()
	res.faultsDone = <-faultsDone
	restarts.Wait()
	stopSup()
	wg.Wait()
	// Every process runs again after the faults.
	for _, sv := range s.all() {
		if !sv.running() {
			if err := sv.start(ctx); err != nil {
				return nil, err
			}
		}
	}
	return res, ctx.Err()
}

// inject issues one fault; the restart of what it stopped runs in the
// background (tracked by restarts) while holding the service's op lock. It
// returns a description.
func (s *stack) inject(ctx context.Context, res *result, kind string, restarts *sync.WaitGroup, n int) string {
	pick := func(l []*service) *service { return l[s.rng.IntN(len(l))] }
	record := func(sv *service) int {
		return res.addFault(faultRecord{n: n, kind: kind, victim: sv.name, at: time.Now()})
	}
	later := func(sv *service, rec int, what string, f func()) {
		restarts.Go(func() {
			defer sv.op.Unlock()
			t0 := time.Now()
			f()
			if err := sv.startRetry(ctx, s.note); err != nil {
				s.findings.add("fault %d: restart %s after %s: %v", n, sv.name, kind, err)
				return
			}
			res.faultBack(rec, time.Now())
			fmt.Printf("         fault %2d: %s %s, restarted after %s\n", n, sv.name, what, time.Since(t0).Round(time.Millisecond))
		})
	}
	kill := func(sv *service) string {
		sv.op.Lock()
		rec := record(sv)
		sv.signal(syscall.SIGKILL, true)
		later(sv, rec, "killed", func() {
			if _, ok := sv.waitExit(10 * time.Second); !ok {
				s.findings.add("%s still running 10s after SIGKILL", sv.name)
			}
		})
		return sv.name + " SIGKILL"
	}
	term := func(sv *service) string {
		sv.op.Lock()
		rec := record(sv)
		sv.signal(syscall.SIGTERM, true)
		t0 := time.Now()
		later(sv, rec, "terminated", func() {
			wait := 20 * time.Second
			if d := s.o.dumpStuck; d > 0 && d < wait {
				if _, ok := sv.waitExit(d); !ok {
					// Diagnosis: the Go runtime prints every goroutine on SIGQUIT.
					s.note("%s still running %s after SIGTERM: SIGQUIT, its goroutines go to the children's log", sv.name, d)
					sv.signal(syscall.SIGQUIT, true)
				}
				wait -= d
			}
			err, ok := sv.waitExit(wait)
			switch {
			case !ok:
				s.findings.add("%s did not exit within 20s of SIGTERM; SIGQUIT (goroutines in the children's log), then SIGKILL\n%s", sv.name, sv.lastLines(20))
				sv.signal(syscall.SIGQUIT, true)
				if _, ok := sv.waitExit(5 * time.Second); !ok {
					sv.signal(syscall.SIGKILL, true)
				}
				sv.waitExit(5 * time.Second)
			case err != nil:
				s.findings.add("%s exited with %v on SIGTERM (want 0)\n%s", sv.name, err, sv.lastLines(20))
			default:
				fmt.Printf("         fault %2d: %s exited 0 %s after SIGTERM\n", n, sv.name, time.Since(t0).Round(time.Millisecond))
			}
		})
		return sv.name + " SIGTERM"
	}
	switch kind {
	case faultKillWriter:
		var others []*service
		for _, w := range s.writers {
			if !w.isLeading() {
				others = append(others, w)
			}
		}
		if len(others) == 0 {
			others = s.writers
		}
		return kill(pick(others))
	case faultKillRelay:
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			for _, w := range s.writers {
				if w.isLeading() {
					return "relay leader " + kill(w)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		s.findings.add("no writer logged \"outbox relay is leading\" within 15s")
		return kill(pick(s.writers))
	case faultKillReader:
		return kill(pick(s.readers))
	case faultKillBroker:
		return kill(s.broker)
	case faultKillMongo:
		return kill(s.mongo)
	case faultTermWriter:
		return term(pick(s.writers))
	case faultTermReader:
		return term(pick(s.readers))
	case faultStopReader:
		sv := pick(s.readers)
		sv.op.Lock()
		rec := record(sv)
		sv.signal(syscall.SIGSTOP, false)
		restarts.Go(func() {
			defer sv.op.Unlock()
			time.Sleep(3 * time.Second) // the length of the fault, not a synchronisation
			sv.signal(syscall.SIGCONT, false)
			res.faultBack(rec, time.Now())
		})
		return sv.name + " SIGSTOP for 3s"
	case faultFreezeRelay:
		return s.freezeRelay(ctx, res, restarts, n)
	}
	return "unknown fault"
}
