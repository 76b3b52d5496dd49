package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

// quiesce waits until the outbox is drained, every valid Kafka command
// created its company, the writers' command group committed every command
// (so each bad one was dead-lettered first) and every reader reports lag 0.
func (s *stack) quiesce(ctx context.Context, res *result) error {
	deadline := time.Now().Add(3 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		var backlog, kcmd int64
		err := s.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox),
			(SELECT count(*) FROM companias WHERE identificacion LIKE 'KCMD-%')`).Scan(&backlog, &kcmd)
		if err != nil {
			return err
		}
		ok := backlog == 0 && kcmd == int64(len(res.validCmds))
		last = fmt.Sprintf("outbox backlog %d, kafka-created companies %d/%d", backlog, kcmd, len(res.validCmds))
		cmdLag, lagging, err := groupLag(ctx, s.broker.addr, commandGroup, commandsTopic)
		ok = ok && err == nil && cmdLag == 0
		last += fmt.Sprintf("; command group lag %d %v err %v", cmdLag, lagging, err)
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
	return fmt.Errorf("not quiescent within 3 minutes: %s%s", last, describeGroups(ctx, s.broker.addr, commandGroup, queryGroup))
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
// whether all passed. A failure names the seed that reproduces it.
func (s *stack) check(ctx context.Context, res *result) bool {
	var failed []string
	total := 0
	report := func(name string, ok bool, format string, args ...any) {
		total++
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed = append(failed, name)
		}
		fmt.Printf("%s %-30s %s\n", mark, name, fmt.Sprintf(format, args...))
	}
	defer func() {
		if len(failed) > 0 {
			fmt.Printf("%d of %d checks failed (%s); seed %d reproduces the run\n", len(failed), total, strings.Join(failed, ", "), s.o.seed)
		} else {
			fmt.Printf("all %d checks passed (seed %d)\n", total, s.o.seed)
		}
	}()

	rows, err := s.readRows(ctx)
	if err != nil {
		report("read PostgreSQL", false, "%v", err)
		return false
	}

	// Views equal rows.
	mismatches := s.compareViews(ctx, rows)
	report("views == PostgreSQL rows", len(mismatches) == 0, "%d rows, %d views differ%s", len(rows), len(mismatches), first(mismatches, 10))

	// estadisticas equals PostgreSQL's counts.
	want := map[string]int64{}
	for _, e := range companiaevent.Estados() {
		want[e] = 0
	}
	for _, r := range rows {
		want[r.Estado]++
	}
	var st struct {
		Total     int64            `json:"total"`
		PorEstado map[string]int64 `json:"por_estado"`
	}
	// It aggregates the whole collection on FerretDB: seconds under load.
	t0 := time.Now()
	for attempt := range 3 {
		if err = getJSONWith(ctx, listClient, "http://"+s.readers[attempt%len(s.readers)].addr+"/v1/estadisticas", &st); err == nil || ctx.Err() != nil {
			break
		}
	}
	statsOK := err == nil && st.Total == int64(len(rows)) && len(st.PorEstado) == len(want)
	for k, v := range want {
		statsOK = statsOK && st.PorEstado[k] == v
	}
	report("estadisticas == PostgreSQL", statsOK, "views total %d %v (err %v, answered in %s); PostgreSQL total %d %v",
		st.Total, st.PorEstado, err, time.Since(t0).Round(time.Millisecond), len(rows), want)

	// No view without a row: every view listed, each one a row.
	listed, pages, err := s.listViews(ctx)
	var orphans []string
	for id := range listed {
		if _, ok := rows[id]; !ok {
			orphans = append(orphans, id)
		}
	}
	sort.Strings(orphans)
	report("no view without a row", err == nil && len(orphans) == 0 && len(listed) == len(rows),
		"%d views listed in %d pages (err %v), %d rows; %d views without a row%s", len(listed), pages, err, len(rows), len(orphans), first(orphans, 10))

	// The event topic against the writer's event log.
	evLog, err := s.readEventLog(ctx)
	if err != nil {
		report("read compania_eventos", false, "%v", err)
		return false
	}
	msgs, _, err := readTopic(ctx, s.broker.addr, eventsTopic)
	if err != nil {
		report("event topic", false, "read: %v", err)
		return false
	}
	poisonAt := checkTopic(rows, evLog, msgs, res, report)

	// The dead-letter topics.
	s.checkEventDLQ(ctx, res, poisonAt, report)
	s.checkCommandDLQ(ctx, res, report)

	// The huge-traceparent command and the relay freezes.
	s.checkHugeCommand(ctx, res, rows, msgs, report)
	s.checkTakeover(res, report)

	// Successful state changes == SUM(version).
	var httpSum, kafkaSum, kafkaRows int64
	err = s.db.QueryRow(ctx, `SELECT
		COALESCE(SUM(version) FILTER (WHERE identificacion NOT LIKE 'KCMD-%'), 0),
		COALESCE(SUM(version) FILTER (WHERE identificacion LIKE 'KCMD-%'), 0),
		count(*) FILTER (WHERE identificacion LIKE 'KCMD-%') FROM companias`).Scan(&httpSum, &kafkaSum, &kafkaRows)
	changes := res.answered.Load() + res.resolved.Load()
	report("HTTP successes == SUM(version)", err == nil && httpSum == changes,
		"SUM(version) of HTTP companies %d; answered 2xx %d + lost answers found applied %d = %d (err %v); %d transport errors and %d 503 answers retried, %d idempotent replays",
		httpSum, res.answered.Load(), res.resolved.Load(), changes, err, res.retries.Load(), res.unavailable.Load(), res.replays.Load())
	report("kafka commands == companies", err == nil && kafkaRows == int64(len(res.validCmds)) && kafkaSum == kafkaRows,
		"%d distinct valid commands, %d companies created from them, SUM(version) %d", len(res.validCmds), kafkaRows, kafkaSum)
	return len(failed) == 0
}

// readRows reads every company row of PostgreSQL.
func (s *stack) readRows(ctx context.Context) (map[string]row, error) {
	rows := map[string]row{}
	pr, err := s.db.Query(ctx, `SELECT id::text, nombre, email, identificacion, estado, motivo_rechazo,
		fecha_creacion, fecha_actualizacion, version FROM companias`)
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	for pr.Next() {
		var r row
		if err := pr.Scan(&r.ID, &r.Nombre, &r.Email, &r.Identificacion, &r.Estado, &r.MotivoRechazo,
			&r.FechaCreacion, &r.FechaActualizacion, &r.Version); err != nil {
			return nil, err
		}
		rows[r.ID] = r
	}
	return rows, pr.Err()
}

// compareViews reads the view of every row from the readers (waiting for
// its version) and returns the differences.
func (s *stack) compareViews(ctx context.Context, rows map[string]row) []string {
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
	return mismatches
}

// listClient lists the views and reads the statistics: both scan the
// whole collection on FerretDB, seconds under load, unlike a read by id.
var listClient = &http.Client{Timeout: 30 * time.Second}

// listViews lists every view through GET /v1/companias, page by page; it
// returns the ids (an id listed twice is an error) and the page count.
func (s *stack) listViews(ctx context.Context) (map[string]bool, int, error) {
	ids := map[string]bool{}
	cursor := ""
	for pages := 1; ; pages++ {
		u := "http://" + s.readers[pages%len(s.readers)].addr + "/v1/companias?limit=100"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		var err error
		for attempt := range 5 {
			if err = getJSONWith(ctx, listClient, u, &page); err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		}
		if err != nil {
			return ids, pages, fmt.Errorf("page %d: %w", pages, err)
		}
		for _, it := range page.Items {
			if ids[it.ID] {
				return ids, pages, fmt.Errorf("view %s listed twice", it.ID)
			}
			ids[it.ID] = true
		}
		if page.NextCursor == nil {
			return ids, pages, nil
		}
		cursor = *page.NextCursor
	}
}

// getJSONWith decodes GET u into out with client c; a status other than
// 200 is an error.
func getJSONWith(ctx context.Context, c *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %.200s", u, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

// logEvent is a row of the writer's event log, compania_eventos.
type logEvent struct {
	id, company, name string
	version           int64
	data              companiaevent.Data
}

// readEventLog reads compania_eventos, by event id.
func (s *stack) readEventLog(ctx context.Context) (map[string]logEvent, error) {
	out := map[string]logEvent{}
	pr, err := s.db.Query(ctx, `SELECT id::text, compania_id::text, version, nombre, data::text FROM compania_eventos`)
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	for pr.Next() {
		var l logEvent
		var data string
		if err := pr.Scan(&l.id, &l.company, &l.version, &l.name, &data); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(data), &l.data); err != nil {
			return nil, fmt.Errorf("compania_eventos %s: data: %w", l.id, err)
		}
		out[l.id] = l
	}
	return out, pr.Err()
}

// origin is where a record sits on a topic.
type origin struct {
	partition int
	offset    int64
}

func (o origin) String() string { return fmt.Sprintf("%d/%d", o.partition, o.offset) }

// seenEvent is the first occurrence of an event on the topic.
type seenEvent struct {
	e     companiaevent.Event
	at    origin
	key   []byte
	value []byte
}

func rowOf(c companiaevent.Compania) row {
	return row{ID: c.ID, Nombre: c.Nombre, Email: c.Email, Identificacion: c.Identificacion, Estado: c.Estado,
		MotivoRechazo: c.MotivoRechazo, FechaCreacion: c.FechaCreacion, FechaActualizacion: c.FechaActualizacion, Version: c.Version}
}

// dataDiff compares two event values field by field.
func dataDiff(want, got companiaevent.Data) string {
	d := rowOf(want.Compania).diff(rowOf(got.Compania))
	if want.Compania.ID != got.Compania.ID {
		d = strings.TrimPrefix(d+fmt.Sprintf("; id: want %s, got %s", want.Compania.ID, got.Compania.ID), "; ")
	}
	if !slices.Equal(want.Campos, got.Campos) {
		d = strings.TrimPrefix(d+fmt.Sprintf("; campos: want %v, got %v", want.Campos, got.Campos), "; ")
	}
	return d
}

// checkTopic checks the events topic against PostgreSQL and the writer's
// event log: every committed event is on it (per company versions 1..n,
// no gap, one partition keyed by the company id, in order, each equal to
// its compania_eventos row, the last equal to the company row); no event
// whose transaction rolled back (none outside compania_eventos, none
// beyond PostgreSQL's version, none carrying a refused request's values);
// and the injected poison is on it as produced. It returns where each
// poison record sits.
func checkTopic(rows map[string]row, evLog map[string]logEvent, msgs []kafka.Message, res *result,
	report func(string, bool, string, ...any)) map[origin]*poisonMsg {
	res.mu.Lock()
	poison := slices.Clone(res.poison)
	rejected := slices.Clone(res.rejected)
	res.mu.Unlock()
	poisonByValue := map[string]*poisonMsg{}
	for _, p := range poison {
		poisonByValue[string(p.value)] = p
	}
	poisonAt := map[origin]*poisonMsg{}
	poisonCopies := map[*poisonMsg][]origin{}
	var poisonProblems, problems, rolledBack []string
	firstSeen := map[string]seenEvent{}           // ce_id → first occurrence
	byCompany := map[string]map[int64]seenEvent{} // company → version → first event
	partOf := map[string]int{}                    // company → partition of its events
	var records, republished int
	for _, m := range msgs {
		at := origin{m.Partition, m.Offset}
		if p := poisonByValue[string(m.Value)]; p != nil {
			poisonAt[at] = p
			poisonCopies[p] = append(poisonCopies[p], at)
			if !bytes.Equal(m.Key, p.key) || !slices.EqualFunc(m.Headers, p.headers, sameHeader) {
				poisonProblems = append(poisonProblems, fmt.Sprintf("poison %s (%s) at %s: key or headers differ from those produced", p.id, p.kind, at))
			}
			continue
		}
		records++
		e, err := companiaevent.Decode(contractHeaders(m.Headers), m.Value)
		if err != nil {
			problems = append(problems, fmt.Sprintf("record %s breaks the event contract: %v", at, err))
			continue
		}
		if prev, dup := firstSeen[e.ID]; dup {
			republished++
			if prev.at.partition != m.Partition || !bytes.Equal(prev.key, m.Key) || !bytes.Equal(prev.value, m.Value) {
				problems = append(problems, fmt.Sprintf("ce_id %s at %s and %s: the copies differ", e.ID, prev.at, at))
			}
			continue
		}
		se := seenEvent{e: e, at: at, key: m.Key, value: m.Value}
		firstSeen[e.ID] = se
		c := e.Data.Compania
		if string(m.Key) != c.ID {
			problems = append(problems, fmt.Sprintf("%s v%d at %s: key %q is not the company id", c.ID, c.Version, at, m.Key))
		}
		if p, ok := partOf[c.ID]; !ok {
			partOf[c.ID] = m.Partition
		} else if p != m.Partition {
			problems = append(problems, fmt.Sprintf("%s: events on partitions %d and %d", c.ID, p, m.Partition))
		}
		if byCompany[c.ID] == nil {
			byCompany[c.ID] = map[int64]seenEvent{}
		}
		if prev, dup := byCompany[c.ID][c.Version]; dup {
			problems = append(problems, fmt.Sprintf("%s v%d: two events %s and %s", c.ID, c.Version, prev.e.ID, e.ID))
		} else {
			byCompany[c.ID][c.Version] = se
		}
		switch l, ok := evLog[e.ID]; {
		case !ok:
			rolledBack = append(rolledBack, fmt.Sprintf("%s (%s v%d) at %s: on the topic, not in compania_eventos", e.ID, c.ID, c.Version, at))
		case l.company != c.ID || l.version != c.Version || l.name != string(e.Name):
			problems = append(problems, fmt.Sprintf("%s at %s: %s v%d %s on the topic, %s v%d %s in compania_eventos", e.ID, at, c.ID, c.Version, e.Name, l.company, l.version, l.name))
		default:
			if d := dataDiff(l.data, e.Data); d != "" {
				problems = append(problems, fmt.Sprintf("%s (%s v%d): topic value differs from compania_eventos: %s", e.ID, c.ID, c.Version, d))
			}
		}
		if r, ok := rows[c.ID]; !ok {
			rolledBack = append(rolledBack, fmt.Sprintf("%s (%s v%d): event of a company PostgreSQL does not have", e.ID, c.ID, c.Version))
		} else if c.Version > r.Version {
			rolledBack = append(rolledBack, fmt.Sprintf("%s (%s v%d): on the topic, PostgreSQL has v%d", e.ID, c.ID, c.Version, r.Version))
		}
	}

	// Every committed event is on the topic, in order.
	logByCompany := map[string]map[int64]string{}
	for id, l := range evLog {
		if logByCompany[l.company] == nil {
			logByCompany[l.company] = map[int64]string{}
		}
		logByCompany[l.company][l.version] = id
		if _, ok := firstSeen[id]; !ok {
			problems = append(problems, fmt.Sprintf("%s (%s v%d %s): in compania_eventos, not on the topic", id, l.company, l.version, l.name))
		}
	}
	for id, r := range rows {
		lv, tv := logByCompany[id], byCompany[id]
		for v := int64(1); v <= r.Version; v++ {
			if _, ok := lv[v]; !ok {
				problems = append(problems, fmt.Sprintf("%s (%s) v%d: no compania_eventos row", id, r.Identificacion, v))
			}
			if _, ok := tv[v]; !ok {
				problems = append(problems, fmt.Sprintf("%s (%s) v%d: committed but not on the topic", id, r.Identificacion, v))
			} else if prev, ok := tv[v-1]; ok && tv[v].at.offset < prev.at.offset {
				problems = append(problems, fmt.Sprintf("%s (%s): v%d at %s before v%d at %s", id, r.Identificacion, v, tv[v].at, v-1, prev.at))
			}
		}
		for v := range lv {
			if v < 1 || v > r.Version {
				rolledBack = append(rolledBack, fmt.Sprintf("%s (%s) v%d: in compania_eventos, PostgreSQL has v%d", id, r.Identificacion, v, r.Version))
			}
		}
		if last, ok := tv[r.Version]; ok {
			if d := r.diff(rowOf(last.e.Data.Compania)); d != "" {
				problems = append(problems, fmt.Sprintf("%s (%s) v%d: the last event differs from the row: %s", id, r.Identificacion, r.Version, d))
			}
		}
	}

	// The refused requests left no event and no row.
	marks := map[string]map[string]string{"email": {}, "nombre": {}, "motivo_rechazo": {}}
	kinds := map[string]int{}
	for _, rj := range rejected {
		marks[rj.field][rj.value] = rj.what
		kinds[rj.what]++
	}
	carried := 0
	hit := func(where string, c companiaevent.Compania) {
		for field, v := range map[string]string{"email": c.Email, "nombre": c.Nombre, "motivo_rechazo": strings.Trim(str(c.MotivoRechazo), `"`)} {
			if what, ok := marks[field][v]; ok {
				carried++
				rolledBack = append(rolledBack, fmt.Sprintf("%s of %s v%d carries %s %q of a refused %s", where, c.ID, c.Version, field, v, what))
			}
		}
	}
	for _, se := range firstSeen {
		hit("topic event "+se.e.ID, se.e.Data.Compania)
	}
	for _, l := range evLog {
		hit("compania_eventos "+l.id, l.data.Compania)
	}
	for _, r := range rows {
		hit("row", companiaevent.Compania{ID: r.ID, Nombre: r.Nombre, Email: r.Email, MotivoRechazo: r.MotivoRechazo, Version: r.Version})
	}
	var kindList []string
	for k, n := range kinds {
		kindList = append(kindList, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(kindList)
	sort.Strings(problems)
	sort.Strings(rolledBack)
	report("event topic == committed", len(problems) == 0,
		"%d event records (%d republished), %d distinct ce_id, %d companies; compania_eventos %d rows; %d problems%s",
		records, republished, len(firstSeen), len(byCompany), len(evLog), len(problems), first(problems, 10))
	report("no rolled-back event", len(rolledBack) == 0,
		"%d refused requests (%s): %d events or rows carry their values; %d events outside compania_eventos or beyond PostgreSQL's version%s",
		len(rejected), strings.Join(kindList, ", "), carried, len(rolledBack)-carried, first(rolledBack, 10))

	// The poison is on the topic as produced.
	var sent, targeted, interleaved int
	perKind := map[string]int{}
	for _, p := range poison {
		perKind[p.kind]++
		copies := poisonCopies[p]
		if p.sent {
			sent++
		}
		switch {
		case p.sent && len(copies) == 0:
			poisonProblems = append(poisonProblems, fmt.Sprintf("poison %s (%s): produced, not on the topic", p.id, p.kind))
		case len(copies) > 1 && !p.retried:
			poisonProblems = append(poisonProblems, fmt.Sprintf("poison %s (%s): %d copies at %v, produced once", p.id, p.kind, len(copies), copies))
		}
		if p.company == "" {
			continue
		}
		targeted++
		for _, o := range copies {
			part, ok := partOf[p.company]
			if !ok || part != o.partition {
				poisonProblems = append(poisonProblems, fmt.Sprintf("poison %s (%s) at %s: not on the partition of company %s's events (%d, known %v)", p.id, p.kind, o, p.company, part, ok))
				continue
			}
			before, after := false, false
			for _, se := range byCompany[p.company] {
				before = before || se.at.offset < o.offset
				after = after || se.at.offset > o.offset
			}
			if before && after {
				interleaved++
			}
		}
	}
	sort.Strings(poisonProblems)
	report("poison on the event topic", len(poisonProblems) == 0,
		"%d injected of %d kinds (%d acknowledged), %d records; %d keyed by a real company, on its partition, %d of them between two of its events; %d problems%s",
		len(poison), len(perKind), sent, len(poisonAt), targeted, interleaved, len(poisonProblems), first(poisonProblems, 10))
	return poisonAt
}

func sameHeader(a, b kafka.Header) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }

func contractHeaders(hs []kafka.Header) []companiaevent.Header {
	out := make([]companiaevent.Header, len(hs))
	for i, h := range hs {
		out[i] = companiaevent.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// readTopic reads every partition of topic from its first offset to its
// high watermark.
func readTopic(ctx context.Context, addr, topic string) ([]kafka.Message, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out []kafka.Message
	for p := range partitions {
		conn, err := localDialer().DialLeader(ctx, "tcp", addr, topic, p)
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
