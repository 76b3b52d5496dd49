package service

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/propalpes/companias/libs/seedwork/problem"
)

// swapHandler serves through the handler last given to set; serve starts
// with the start-up handler and switches to the API once it is built, on
// the same listener.
type swapHandler struct {
	h atomic.Pointer[http.Handler]
}

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// startupState records which dependencies serve is waiting for. It is safe
// for concurrent use.
type startupState struct {
	mu     sync.Mutex
	checks map[string]string // check name (as /readyz reports it) → "pending", "waiting", "ok" or "skipped"
}

// checkNames maps the dependencies of waitInfra to the check names of the
// readiness probe.
var checkNames = map[string]string{depKafka: "kafka", depMongo: "mongo"}

func newStartupState() *startupState {
	return &startupState{checks: map[string]string{"kafka": "pending", "mongo": "pending", "consumer": "not started"}}
}

func (s *startupState) waitFor(dep string) { s.set(dep, "waiting") }
func (s *startupState) ready(dep string)   { s.set(dep, "ok") }

// skip records that serve does not wait for dep at start (Kafka when the
// service creates no topic).
func (s *startupState) skip(dep string) { s.set(dep, "skipped") }

func (s *startupState) set(dep, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[checkNames[dep]] = v
}

// snapshot returns a copy of the checks and the dependency waited for ("" if none).
func (s *startupState) snapshot() (map[string]string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.checks))
	waiting := ""
	for k, v := range s.checks {
		out[k] = v
		if v == "waiting" {
			waiting = k
		}
	}
	return out, waiting
}

// startupHandler serves while the service waits for Kafka and MongoDB:
// GET /healthz and /health answer 200 (the process is alive: do not
// restart it), GET /readyz answers 503 with the state of each dependency,
// and every other request 503 (retry later).
func startupHandler(st *startupState) http.Handler {
	mux := http.NewServeMux()
	alive := func(status string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_ = json.NewEncoder(w).Encode(map[string]string{"status": status})
		}
	}
	mux.HandleFunc("GET /healthz", alive("ok"))
	mux.HandleFunc("GET /health", alive("up"))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		checks, waiting := st.snapshot()
		detail := "the service is starting"
		if waiting != "" {
			detail += ": waiting for " + waiting
		}
		p := problem.New(http.StatusServiceUnavailable, "not_ready", detail)
		p.Instance = r.URL.Path
		p.Extra = map[string]any{"checks": checks}
		problem.Write(w, p)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		p := problem.New(http.StatusServiceUnavailable, "starting", "the service is starting: retry later")
		p.Instance = r.URL.Path
		problem.Write(w, p)
	})
	return mux
}
