package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

// quiesce waits until the outbox is drained, every valid Kafka command
// created its company and every reader reports lag 0.
func (s *stack) quiesce(ctx context.Context, res *result) error {
	deadline := time.Now().Add(3 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		var backlog, kcmd int64
		err := s.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL),
			(SELECT count(*) FROM companias WHERE identificacion LIKE 'KCMD-%')`).Scan(&backlog, &kcmd)
		if err != nil {
			return err
		}
		ok := backlog == 0 && kcmd == int64(len(res.validCmds))
		last = fmt.Sprintf("outbox backlog %d, kafka-created companies %d/%d", backlog, kcmd, len(res.validCmds))
		for _, r := range s.readers {
			var p struct {
				Joined   bool  `json:"joined"`
				TotalLag int64 `json:"total_lag"`
			}
			st, err := getJSON(ctx, "http://"+r.addr+"/v1/proyecciones", &p)
			ok = ok && err == nil && st == http.StatusOK && p.Joined && p.TotalLag == 0
			last += fmt.Sprintf("; %s status %d joined %v lag %d err %v", r.name, st, p.Joined, p.TotalLag, err)
		}
		if ok {
			fmt.Printf("  %s\n", last)
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("not quiescent within 3 minutes: %s", last)
}

type row struct {
	ID                 string    `json:"id"`
	Nombre             string    `json:"nombre"`
	Email              string    `json:"email"`
	Identificacion     string    `json:"identificacion"`
	Estado             string    `json:"estado"`
	MotivoRechazo      *string   `json:"motivo_rechazo"`
	FechaCreacion      time.Time `json:"fecha_creacion"`
	FechaActualizacion time.Time `json:"fecha_actualizacion"`
	Version            int64     `json:"version"`
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return fmt.Sprintf("%q", *p)
}

func (want row) diff(got row) string {
	var d []string
	add := func(f string, w, g any) { d = append(d, fmt.Sprintf("%s: want %v, got %v", f, w, g)) }
	if want.Nombre != got.Nombre {
		add("nombre", want.Nombre, got.Nombre)
	}
	if want.Email != got.Email {
		add("email", want.Email, got.Email)
	}
	if want.Identificacion != got.Identificacion {
		add("identificacion", want.Identificacion, got.Identificacion)
	}
	if want.Estado != got.Estado {
		add("estado", want.Estado, got.Estado)
	}
	if str(want.MotivoRechazo) != str(got.MotivoRechazo) {
		add("motivo_rechazo", str(want.MotivoRechazo), str(got.MotivoRechazo))
	}
	if !want.FechaCreacion.Equal(got.FechaCreacion) {
		add("fecha_creacion", want.FechaCreacion, got.FechaCreacion)
	}
	if !want.FechaActualizacion.Equal(got.FechaActualizacion) {
		add("fecha_actualizacion", want.FechaActualizacion, got.FechaActualizacion)
	}
	if want.Version != got.Version {
		add("version", want.Version, got.Version)
	}
	return strings.Join(d, "; ")
}

// check runs every invariant check, printing each figure; it reports
// whether all passed.
func (s *stack) check(ctx context.Context, res *result) bool {
	allOK := true
	report := func(name string, ok bool, format string, args ...any) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			allOK = false
		}
		fmt.Printf("%s %-28s %s\n", mark, name, fmt.Sprintf(format, args...))
	}

	rows := map[string]row{}
	pr, err := s.db.Query(ctx, `SELECT id::text, nombre, email, identificacion, estado, motivo_rechazo,
		fecha_creacion, fecha_actualizacion, version FROM companias`)
	if err == nil {
		for pr.Next() {
			var r row
			if err = pr.Scan(&r.ID, &r.Nombre, &r.Email, &r.Identificacion, &r.Estado, &r.MotivoRechazo,
				&r.FechaCreacion, &r.FechaActualizacion, &r.Version); err != nil {
				break
			}
			rows[r.ID] = r
		}
		pr.Close()
		if err == nil {
			err = pr.Err()
		}
	}
	if err != nil {
		report("read PostgreSQL", false, "%v", err)
		return false
	}

	// 1. Views equal rows.
	var mu sync.Mutex
	var mismatches []string
	ids := make(chan string)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			reader := s.readers[g%len(s.readers)]
			for id := range ids {
				want := rows[id]
				var got row
				url := fmt.Sprintf("http://%s/v1/companias/%s?min_version=%d&wait=2s", reader.addr, id, want.Version)
				var st int
				var err error
				for range 5 {
					got = row{}
					if st, err = getJSON(ctx, url, &got); err == nil && st == http.StatusOK {
						break
					}
				}
				d := ""
				if err != nil || st != http.StatusOK {
					d = fmt.Sprintf("view not served: status %d, error %v", st, err)
				} else {
					d = want.diff(got)
				}
				if d != "" {
					mu.Lock()
					mismatches = append(mismatches, fmt.Sprintf("%s (%s v%d): %s", id, want.Identificacion, want.Version, d))
					mu.Unlock()
				}
			}
		})
	}
	for id := range rows {
		ids <- id
	}
	close(ids)
	wg.Wait()
	sort.Strings(mismatches)
	report("views == PostgreSQL rows", len(mismatches) == 0, "%d rows, %d views differ%s", len(rows), len(mismatches), first(mismatches, 10))

	// 3. estadisticas (its total also shows no view lacks a row).
	want := map[string]int64{"PENDIENTE": 0, "APROBADA": 0, "RECHAZADA": 0}
	for _, r := range rows {
		want[r.Estado]++
	}
	var st struct {
		Total     int64            `json:"total"`
		PorEstado map[string]int64 `json:"por_estado"`
	}
	code, err := getJSON(ctx, "http://"+s.readers[0].addr+"/v1/estadisticas", &st)
	statsOK := err == nil && code == http.StatusOK && st.Total == int64(len(rows))
	for k, v := range want {
		statsOK = statsOK && st.PorEstado[k] == v
	}
	report("estadisticas == PostgreSQL", statsOK, "views total %d %v (status %d, err %v); PostgreSQL total %d %v",
		st.Total, st.PorEstado, code, err, len(rows), want)
	report("no view without a row", err == nil && st.Total == int64(len(rows)) && len(mismatches) == 0,
		"views total %d, rows %d, every row has its view: %v", st.Total, len(rows), len(mismatches) == 0)

	// 2. The event topic.
	s.checkTopic(ctx, rows, report)

	// 4. The commands DLQ.
	dlq, n, err := readTopic(ctx, s.broker.addr, commandsDLQ)
	if err != nil {
		report("commands DLQ", false, "read: %v", err)
	} else {
		got := map[string]bool{}
		for _, m := range dlq {
			got[string(m.Value)] = true
		}
		var missing, extra []string
		for v := range res.bad {
			if !got[v] {
				missing = append(missing, v)
			}
		}
		for v := range got {
			if !res.bad[v] {
				extra = append(extra, v)
			}
		}
		report("commands DLQ == bad commands", len(missing) == 0 && len(extra) == 0,
			"%d records (%d distinct), %d bad sent, missing %d%s, unexpected %d%s", n, len(got), len(res.bad),
			len(missing), first(missing, 5), len(extra), first(extra, 5))
	}

	// 5. Successful state changes == SUM(version).
	var httpSum, kafkaSum, kafkaRows int64
	err = s.db.QueryRow(ctx, `SELECT
		COALESCE(SUM(version) FILTER (WHERE identificacion NOT LIKE 'KCMD-%'), 0),
		COALESCE(SUM(version) FILTER (WHERE identificacion LIKE 'KCMD-%'), 0),
		count(*) FILTER (WHERE identificacion LIKE 'KCMD-%') FROM companias`).Scan(&httpSum, &kafkaSum, &kafkaRows)
	changes := res.answered.Load() + res.resolved.Load()
	report("HTTP successes == SUM(version)", err == nil && httpSum == changes,
		"SUM(version) of HTTP companies %d; answered 2xx %d + lost answers found applied %d = %d (err %v); %d transport errors retried, %d idempotent replays",
		httpSum, res.answered.Load(), res.resolved.Load(), changes, err, res.retries.Load(), res.replays.Load())
	report("kafka commands == companies", err == nil && kafkaRows == int64(len(res.validCmds)) && kafkaSum == kafkaRows,
		"%d distinct valid commands, %d companies created from them, SUM(version) %d", len(res.validCmds), kafkaRows, kafkaSum)
	return allOK
}

// checkTopic reads the events topic and checks, per company, versions 1..n
// with no gap and nothing beyond PostgreSQL's version.
func (s *stack) checkTopic(ctx context.Context, rows map[string]row, report func(string, bool, string, ...any)) {
	msgs, n, err := readTopic(ctx, s.broker.addr, eventsTopic)
	if err != nil {
		report("event topic", false, "read: %v", err)
		return
	}
	seen := map[string]bool{}
	versions := map[string]map[int64]string{} // company → version → ce_id
	var problems []string
	for _, m := range msgs {
		var ceID string
		for _, h := range m.Headers {
			if h.Key == companiaevent.HeaderID {
				ceID = string(h.Value)
			}
		}
		if seen[ceID] {
			continue
		}
		seen[ceID] = true
		var d companiaevent.Data
		if err := json.Unmarshal(m.Value, &d); err != nil {
			problems = append(problems, fmt.Sprintf("undecodable event %s at %d/%d: %v", ceID, m.Partition, m.Offset, err))
			continue
		}
		c := d.Compania
		if versions[c.ID] == nil {
			versions[c.ID] = map[int64]string{}
		}
		if prev, dup := versions[c.ID][c.Version]; dup {
			problems = append(problems, fmt.Sprintf("%s v%d: two events %s and %s", c.ID, c.Version, prev, ceID))
		}
		versions[c.ID][c.Version] = ceID
	}
	for id, r := range rows {
		vs := versions[id]
		for v := int64(1); v <= r.Version; v++ {
			if _, ok := vs[v]; !ok {
				problems = append(problems, fmt.Sprintf("%s (%s) v%d: committed but not on the topic", id, r.Identificacion, v))
			}
		}
		for v := range vs {
			if v < 1 || v > r.Version {
				problems = append(problems, fmt.Sprintf("%s (%s) v%d: on the topic but PostgreSQL has v%d", id, r.Identificacion, v, r.Version))
			}
		}
	}
	for id := range versions {
		if _, ok := rows[id]; !ok {
			problems = append(problems, fmt.Sprintf("%s: events on the topic, no row in PostgreSQL", id))
		}
	}
	sort.Strings(problems)
	report("event topic == committed", len(problems) == 0, "%d records, %d distinct ce_id, %d companies; %d problems%s",
		n, len(seen), len(versions), len(problems), first(problems, 10))
}

// readTopic reads every partition of topic from its first offset to its
// high watermark.
func readTopic(ctx context.Context, addr, topic string) ([]kafka.Message, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out []kafka.Message
	for p := range partitions {
		conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, p)
		if err != nil {
			return nil, 0, fmt.Errorf("dial %s/%d: %w", topic, p, err)
		}
		firstOff, lastOff, err := conn.ReadOffsets()
		if err != nil {
			conn.Close()
			return nil, 0, fmt.Errorf("offsets %s/%d: %w", topic, p, err)
		}
		if _, err := conn.Seek(firstOff, kafka.SeekAbsolute); err != nil {
			conn.Close()
			return nil, 0, fmt.Errorf("seek %s/%d: %w", topic, p, err)
		}
		off := firstOff
		for off < lastOff {
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			b := conn.ReadBatch(1, 10<<20)
			for {
				m, err := b.ReadMessage()
				if err != nil {
					break
				}
				out = append(out, m)
				off = m.Offset + 1
			}
			if err := b.Close(); err != nil && !errors.Is(err, kafka.ErrGenerationEnded) {
				conn.Close()
				return nil, 0, fmt.Errorf("read %s/%d at %d: %w", topic, p, off, err)
			}
		}
		conn.Close()
	}
	return out, len(out), nil
}

func first(l []string, n int) string {
	if len(l) == 0 {
		return ""
	}
	out := ":\n      " + strings.Join(l[:min(n, len(l))], "\n      ")
	if len(l) > n {
		out += fmt.Sprintf("\n      … and %d more", len(l)-n)
	}
	return out
}
